#!/usr/bin/env bash
# Optional Debian packages: bubblewrap lets local platform jobs mount volumes.
# Installed when missing and apt-get can run; without it, volume tests are skipped.
set -euo pipefail
missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]}"
  sudo -n apt-get update -qq >/dev/null
  sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "note: ${missing[*]} not installed and apt-get is not available to this user;" \
       "jobs with volumes will fail on the local platform and their tests are skipped"
fi
