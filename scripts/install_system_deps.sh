#!/usr/bin/env bash
# Installs the Debian packages omnibind uses (libsndfile for soundfile is bundled in its wheel, so
# today none are strictly required). Runs apt only as root on a Debian-like system; elsewhere it
# prints what to install and carries on.
set -euo pipefail
PACKAGES=()
if [ ${#PACKAGES[@]} -eq 0 ]; then exit 0; fi
missing=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
  echo "omnibind: please install these system packages: ${missing[*]}" >&2
fi
