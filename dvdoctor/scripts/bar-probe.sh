#!/usr/bin/env bash
# Inspect DV's backup volume the way the runbook does with `df -h` and `ls -ltr`, from a pod that
# mounts it as the BAR job's uid, and read backups back. One record a line, tab-separated fields;
# `end` closes a whole run. A field that may hold any byte (a file name, a link's target, a message)
# is printed as is when it is plain (letters, digits, `._:/@+,-`), else as `=` and its bytes in
# base64, so a name with a newline, a tab or any other byte can never split or forge a record.
# Inputs (environment only): BAR_DIR (the mount path), SYMLINK (the restore-point link's name),
# COMPONENTS (the component tarballs' names, space-separated), DV_ROOT (the lab's pod root; empty in a pod),
# VERIFY       which backups to read back: `recorded` (none: trust what dvdoctor recorded),
#              `unrecorded` (those whose dvdoctor-manifest.json records no good read-back of the
#              combined tarball at its current size and mtime), `all` (every one);
# VERIFY_BUDGET bytes read back at most in one run (0: no bound); at least one backup is always read;
# VERIFY_ALSO  backups read back whatever was recorded and whatever the budget: timestamps, `@link`
#              (the restore point's), `@newest`;
# WRITE_PROBE  0: do not try a write (a command that only reads the volume, `copy`); else a folder is
#              made and removed at once, to learn whether the BAR job's uid can write here;
# VERIFY_SKIP  a timestamp not to read, or `@since:TIMESTAMP`: none named at or after it but the
#              restore point's (the folder an active backup job is writing; the job moves the link last).
# A readback's state is good, damaged (empty, not gzip, or it does not read back), unreadable (this uid
# may not read it: a permission problem, never damage), unread or recorded.
# Each backup's dvdoctor-manifest.json (the instance that took it, its recorded read-back) is sent
# base64-encoded when at most 64 KiB; a bigger one (not dvdoctor's) is reported by its size only.
# Few processes: `check` runs this in every inspection pod (the lab's tests about a thousand times), so
# what the shell can do itself (a time, a link's target, a size find already printed) starts none, and
# a command substitution around one program execs it (`$(exec prog)`) instead of forking twice.
set -u
export LC_ALL=C
bar="${DV_ROOT:-}${BAR_DIR:?BAR_DIR is required}"
link="${SYMLINK:-dv_backup.tar.gz}"
COMPONENTS="${COMPONENTS:-dv_backup_dv_metastore.tar.gz dv_backup_dv_engine.tar.gz}"

# A plain value costs no process: enc_to sets a variable (a `$(enc ...)` forks a subshell each time,
# and this script prints a few fields per backup-volume entry).
enc_to() { # VAR VALUE -> VAR set to the field as printed: as is when plain, else "=" and base64 of its bytes
  case "$2" in
    *[!A-Za-z0-9._:/@+,-]*) printf -v "$1" '=%s' "$(printf '%s' "$2" | base64 -w0)" ;;
    *) printf -v "$1" '%s' "$2" ;;
  esac
}
enc() { local e; enc_to e "$1"; printf '%s' "$e"; }  # VALUE -> the field, printed
flat() { tr '\t\n' '  ' | tail -c 400 | sed 's/^ *//; s/ *$//'; }  # a tool's message on one line, its end kept
# A backup folder is named by DV's UTC start time, e.g. 2021-01-22-19-27-31 (ASCII digits only).
is_ts() {
  case "$1" in
    [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]-[0-9][0-9]-[0-9][0-9]-[0-9][0-9]) return 0 ;;
    *) return 1 ;;
  esac
}

