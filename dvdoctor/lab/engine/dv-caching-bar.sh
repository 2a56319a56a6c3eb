#!/usr/bin/env bash
# Lab stand-in for DV's /opt/dv/current/bar/scripts/dv-caching-bar.sh (written for dvdoctor): it only
# records that it ran and with which argument, in /var/log/dv/dv-caching-bar.log of dv-engine-0.
set -u
case "${1:-}" in
  true|false) ;;
  *) echo "usage: dv-caching-bar.sh true|false" >&2; exit 2 ;;
esac
printf '%s dv-caching-bar.sh %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" >> "${DV_ROOT:-}/var/log/dv/dv-caching-bar.log"
echo "DV caching BAR state set to $1"
