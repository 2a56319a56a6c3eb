#!/usr/bin/env bash
# The programs the copies tests drive for real: restic (the copy engine) and rclone (a REST server
# for restic's protocol). Installed from Debian's packages when this runs as root on Debian;
# elsewhere the tests that need them skip and say why.
set -euo pipefail
missing=()
for tool in restic rclone; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test-tools: ${missing[*]} not installed and this is not root on Debian: the tests that need them will skip" >&2
  exit 0
fi
echo "test-tools: installing ${missing[*]} from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