# The group ids as `id -G` prints them (the real gid, the effective one if it differs, then the
# supplementary groups but those two and repeats, dropped as id drops them), read by the shell from
# /proc/self/status (its own): no process. `id -G` itself where that file lacks either line or holds
# anything but numbers there.
groups_to() { # VAR -> VAR set to the ids, space-separated
  local key a b _ rgid="" egid="" sup="" listed="" out g prev ids=()
  if [ -r /proc/self/status ]; then
    while IFS=$'\t' read -r key a b _; do
      case "$key" in
        Gid:) rgid="$a" egid="$b" ;;
        Groups:) sup="$a" listed=1 ;;
      esac
    done < /proc/self/status
  fi
  read -r -a ids <<< "$sup"  # split, never expanded as a pattern
  if [ -z "$rgid" ] || [ -z "$egid" ] || [ -z "$listed" ] || [[ "$rgid $egid ${ids[*]-}" == *[!0-9\ ]* ]]; then
    printf -v "$1" '%s' "$(id -G)"; return
  fi
  out="$rgid" prev="$egid"
  [ "$egid" = "$rgid" ] || out+=" $egid"
  for g in ${ids[@]+"${ids[@]}"}; do
    [ "$g" = "$egid" ] || [ "$g" = "$prev" ] && continue
    prev="$g"
    [ "$g" = "$rgid" ] || out+=" $g"
  done
  printf -v "$1" '%s' "$out"
}

printf 'probe\tbar\t2\n'
groups_to gids
printf 'id\t%s\t%s\n' "$EUID" "$gids"
if [ ! -d "$bar" ]; then
  printf 'missing\t%s\n' "$(enc "$BAR_DIR")"
  printf 'end\n'
  exit 0
fi
probe_dir="$bar/.dvdoctor-write-test.$$"
if [ "${WRITE_PROBE:-1}" = 0 ]; then
  printf 'writes-unprobed\n'
elif mkdir "$probe_dir" 2>/dev/null || err=$(exec mkdir "$probe_dir" 2>&1); then  # the second: its message
  rmdir "$probe_dir"
  printf 'writable\t1\t\n'
else
  err="${err//"$bar"/"$BAR_DIR"}"  # the pod's path, also where the lab maps it elsewhere
  printf 'writable\t0\t%s\n' "$(enc "$(printf '%s' "$err" | flat)")"
fi
df_total="" df_avail="" df_used=""
{ read -r _ && read -r _ df_total df_used df_avail _; } < <(exec df -P -B1 "$bar")
if [ -n "$df_total" ]; then printf 'df\t%s\t%s\t%s\n' "$df_total" "$df_avail" "$df_used"; else printf 'df\t\n'; fi
used=$(exec du -sbD "$bar" 2>/dev/null)
printf 'du\t%s\n' "${used%%$'\t'*}"
# Names and link targets come NUL-terminated from find, so no byte in them can split a record. What
# later steps need of an entry is kept: a regular file's size by path, the restore-point link's target.
# The folder itself comes first (depth 0, an empty path; -H: the folder a link names, as `stat -L`
# would): its mode and owners are the `dir` record.
declare -A size_of=()
unset link_target
while IFS= read -r -d '' meta && IFS= read -r -d '' path && IFS= read -r -d '' target; do
  read -r type size mtime mode uid gid <<< "$meta"
  if [ -z "$path" ]; then printf 'dir\t%s\t%s\t%s\n' "$mode" "$uid" "$gid"; continue; fi
  case "$type" in
    f) size_of["$path"]="$size" ;;
    l) [ "$path" = "$link" ] && link_target="$target" ;;
  esac
  enc_to path_f "$path"; enc_to target_f "$target"
  printf 'entry\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$type" "$size" "$mtime" "$mode" "$uid" "$path_f" "$target_f"
done < <(find -H "$bar" -maxdepth 2 -printf '%y %s %T@ %m %U %G\0%P\0%l\0' 2>/dev/null)
link_ts=""
if [ -L "$bar/$link" ]; then
  if [ -n "${link_target+set}" ]; then target="$link_target"  # as find printed it
  else target=$(readlink "$bar/$link"; printf x); target="${target%?x}"; fi  # made since
  case "$target" in
    /*) resolved="${DV_ROOT:-}$target" ;;
    *) resolved="$bar/$target" ;;
  esac
  if [ -f "$resolved" ]; then exists=1; else exists=0; fi
  enc_to link_f "$link"; enc_to target_f "$target"
  printf 'link\t%s\t%s\t%s\n' "$link_f" "$target_f" "$exists"
  rel="${target#"$BAR_DIR"/}"; rel="${rel#./}"
  [ "$rel" = "${rel%%/*}/dv_backup.tar.gz" ] && is_ts "${rel%%/*}" && link_ts="${rel%%/*}"
fi

# Backup folders (timestamp names only, none dated in the future), newest first; the restore
# point's goes first of all.
printf -v now '%(%s)T' -1
TZ=UTC0 printf -v horizon '%(%Y-%m-%d-%H-%M-%S)T' "$((now + 600))"
all_ts=()
for d in "$bar"/*/; do
  d="${d%/}"; d="${d##*/}"
  is_ts "$d" && [ ! -L "$bar/$d" ] && [[ ! "$d" > "$horizon" ]] && all_ts=("$d" ${all_ts[@]+"${all_ts[@]}"})
