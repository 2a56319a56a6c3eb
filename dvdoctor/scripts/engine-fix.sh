#!/usr/bin/env bash
# Repairs inside dv-engine-0 (the runbook's `oc rsh dv-engine-0 bash` steps).
# Usage (argv only): remove-marker MARKER_DIR NAME   |   caching-off CACHING_SCRIPT
# DV_ROOT is the lab's pod root (empty in a pod). Output as bar-fix.sh: changed/note/error, then end.
set -u
fail() { printf 'error\t%s\n' "$1"; printf 'end\n'; exit 1; }
case "${1:-}" in
  remove-marker)
    dir="${DV_ROOT:-}$2"; name="$3"
    case "$name" in .bar|.bar_restored.txt) ;; *) fail "refusing to remove $name: not a BAR marker" ;; esac
    if [ -e "$dir/$name" ]; then
      rm -f -- "$dir/$name" || fail "cannot remove $2/$name"
      printf 'changed\t%s/%s\tpresent\tremoved\n' "$2" "$name"
    else
      printf 'note\t%s/%s is already gone\n' "$2" "$name"
    fi ;;
  caching-off)
    script="${DV_ROOT:-}$2"
    [ -x "$script" ] || fail "$2 is not in this pod"
    out=$("$script" false 2>&1) || fail "$2 false failed: $(printf '%s' "$out" | tr '\t\n' '  ')"
    printf 'changed\t%s false\tcaching restore state\tdone\n' "$2" ;;
  *) fail "unknown operation: ${1:-}" ;;
esac
printf 'end\n'
