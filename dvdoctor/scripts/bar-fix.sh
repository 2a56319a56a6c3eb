#!/usr/bin/env bash
# Repairs on DV's backup volume, run from a short-lived pod as the BAR job's uid (like the runbook's
# dv-test-job); root-only steps go through sudo, which DV's init-volume image grants that uid.
# Usage (argv only, never pasted into this text):
#   grant              make BAR_DIR writable for this uid with the least rights that work
#   relink TS          point SYMLINK at BAR_DIR/TS/dv_backup.tar.gz, atomically
#   remove REL...      delete backup folders or files (TS or TS/NAME), or a folder a restore from a
#                      copy left half-written (.dvdoctor-rehydrate-TS); never the symlink's target
#   manifest TS        write MANIFEST (JSON) to BAR_DIR/TS/dvdoctor-manifest.json, atomically
# Env: BAR_DIR (mount path), SYMLINK (link name), DV_ROOT (the lab's pod root; empty in a pod),
#      ALLOW_WORLD (1: 0777 allowed as a last resort), MANIFEST (the manifest's text, for `manifest`).
# Output: `changed<TAB>what<TAB>before<TAB>after`, `note<TAB>text`, `error<TAB>text`, then `end`.
set -u
bar="${DV_ROOT:-}${BAR_DIR:?BAR_DIR is required}"
link="${SYMLINK:-dv_backup.tar.gz}"
me=$(id -u)
if [ "$me" = 0 ]; then sudo_=(); else sudo_=(sudo -n); fi
fail() { printf 'error\t%s\n' "$1"; printf 'end\n'; exit 1; }
can_write() { local t="$bar/.dvdoctor-write-test.$$"; mkdir "$t" 2>/dev/null && rmdir "$t"; }
state() { stat -L -c '%a %u:%g' "$bar"; }

grant() {
  local before; before=$(state)
  if can_write; then printf 'note\t%s already writable by uid %s (%s)\n' "$BAR_DIR" "$me" "$before"; return; fi
  local owner group; owner=$(stat -L -c '%u' "$bar"); group=$(stat -L -c '%g' "$bar")
  if [ "$owner" = "$me" ]; then
    chmod u+rwx "$bar" 2>/dev/null || "${sudo_[@]}" chmod u+rwx "$bar"
  else
    "${sudo_[@]}" chown "$me" "$bar" 2>/dev/null && "${sudo_[@]}" chmod u+rwx "$bar" 2>/dev/null
  fi
  if ! can_write && id -G | tr ' ' '\n' | grep -qx "$group"; then
    printf 'note\towner change not possible here (root squash?); granting group write to gid %s instead\n' "$group"
    "${sudo_[@]}" chmod g+rwx "$bar" 2>/dev/null
  fi
  if ! can_write; then
    if [ "${ALLOW_WORLD:-0}" = 1 ]; then
      printf 'note\tneither owner nor group write worked; making %s world-writable (0777) as the runbook does\n' "$BAR_DIR"
      "${sudo_[@]}" chmod 0777 "$bar" 2>/dev/null
    fi
  fi
  can_write || fail "uid $me still cannot write to $BAR_DIR ($(state)); rerun with --allow-world-writable to allow 0777"
  printf 'changed\t%s mode and owner\t%s\t%s\n' "$BAR_DIR" "$before" "$(state)"
}

link_target_ts() {
  local t; t=$(readlink "$bar/$link" 2>/dev/null) || return 0
  t="${t#"$BAR_DIR"/}"
  printf '%s' "${t%%/*}"
}