done
order=()
[ -n "$link_ts" ] && [ -d "$bar/$link_ts" ] && order=("$link_ts")
for ts in ${all_ts[@]+"${all_ts[@]}"}; do [ "$ts" = "$link_ts" ] || order+=("$ts"); done

for ts in ${order[@]+"${order[@]}"}; do
  manifest="$bar/$ts/dvdoctor-manifest.json"
  [ -f "$manifest" ] || continue
  size="${size_of["$ts/dvdoctor-manifest.json"]:-}"
  [ -n "$size" ] || size=$(exec stat -c '%s' "$manifest")  # made since the listing
  if [ "$size" -le 65536 ]; then content=$(exec base64 -w0 < "$manifest"); else content=""; fi
  printf 'manifest\t%s\t%s\t%s\n' "$ts" "$size" "$content"
done

# One streamed pass over a combined tarball, in constant memory, nothing written to disk: its bytes
# go to sha256sum and to `tar -xz`, which hands each member to MEMBER_CHECK on stdin; a component
# tarball inside is gunzipped and listed there (gzip's CRC and tar's structure, to their very end).
# Not `tar -tz` there: GNU tar calls a stream under 512 bytes an empty archive (exit 0), and stops
# at the end-of-archive without gzip's CRC; `gzip -dc | tar -tf -`, both statuses counted, sees both.
# And `-i` (read on past blocks of NULs) with `-R` (each block of NULs listed): a restore (`tar -xzf`)
# stops at the first end-of-archive and drops what follows (a concatenated dump's second archive, a
# member after a lone block of NULs), so a member listed after one is damage; tar reads to the end of
# the stream, so padding of any size ends in gzip's CRC, never in SIGPIPE (break-it, session 17).
# Few processes a member: the check is POSIX sh, run by the very `sh -c` tar starts for each member
# (`eval`: no second shell; dash in the lab, bash on DV's image), the messages go to files (gzip's to
# its own: written at once with tar's, they interleaved, and a message changed from run to run; then
# tar's and sed's, whose one line is written when it ends, last),
# and a component that read back whole has left nothing to drain (gzip read to its end). sh has no
# pipefail: each stage of the pipeline says its own status on fd 3, and all three must be 0.
# The look at the listing is one sed program (DVDOCTOR_LOOK), which reads it to its end (no SIGPIPE
# to tar or gzip) unless it finds damage; names are C-quoted (`--quoting-style=c`: a newline in a name
# is `\n`, a quote `\"`), so each member is one line and its name is the line's first quoted field:
# - a member line after a block of NULs (the end-of-archive) is data a restore drops;
# - a member whose name holds a `..` component is listed (`tar -t` exits 0) but a restore refuses it
#   (`tar -x`: "Member name contains '..'", exit 2). A leading `/` is stripped and restored, and a
#   link's target (after the name) is not a name tar refuses: both are restorable, as tar -x says.
#   (Break-it, session 18: tar's stderr line about the prefix it strips prints names raw, so a
#   newline split it, and a hard link's target could forge one.)
# - a multi-volume continuation (`M`, a member's rest from an earlier volume) is listed, but a restore
#   cannot extract it (exit 2) (break-it, session 18; DV's dumps are single volumes);
# - a component that holds no regular file with data (a valid but empty archive, only a folder, links
#   or empty files: what a dump that wrote nothing leaves) is no backup of anything: damaged. A file with
#   data: `-rw-r--r-- uid/gid SIZE date time "name"`, SIZE not 0 (also `C`, contiguous, and `?`, a type
#   tar does not know: both are extracted as regular files).
# Each of these prints why, then the line (cut to 150 characters: the reason survives the message's
# 300), once; sed then reads the listing on to its end and exits 1 there. Not at once: tar, still
# writing, would die of SIGPIPE a moment later or not, and its "write error" would make the message
# depend on timing (break-it, session 18: /bin/sh as dash and as bash said the same twice, once not).
# The hold space keeps three flags: E (an end-of-archive seen), D (a file with data seen), F (damage said).
export DVDOCTOR_COMPONENTS="$COMPONENTS"
export DVDOCTOR_AFTER_END_WHY="data follows its tar end-of-archive (a restore stops there and drops it)"
export DVDOCTOR_DOTDOT_WHY="a member's name holds '..', which a restore refuses (tar -x: Member name contains '..')"
export DVDOCTOR_CONTINUED_WHY="a member is continued from another volume (a restore cannot extract it)"
export DVDOCTOR_NO_DATA_WHY="no file with data in it (empty, or only folders, links or empty files)"
_tars_own='^block [0-9]*: \*\* \(Block of NULs\|End of File\) \*\*$'
_quoted='\([^"\\]\|\\.\)*'  # what a C-quoted name holds: any character but a quote or a backslash, or an escape
_cut='s/^\(.\{150\}\).\{1,\}/\1.../'
_damage='x;s/$/F/;x;${q1};d'  # said once: flag F, then read on in silence, and exit 1 at the end
export DVDOCTOR_LOOK="x;/F/{x;\${q1};d};x
# a member line (not one of tar's own lines about blocks)
/$_tars_own/!{
# after an end-of-archive
x;/E/{x;$_cut;s/^/$DVDOCTOR_AFTER_END_WHY: /p;$_damage};x
# its name (the first quoted field) holds a .. component
/^block [0-9]*: [^\"]*\"\($_quoted\/\)\{0,1\}\.\.\(\/$_quoted\)\{0,1\}\"/{$_cut;s/^/$DVDOCTOR_DOTDOT_WHY: /p;$_damage}
# continued from another volume
/^block [0-9]*: M/{$_cut;s/^/$DVDOCTOR_CONTINUED_WHY: /p;$_damage}
# a file with data: flag D
/^block [0-9]*: [-C?][^ ]* [^ ]*  *[1-9]/{x;s/D//;s/\$/D/;x}
}
# a block of NULs: flag E
/^block [0-9]*: \*\* Block of NULs \*\*\$/{x;s/E//;s/\$/E/;x}
# the listing's end without a file with data
\${x;/D/!{s/.*/$DVDOCTOR_NO_DATA_WHY/p;q1};x}"
export DVDOCTOR_MEMBER_CHECK='set -f
n="${TAR_FILENAME#./}"
for c in $DVDOCTOR_COMPONENTS; do
  [ "$n" = "$c" ] || continue
  st=$( { { gzip -dc 2> "$DVDOCTOR_READBACK/gzip-err"; echo "gzip=$?" >&3; } | { tar -itvRf - --numeric-owner --quoting-style=c; echo "tar=$?" >&3; } |
          { sed -n "$DVDOCTOR_LOOK"; echo "look=$?" >&3; } >&2; } 2> "$DVDOCTOR_READBACK/member-err" 3>&1 > /dev/null )
  case "$st" in *gzip=0*) case "$st" in *tar=0*) case "$st" in *look=0*) printf "%s\t1\t\n" "$n"; exit 0 ;; esac ;; esac ;; esac
  printf "%s\t0\t%s\n" "$n" "$(cat "$DVDOCTOR_READBACK/gzip-err" "$DVDOCTOR_READBACK/member-err" | tr "\t\n" "  " | tail -c 300)"
