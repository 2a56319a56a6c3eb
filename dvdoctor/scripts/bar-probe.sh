#!/usr/bin/env bash
# Inspect DV's backup volume the way the runbook does with `df -h` and `ls -ltr`, from a pod that
# mounts it as the BAR job's uid. Prints one tab-separated record a line; `end` closes a whole run.
# Inputs (environment only): BAR_DIR (the mount path), SYMLINK (the restore-point link's name),
# VERIFY (1: also read every combined tarball back: gzip -t and a tar listing holding every one of
# COMPONENTS, the component tarballs' names, space-separated), DV_ROOT (the lab's pod root; empty in a pod).
# Each backup's dvdoctor-manifest.json (the instance that took it) is sent base64-encoded on one
# line when at most 64 KiB; a bigger one (not dvdoctor's) is reported by its size only.
set -u
bar="${DV_ROOT:-}${BAR_DIR:?BAR_DIR is required}"
link="${SYMLINK:-dv_backup.tar.gz}"
printf 'probe\tbar\t1\n'
printf 'id\t%s\t%s\n' "$(id -u)" "$(id -G)"
if [ ! -d "$bar" ]; then
  printf 'missing\t%s\n' "$BAR_DIR"
  printf 'end\n'
  exit 0
fi
printf 'dir\t%s\n' "$(stat -L -c '%a	%u	%g' "$bar")"
probe_dir="$bar/.dvdoctor-write-test.$$"
if err=$(mkdir "$probe_dir" 2>&1); then
  rmdir "$probe_dir"
  printf 'writable\t1\t\n'
else
  err="${err//"$bar"/"$BAR_DIR"}"  # the pod's path, also where the lab maps it elsewhere
  printf 'writable\t0\t%s\n' "$(printf '%s' "$err" | tr '\t\n' '  ')"
fi
printf 'df\t%s\n' "$(df -P -B1 "$bar" | awk 'NR==2 {print $2 "\t" $4 "\t" $3}')"
printf 'du\t%s\n' "$(du -sbD "$bar" 2>/dev/null | cut -f1)"
find -H "$bar" -mindepth 1 -maxdepth 2 -printf 'entry\t%y\t%s\t%T@\t%m\t%U\t%P\t%l\n' 2>/dev/null
if [ -L "$bar/$link" ]; then
  target=$(readlink "$bar/$link")
  case "$target" in
    /*) resolved="${DV_ROOT:-}$target" ;;
    *) resolved="$bar/$target" ;;
  esac
  if [ -f "$resolved" ]; then exists=1; else exists=0; fi
  printf 'link\t%s\t%s\t%s\n' "$link" "$target" "$exists"
fi
for manifest in "$bar"/*/dvdoctor-manifest.json; do
  [ -f "$manifest" ] || continue
  rel="${manifest#"$bar"/}"
  size=$(stat -c '%s' "$manifest")
  if [ "$size" -le 65536 ]; then content=$(base64 -w0 < "$manifest"); else content=""; fi
  printf 'manifest\t%s\t%s\t%s\n' "${rel%%/*}" "$size" "$content"
done
# A combined tarball is good only when it reads back to the end (gzip -t) and its tar listing holds
# every component tarball: a job killed while writing it leaves a file that may even gunzip cleanly.
read_back() { # TARBALL -> message on stdout, exit 1 when it does not read back
  local msg listing part
  msg=$(gzip -t "$1" 2>&1) || { printf 'gzip -t: %s' "$msg"; return 1; }
  listing=$(tar -tzf "$1" 2>&1) || { printf 'tar listing: %s' "$(printf '%s' "$listing" | tail -n 2)"; return 1; }
  for part in $COMPONENTS; do
    printf '%s\n' "$listing" | grep -qxF -e "$part" -e "./$part" || { printf 'tar listing has no %s' "$part"; return 1; }
  done
}
if [ "${VERIFY:-0}" = 1 ]; then
  COMPONENTS="${COMPONENTS:-dv_backup_dv_metastore.tar.gz dv_backup_dv_engine.tar.gz}"
  for tarball in "$bar"/*/dv_backup.tar.gz; do
    [ -f "$tarball" ] || continue
    if msg=$(read_back "$tarball"); then ok=1; else ok=0; fi
    printf 'verify\t%s\t%s\t%s\n' "${tarball#"$bar"/}" "$ok" "$(printf '%s' "$msg" | tr '\t\n' '  ')"
  done
fi
printf 'end\n'
