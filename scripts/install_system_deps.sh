#!/usr/bin/env bash
# Installs the Debian packages omnibind's tests use beyond Python wheels: Chromium for the web page's
# end-to-end test (libsndfile is bundled in soundfile's wheel). Runs apt only as root on a Debian-like
# system; elsewhere it prints what to install and carries on (the browser test then skips).
set -euo pipefail
# PostgreSQL 15 and pgvector 0.8.0 for the server-store tests (built from Debian's source package; see the script).
bash "$(dirname "$0")/install_postgres.sh"
PACKAGES=(chromium)
missing=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
  echo "omnibind: please install these system packages: ${missing[*]}" >&2
fi