relink() {
  local ts="$1"
  case "$ts" in */*|.*|"") fail "not a backup folder name: $ts" ;; esac
  [ -s "$bar/$ts/dv_backup.tar.gz" ] || fail "$BAR_DIR/$ts/dv_backup.tar.gz does not exist or is empty"
  local before; before=$(readlink "$bar/$link" 2>/dev/null || printf '(none)')
  local new="$bar/.$link.dvdoctor-new.$$"
  ln -s "$BAR_DIR/$ts/dv_backup.tar.gz" "$new" 2>/dev/null || "${sudo_[@]}" ln -s "$BAR_DIR/$ts/dv_backup.tar.gz" "$new" || fail "cannot create a link in $BAR_DIR"
  mv -T "$new" "$bar/$link" 2>/dev/null || "${sudo_[@]}" mv -T "$new" "$bar/$link" || fail "cannot rename the new link over $link"
  printf 'changed\t%s/%s\t%s\t%s\n' "$BAR_DIR" "$link" "$before" "$(readlink "$bar/$link")"
}

remove() {
  local keep; keep=$(link_target_ts)
  for rel in "$@"; do
    case "$rel" in
      .dvdoctor-rehydrate-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]-[0-9][0-9]-[0-9][0-9]-[0-9][0-9]) ;;
      ""|/*|*..*|.*) fail "refusing to remove $rel: not a backup folder or file" ;;
    esac
    local top="${rel%%/*}"
    [ -n "$keep" ] && [ "$top" = "$keep" ] && [ "$rel" = "$top" -o "$rel" = "$top/dv_backup.tar.gz" ] && fail "refusing to remove $rel: the $link symlink points into it"
    [ -e "$bar/$rel" ] || [ -L "$bar/$rel" ] || { printf 'note\t%s is already gone\n' "$rel"; continue; }
    local size; size=$(du -sb "$bar/$rel" | cut -f1)
    rm -rf -- "$bar/$rel" 2>/dev/null || "${sudo_[@]}" rm -rf -- "$bar/$rel" || fail "cannot remove $BAR_DIR/$rel"
    printf 'changed\t%s/%s\t%s bytes\tremoved\n' "$BAR_DIR" "$rel" "$size"
  done
}

# A backup folder is named by DV's UTC start time, e.g. 2021-01-22-19-27-31.
is_backup_ts() {
  case "$1" in
    [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]-[0-9][0-9]-[0-9][0-9]-[0-9][0-9]) return 0 ;;
    *) return 1 ;;
  esac
}

# The manifest is written beside the backup under a temporary name and renamed over the old one,
# so a reader sees either the whole previous manifest or the whole new one, never half of it.
manifest() {
  local ts="$1"
  is_backup_ts "$ts" || fail "not a backup folder name: $ts"
  [ -d "$bar/$ts" ] && [ ! -L "$bar/$ts" ] || fail "$BAR_DIR/$ts is not a backup folder"
  [ -n "${MANIFEST:-}" ] || fail "MANIFEST is empty: nothing to write"
  local target="$bar/$ts/dvdoctor-manifest.json" tmp="$bar/$ts/.dvdoctor-manifest.json.$$"
  local before='(none)'
  [ -f "$target" ] && before="$(stat -c '%s' "$target") bytes"
  if ! printf '%s\n' "$MANIFEST" 2>/dev/null > "$tmp"; then
    rm -f -- "$tmp" 2>/dev/null
    printf '%s\n' "$MANIFEST" | "${sudo_[@]}" tee -- "$tmp" >/dev/null || { "${sudo_[@]}" rm -f -- "$tmp"; fail "cannot write in $BAR_DIR/$ts"; }
  fi
  chmod 0644 "$tmp" 2>/dev/null || "${sudo_[@]}" chmod 0644 "$tmp"
  mv -T -- "$tmp" "$target" 2>/dev/null || "${sudo_[@]}" mv -T -- "$tmp" "$target" || { "${sudo_[@]}" rm -f -- "$tmp"; fail "cannot rename the manifest into $BAR_DIR/$ts"; }
  printf 'changed\t%s/%s/dvdoctor-manifest.json\t%s\t%s bytes\n' "$BAR_DIR" "$ts" "$before" "$(stat -c '%s' "$target")"
}

[ -d "$bar" ] || fail "$BAR_DIR does not exist in this pod"
op="${1:-}"; shift || true
case "$op" in
  grant) grant ;;
  relink) relink "${1:-}" ;;
  remove) remove "$@" ;;
  manifest) manifest "${1:-}" ;;
  *) fail "unknown operation: $op" ;;
esac
printf 'end\n'