done
exec cat > /dev/null'

# read_back TARBALL: sets rb_state (good, damaged or unreadable), rb_sum (the sha256) and rb_why.
read_back() {
  local tmp rc gz name ok msg part found line
  rb_sum="" rb_why=""
  tmp="${TMPDIR:-/tmp}/dvdoctor-readback.$$.$RANDOM$RANDOM"
  # mkdir, never an existing path (a link planted there included), 0700 as mktemp -d makes it
  if ! mkdir -m 0700 "$tmp" 2>/dev/null; then
    rb_state=unreadable rb_why="no temporary folder: cannot create $tmp"; return
  fi
  [ -r "$1" ] || { rm -rf "$tmp"; rb_state=unreadable rb_why="not readable by uid $EUID"; return; }
  # One pass over the file: tee hands its bytes to sha256sum, and to the read-back through fd 3 (the
  # pipeline's own pipe, named /dev/fd/3 as process substitution names its own: no fifo to make); in a
  # pod where /dev/fd does not name a process's pipes (no /proc, or a /dev/fd of another kind), through
  # a fifo: tee could not reach fd 3 (or wrote a file there), and every backup read back empty
  # (break-it, session 17).
  # whether /dev/fd/N is this process's fd N (a pipe shows as a fifo there): asked at the first
  # read-back of the run, two forks and no program
  if [ -z "${fd_names_pipes+set}" ]; then fd_names_pipes=""; if : | { [ -p /dev/fd/0 ]; }; then fd_names_pipes=1; fi; fi
  local second=/dev/fd/3
  if [ -z "$fd_names_pipes" ]; then second="$tmp/fifo"; mkfifo "$second"; fi
  # gzip outside tar, and tar's input drained once it has read the archive's end: `tar -xz` stopped at
  # the end-of-archive, and its gzip, killed by SIGPIPE before its CRC when more than a pipe's worth
  # followed, was no error to tar (a combined tarball with a bad CRC read back good). Both statuses count.
  { tee "$second" | sha256sum > "$tmp/sum" 3>&-; } < "$1" 3>&1 > /dev/null |
  ( export DVDOCTOR_READBACK="$tmp"
    [ "$second" = /dev/fd/3 ] || exec < "$second"
    { gzip -dc | { tar -xvvf - --index-file="$tmp/index" --to-command='eval "$DVDOCTOR_MEMBER_CHECK"' > "$tmp/members"; rc=$?
                   # tar reads a whole archive's last record: a byte after it (read by the shell) is
                   # what makes the drain start at all
                   IFS= read -r -d '' -n 1 _ && cat > /dev/null; exit "$rc"; }
      st=("${PIPESTATUS[@]}"); gz="${st[0]}"; printf '%s %s' "${st[1]}" "$gz" > "$tmp/rc"; } 2> "$tmp/err"
    # gzip that succeeded read its input to the end (it looks for a next member until then): only a
    # gzip that failed may leave bytes that tee, still writing, must be able to get rid of
    [ "$gz" = 0 ] || exec cat > /dev/null )
  read -r rb_sum _ < "$tmp/sum"
  rc='?' gz='?'
  read -r rc gz 2>/dev/null < "$tmp/rc"  # written without a newline: read says EOF, both are set
  if [ "$rc" != 0 ] || [ "$gz" != 0 ]; then
    rb_state=damaged rb_why="reading it: $(flat < "$tmp/err")"
    rm -rf "$tmp"; return
  fi
  # --to-command is handed regular files only: a member of a component's name that is a link, a folder
  # or a device (one after a good copy is what extracting leaves) shows in tar's own listing
  while IFS= read -r line; do
    [ "${line:0:1}" = - ] && continue
    for part in $COMPONENTS; do
      case "$line" in
        *" $part"|*" ./$part"|*" $part/"|*" ./$part/"|*" $part -> "*|*" ./$part -> "*|*" $part link to "*|*" ./$part link to "*)
          rb_state=damaged rb_why="its $part is also a member that is not a file: $(printf '%s' "$line" | flat)"
          rm -rf "$tmp"; return ;;
      esac
    done
  done < "$tmp/index"
  for part in $COMPONENTS; do
    found=""
    while IFS=$'\t' read -r name ok msg; do
      [ "$name" = "$part" ] || continue
      found=1
      [ "$ok" = 1 ] || { rb_state=damaged rb_why="its $part does not read back: $msg"; rm -rf "$tmp"; return; }
    done < "$tmp/members"
    [ -n "$found" ] || { rb_state=damaged rb_why="it holds no $part"; rm -rf "$tmp"; return; }
  done
  rm -rf "$tmp"
  rb_state=good
}

