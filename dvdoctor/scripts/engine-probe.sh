#!/usr/bin/env bash
# Look inside dv-engine-0 for what the runbook checks with `oc rsh`: marker files and DV's BAR job
# templates. Inputs as argv: MARKER_DIR TEMPLATE_DIR CACHING_SCRIPT TEMPLATE... ; DV_ROOT is the
# lab's pod root (empty in a real pod). Templates are sent base64-encoded, one line each.
set -u
marker_dir="${DV_ROOT:-}$1"
template_dir="${DV_ROOT:-}$2"
caching_script="${DV_ROOT:-}$3"
shift 3
printf 'probe\tengine\t1\n'
if [ -d "$marker_dir" ]; then
  find -H "$marker_dir" -mindepth 1 -maxdepth 1 -printf 'marker\t%P\t%s\t%T@\n' 2>/dev/null
else
  printf 'nomarkerdir\n'
fi
for name in "$@"; do
  if [ -f "$template_dir/$name" ]; then
    printf 'template\t%s\t%s\n' "$name" "$(base64 -w0 < "$template_dir/$name")"
  else
    printf 'notemplate\t%s\n' "$name"
  fi
done
if [ -x "$caching_script" ]; then printf 'caching_script\t1\n'; else printf 'caching_script\t0\n'; fi
printf 'end\n'
