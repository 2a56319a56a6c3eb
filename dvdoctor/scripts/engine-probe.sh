#!/usr/bin/env bash
# Look inside dv-engine-0 for what the runbook checks with `oc rsh`: marker files and DV's BAR job
# templates. Inputs as argv: MARKER_DIR TEMPLATE_DIR CACHING_SCRIPT TEMPLATE... ; DV_ROOT is the
# lab's pod root (empty in a real pod). A template is text, read by the shell itself (no process: this
# runs at every `check`) and sent on one line with its backslashes, tabs, line breaks and carriage
# returns escaped; one holding a NUL byte (which a shell variable cannot hold), a byte beyond ASCII or
# more than 64 KiB is sent base64-encoded.
# A marker's name is printed as is when plain, else as `=` and base64 of its bytes (any byte survives).
set -u
export LC_ALL=C
enc_to() { # VAR VALUE -> VAR set to the field: a plain value costs no subshell
  case "$2" in
    *[!A-Za-z0-9._:/@+,-]*) printf -v "$1" '=%s' "$(printf '%s' "$2" | base64 -w0)" ;;
    *) printf -v "$1" '%s' "$2" ;;
  esac
}
marker_dir="${DV_ROOT:-}$1"
template_dir="${DV_ROOT:-}$2"
caching_script="${DV_ROOT:-}$3"
shift 3
printf 'probe\tengine\t2\n'
if [ -d "$marker_dir" ]; then
  # find only when the folder holds anything (the shell's own glob, dot files included, says so): a
  # healthy DV's marker folder is empty at most looks
  shopt -s nullglob dotglob; shopt -u failglob; entries=("$marker_dir"/*); shopt -u nullglob dotglob
  [ "${#entries[@]}" -eq 0 ] || while IFS= read -r -d '' meta && IFS= read -r -d '' name; do
    enc_to name_f "$name"
    printf 'marker\t%s\t%s\n' "$name_f" "$meta"
  done < <(find -H "$marker_dir" -mindepth 1 -maxdepth 1 -printf '%s\t%T@\0%P\0' 2>/dev/null)
  unset entries
else
  printf 'nomarkerdir\n'
fi
for name in "$@"; do
  file="$template_dir/$name"
  if [ -f "$file" ]; then
    text=""
    # As text only up to 64 KiB (a DV template is a few KiB; the escaping below slows with the square of
    # the size) and only ASCII (an exec's output reaches dvdoctor in websocket frames, each decoded as
    # UTF-8 on its own: a character split between two would come back as U+FFFD). read stops with
    # status 0 at a NUL byte or at 64 KiB + 1; only the end of a smaller file gives 1, all of it in text.
    if ! IFS= read -r -d '' -n 65537 text < "$file" && [ "${#text}" -le 65536 ] && [[ "$text" != *[![:ascii:]]* ]]; then
      text="${text//\\/\\\\}"; text="${text//$'\t'/\\t}"; text="${text//$'\n'/\\n}"; text="${text//$'\r'/\\r}"
      printf 'templatetext\t%s\t%s\n' "$name" "$text"
    else
      printf 'template\t%s\t' "$name"; base64 -w0 < "$file"; printf '\n'  # no subshell
    fi
  else
    printf 'notemplate\t%s\n' "$name"
  fi
done
if [ -x "$caching_script" ]; then printf 'caching_script\t1\n'; else printf 'caching_script\t0\n'; fi
printf 'end\n'
