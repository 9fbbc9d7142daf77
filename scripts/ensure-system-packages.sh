#!/usr/bin/env bash
# Optional Debian packages, installed when missing and apt-get can run:
#   bubblewrap  - local platform jobs with volumes (without it, those tests are skipped)
#   postgresql  - the metadata DB of the deployment suite (make e2e)
#   redis       - the CeleryExecutor's broker in the deployment suite (make e2e)
# Usage: ensure-system-packages.sh [bubblewrap] [postgresql] [redis]
set -euo pipefail
wanted=("${@:-bubblewrap}")
missing=()
for package in "${wanted[@]}"; do
  case "$package" in
    bubblewrap) command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap) ;;
    postgresql) compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql) ;;
    redis) command -v redis-server >/dev/null 2>&1 || missing+=(redis-server) ;;
    *) echo "unknown package $package" >&2; exit 2 ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "note: ${missing[*]} not installed and apt-get cannot run as this user;" \
       "the tests that need it are skipped"
  exit 0
fi
command -v apt-get >/dev/null 2>&1 || { echo "note: no apt-get; install ${missing[*]} yourself"; exit 0; }
echo "installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq >/dev/null
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
