"""Tux Paint stamps: a picture, its English caption (first line of NAME.txt) and, where the package has
one, its sound (NAME.ogg, or the English NAME_en*.ogg) and a human narration of the caption (NAME_desc.ogg)."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image

from omnibind.starter.items import Excluded, Item, assign_split, png_bytes, slug
from omnibind.starter.provenance import provenance

ROOT = Path("/usr/share/tuxpaint/stamps")
PACKAGE = "tuxpaint-stamps-default"
MAX_SIDE = 512  # larger pictures are scaled down (the towers see 224 px or so)
SVG_SIDE = 384  # SVG-only stamps are drawn this big


@dataclass(frozen=True)
class Stamp:
    """One stamp: its picture file, caption and optional sound and narration files."""

    name: str  # path below ROOT without suffix, e.g. "animals/amphibians/frog"
    picture: Path
    caption: str
    sound: Path | None
    narration: Path | None

    @property
    def category(self) -> str:
        """The stamp's folder below ROOT, e.g. "animals/amphibians"."""
        return self.name.rpartition("/")[0]


def find_stamps(root: Path = ROOT) -> tuple[list[Stamp], dict[str, int]]:
    """Every stamp with an English caption (sorted by name), and counts of stamps left out and why."""
    stamps, excluded = [], {"no caption": 0}
    stems = sorted({p.with_suffix("") for p in root.rglob("*") if p.suffix in (".png", ".svg")})
    for stem in stems:
        caption = _caption(stem.with_suffix(".txt"))
        if not caption:
            excluded["no caption"] += 1
            continue
        png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
        picture = png if png.is_file() else svg
        sounds = [stem.with_suffix(".ogg"), *sorted(stem.parent.glob(f"{stem.name}_en*.ogg"))]
        sound = next((s for s in sounds if s.is_file()), None)
        narration = stem.parent / f"{stem.name}_desc.ogg"
        stamps.append(Stamp(str(stem.relative_to(root)), picture, caption, sound,
                            narration if narration.is_file() else None))
    return stamps, excluded


def _caption(path: Path) -> str:
    """The first line of a stamp's .txt file (English), with whitespace squeezed."""
    if not path.is_file():
        return ""
    first = path.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0]
    return re.sub(r"\s+", " ", first).strip()


def caption_group(caption: str) -> str:
    """Stamps with the same caption (variants, mirrored copies) share a split."""
    return "caption:" + slug(caption)


@lru_cache(maxsize=2048)
def stamp_picture(picture: Path) -> tuple[str, bytes]:
    """PNG bytes of a stamp: the original file when small enough, else scaled; SVGs rasterised."""
    if picture.suffix == ".svg":
        import cairosvg

        # unsafe=True lets XML entities through: some stamps (drawn in Illustrator) declare them, and these
        # are files from a Debian package, not input from the network.
        try:
            data = cairosvg.svg2png(url=str(picture), output_width=SVG_SIDE, unsafe=True)
            image = Image.open(io.BytesIO(data))
            if image.height > SVG_SIDE:
                data = cairosvg.svg2png(url=str(picture), output_height=SVG_SIDE, unsafe=True)
        except (ValueError, OSError, RuntimeError) as err:
            raise Excluded("SVG cannot be drawn", f"{picture}: {err}") from err
        return "png", data
    data = picture.read_bytes()
    image = Image.open(io.BytesIO(data))
    if max(image.size) <= MAX_SIDE:
        return "png", data
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return "png", png_bytes(image)


def _ogg(path: Path) -> tuple[str, bytes]:
    return "ogg", path.read_bytes()


def plan_stamps(seed: int, root: Path = ROOT) -> tuple[list[Item], list[Stamp], dict[str, int]]:
    """Stamp items (picture + caption [+ sound]) and narration items (picture + caption + narration)."""
    stamps, excluded = find_stamps(root)
    items = []
    for stamp in stamps:
        split = assign_split(seed, caption_group(stamp.caption))
        key = "stamp-" + slug(stamp.name)
        image_source = provenance(PACKAGE, str(stamp.picture), category=stamp.category)
        text_source = provenance(PACKAGE, str(stamp.picture.with_suffix(".txt")), line=1)
        meta = {"category": stamp.category, "stamp": stamp.name}
        item = Item(key, split, "stamp", stamp.caption, dict(meta), lambda p=stamp.picture: stamp_picture(p),
                    sources={"image": image_source, "text": text_source})
        if stamp.sound is not None:
            item.audio = lambda s=stamp.sound: _ogg(s)
            item.meta["audio_kind"] = "stamp sound"  # Tux Paint's sound: an effect, or the spoken name
            item.sources["audio"] = provenance(PACKAGE, str(stamp.sound))
        items.append(item)
        if stamp.narration is not None:
            items.append(Item(key + "-narration", split, "stamp narration", stamp.caption,
                              {**meta, "audio_kind": "narrated caption"},
                              lambda p=stamp.picture: stamp_picture(p), lambda s=stamp.narration: _ogg(s),
                              {"image": image_source, "text": text_source,
                               "audio": provenance(PACKAGE, str(stamp.narration), language="en")}))
    return items, stamps, excluded