spent=0
read_any=""
for ts in ${order[@]+"${order[@]}"}; do
  tarball="$bar/$ts/dv_backup.tar.gz"
  [ -f "$tarball" ] && [ ! -L "$tarball" ] || continue
  # now, not at the listing: a file replaced since then (an earlier read-back may take minutes) must not
  # match the record of the one it replaced
  stamp=$(exec stat -c '%s:%Y' "$tarball")
  size="${stamp%%:*}"
  printf 'stamp\t%s\t%s\n' "$ts" "$stamp"
  skip="${VERIFY_SKIP:-}"
  if [ "$ts" = "$skip" ] || { [ "${skip#@since:}" != "$skip" ] && [[ ! "$ts" < "${skip#@since:}" ]] && [ "$ts" != "$link_ts" ]; }; then
    printf 'readback\t%s\tunread\t\t%s\n' "$ts" "$(enc "a backup job is writing it")"; continue
  fi
  # Cheap for every one: an empty file or one that is not gzip data is damaged, whatever was recorded.
  if [ "$size" = 0 ]; then
    printf 'readback\t%s\tdamaged\t\t%s\n' "$ts" "$(enc "it is empty (0 bytes)")"; continue
  fi
  # Readable before anything is read from it: a file this uid may not read (root-owned, the runbook's
  # Errno 13) is a permission problem, never damage; its bytes are unknown, so no record counts either.
  if [ ! -r "$tarball" ]; then
    printf 'readback\t%s\tunreadable\t\t%s\n' "$ts" "$(enc "not readable by uid $EUID")"; continue
  fi
  # gzip's two magic bytes, read by the shell itself (no process); read skips NUL bytes, so a file that
  # starts NUL 1f 8b passes here and is found damaged by its read-back instead
  start=""
  IFS= read -r -N 2 start 2>/dev/null < "$tarball"
  if [ "$start" != $'\x1f\x8b' ]; then
    magic=$(head -c 2 "$tarball" 2>/dev/null | od -An -tx1 | tr -d ' \n')
    printf 'readback\t%s\tdamaged\t\t%s\n' "$ts" "$(enc "it is not gzip data (it starts with ${magic:-nothing})")"; continue
  fi
  also=""
  for a in ${VERIFY_ALSO:-}; do
    case "$a" in
      "$ts") also=1 ;;
      @link) [ "$ts" = "$link_ts" ] && also=1 ;;
      @newest) [ "$ts" = "${all_ts[0]:-}" ] && also=1 ;;
    esac
  done
  recorded=""
  manifest="$bar/$ts/dvdoctor-manifest.json"
  [ -f "$manifest" ] && grep -qF "\"stamp\": \"$stamp\"" "$manifest" 2>/dev/null && recorded=1
  if [ -z "$also" ]; then
    case "${VERIFY:-recorded}" in
      all) ;;
      unrecorded) if [ -n "$recorded" ]; then
                    printf 'readback\t%s\trecorded\t\t\n' "$ts"; continue
                  fi ;;
      *) if [ -n "$recorded" ]; then state=recorded; else state=unread; fi
         printf 'readback\t%s\t%s\t\t\n' "$ts" "$state"; continue ;;
    esac
    budget="${VERIFY_BUDGET:-0}"
    if [ -n "$read_any" ] && [ "$budget" -gt 0 ] && [ $((spent + size)) -gt "$budget" ]; then
      printf 'readback\t%s\tunread\t\t%s\n' "$ts" "$(enc "not read back: over this run's read-back budget of $budget bytes")"
      continue
    fi
  fi
  read_back "$tarball"
  spent=$((spent + size)); read_any=1
  enc_to why_f "$rb_why"
  printf 'readback\t%s\t%s\t%s\t%s\n' "$ts" "$rb_state" "$rb_sum" "$why_f"
done
printf 'end\n'
