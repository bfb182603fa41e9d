"""A hostile media folder, generated: decompression bombs (by area, by aspect ratio, in every image format),
truncated, corrupt and mislabelled files, SVG, animations, unusual pixel modes, degenerate sounds (no samples,
eight channels, NaN, inf, 1e30, an hour long, absurd rates), and file-system oddities (empty files, FIFOs,
dangling and escaping links, names that are not UTF-8, hold a newline, start with a dash or look like markup).

`write_corpus(folder, outside)` writes it and returns the kinds with what the indexer must do with each:
"indexed", "failed" (decoded and refused, remembered until it changes), "skipped" (not an indexable file,
named with its reason) or "ignored" (not a media file name at all)."""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image
from search_media import picture, png_bytes, tone, wav_bytes

HOUR_RATE, HOUR_CHANNELS = 44100, 2


@dataclass(frozen=True)
class Kind:
    """One hostile file: its name in the folder, what the indexer must do with it, and a word of the reason."""

    name: str | bytes
    outcome: str
    reason: str = ""


def png_header(width: int, height: int, mode: int = 2) -> bytes:
    """A PNG whose header claims width × height pixels, with a few bytes of (deflated) data and no more."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, mode, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


def gif_header(width: int, height: int) -> bytes:
    """A GIF whose logical screen and only frame claim width × height."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00\x3b"
    return screen + frame


def bmp_header(width: int, height: int) -> bytes:
    """A 24-bit BMP whose header claims width × height, with no pixel data."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + 16, 0, 0, 14 + len(info)) + info + b"\0" * 16


def jpeg_header(width: int, height: int) -> bytes:
    """A small JPEG whose frame header claims width × height."""
    real = io.BytesIO()
    picture(0).save(real, format="JPEG")
    data = real.getvalue()
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]


def tiff_header(width: int, height: int) -> bytes:
    """A TIFF whose only directory claims width × height, one strip of 8 bytes."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, 8)]
    directory = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0" * 4
    return b"II*\0" + struct.pack("<I", 16) + b"\0" * 8 + directory


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def wav(samples: np.ndarray, rate: int = 16000, subtype: str | None = None) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format="WAV", subtype=subtype)
    return out.getvalue()


def wav_with_rate(rate: int) -> bytes:
    """A 16-bit WAV of 1000 samples whose header claims `rate` samples per second."""
    data = wav(tone(440.0, seconds=1000 / 16000))
    return data[:24] + struct.pack("<II", rate, min(rate * 2, 2**32 - 1)) + data[32:]


def write_hour_wav(path: Path) -> None:
    """An hour of 44.1 kHz stereo 16-bit silence (635 MB), written sparse: the header is real, the data zeros."""
    frames = 3600 * HOUR_RATE
    header = wav(np.zeros((1, HOUR_CHANNELS), dtype=np.float32), HOUR_RATE, "PCM_16")
    data_at = header.index(b"data")
    size = frames * HOUR_CHANNELS * 2
    riff = struct.pack("<I", data_at + size)
    head = header[:4] + riff + header[8:data_at] + b"data" + struct.pack("<I", size)
    with path.open("wb") as out:
        out.write(head)
        out.truncate(len(head) + size)


def strip_png() -> bytes:
    """A PNG of 1 × 39,999,999 pixels: 40 MB of pixels in about 40 KB, under an area cap, over a side cap."""
    return png_header(1, 39_999_999, mode=0)


def animated(fmt: str) -> bytes:
    frames = [picture(i) for i in range(3)]
    return encoded(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50)


WRITERS: dict[str, tuple[str, Callable[[], bytes], str]] = {
    # name: (outcome, bytes, a word of the reason)
    "bomb_area.png": ("failed", lambda: png_header(30_000, 30_000), "too large"),
    "bomb_aspect.png": ("failed", strip_png, "too large"),
    "bomb_wide.png": ("failed", lambda: png_header(39_999_999, 1, mode=0), "too large"),
    "side_over.png": ("failed", lambda: png_header(20_000, 8), "too large"),
    "bomb.gif": ("failed", lambda: gif_header(65_535, 65_535), "too large"),
    "bomb.bmp": ("failed", lambda: bmp_header(50_000, 50_000), "too large"),
    "bomb.jpg": ("failed", lambda: jpeg_header(65_000, 65_000), "too large"),
    "bomb.tiff": ("failed", lambda: tiff_header(100_000, 100_000), "too large"),
    "truncated.png": ("failed", lambda: encoded(picture(1).resize((200, 200)), "PNG")[:300], "cannot decode"),
    "truncated.jpg": ("failed", lambda: encoded(picture(2).resize((200, 200)), "JPEG")[:400], "cannot decode"),
    "bad_crc.png": ("failed", lambda: png_bytes(3)[:30] + b"\0\0\0\0" + png_bytes(3)[34:], "cannot decode"),
    "text_as.png": ("failed", lambda: b"hello, I am not a picture", "not a recognised image format"),
    "svg_as.png": ("failed", lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="9e9" height="9e9"/>',
                   "not a recognised image format"),
    "wav_as.jpg": ("failed", wav_bytes, "not a recognised image format"),
    "jpeg_as.png": ("indexed", lambda: encoded(picture(4), "JPEG"), ""),
    "animated.gif": ("indexed", lambda: animated("GIF"), ""),
    "animated.webp": ("indexed", lambda: animated("WEBP"), ""),
    "cmyk.jpg": ("indexed", lambda: encoded(picture(5).convert("CMYK"), "JPEG"), ""),
    "grey16.png": ("indexed", lambda: encoded(Image.fromarray(np.arange(48 * 40, dtype=np.uint16).reshape(40, 48)
                                                              * 30), "PNG"), ""),
    "float.tiff": ("indexed", lambda: encoded(Image.fromarray(np.linspace(0, 1, 64, dtype=np.float32)
                                                              .reshape(8, 8)), "TIFF"), ""),
    "palette_alpha.png": ("indexed", lambda: encoded(picture(6).convert("P"), "PNG", transparency=0), ""),
    "one_pixel.png": ("indexed", lambda: encoded(Image.new("RGB", (1, 1), "red"), "PNG"), ""),
    "drawing.svg": ("ignored", lambda: b'<svg xmlns="http://www.w3.org/2000/svg"/>', ""),
    "zero_samples.wav": ("failed", lambda: wav(np.zeros(0, dtype=np.float32)), "zero samples"),
    "nan.wav": ("failed", lambda: wav(np.full(800, np.nan, dtype=np.float32), subtype="FLOAT"), "NaN"),
    "inf.wav": ("failed", lambda: wav(np.full(800, np.inf, dtype=np.float32), subtype="FLOAT"), "NaN or infinite"),
    "loud.wav": ("failed", lambda: wav(np.full(800, 1e30, dtype=np.float32), subtype="FLOAT"), "sample values"),
    "truncated.wav": ("indexed", lambda: wav_bytes()[:2000], ""),  # libsndfile decodes the part that is there
    "header_only.wav": ("failed", lambda: wav_bytes()[:44], "zero samples"),
    "riff_only.wav": ("failed", lambda: b"RIFF\x10\0\0\0WAVE", "cannot"),
    "text_as.mp3": ("failed", lambda: b"ID3 nothing to hear here", "cannot"),
    "text_as.flac": ("failed", lambda: b"fLaC and then nothing", "cannot"),
    "rate_4e9.wav": ("failed", lambda: wav_with_rate(4_000_000_000), "cannot"),
    "eight_channels.wav": ("indexed", lambda: wav(np.stack([tone(110.0 * (c + 1)) for c in range(8)], axis=1)), ""),
    "five_samples.wav": ("indexed", lambda: wav(tone(440.0)[:5]), ""),
    "flac_as.wav": ("indexed", lambda: _flac(), ""),
    "rate_1hz.wav": ("indexed", lambda: wav_with_rate(1), ""),
    "-rf.png": ("indexed", lambda: png_bytes(7), ""),
    "new\nline.png": ("indexed", lambda: png_bytes(8), ""),
    "[bold red]markup.png": ("indexed", lambda: png_bytes(9), ""),
    "zero.png": ("skipped", lambda: b"", "empty file"),
    "zero.flac": ("skipped", lambda: b"", "empty file"),
    ".hidden.png": ("ignored", lambda: png_bytes(10), ""),
}


def _flac() -> bytes:
    out = io.BytesIO()
    soundfile.write(out, tone(330.0), 16000, format="FLAC")
    return out.getvalue()


def write_corpus(folder: Path, outside: Path) -> dict[str | bytes, Kind]:
    """Write the corpus into `folder` (with links to `outside`, a folder beside it) and say what each is."""
    folder.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    kinds: dict[str | bytes, Kind] = {}
    for name, (outcome, make, reason) in WRITERS.items():
        (folder / name).write_bytes(make())
        kinds[name] = Kind(name, outcome, reason)
    write_hour_wav(folder / "hour.wav")
    kinds["hour.wav"] = Kind("hour.wav", "indexed")
    (outside / "secret.png").write_bytes(png_bytes(11))
    (outside / "passwd.png").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / "good.png").write_bytes(png_bytes(12))
    kinds["sub/good.png"] = Kind("sub/good.png", "indexed")
    links = {"escape.png": outside / "secret.png", "escape_text.png": outside / "passwd.png",
             "inside_link.png": folder / "sub" / "good.png", "dangling.png": folder / "nowhere.png"}
    for name, target in links.items():
        os.symlink(target, folder / name)
        kinds[name] = Kind(name, "skipped", "dangling symbolic link" if name == "dangling.png" else "symbolic link")
    os.symlink(outside, folder / "linked_folder")  # a link to a folder is never entered
    kinds["linked_folder"] = Kind("linked_folder", "ignored")
    os.mkfifo(folder / "fifo.wav")
    kinds["fifo.wav"] = Kind("fifo.wav", "skipped", "not a regular file (a FIFO)")
    bad = os.fsencode(folder) + b"/bad\xff\xfename.png"
    with open(bad, "wb") as out:
        out.write(png_bytes(13))
    kinds[b"bad\xff\xfename.png"] = Kind(b"bad\xff\xfename.png", "skipped", "not valid UTF-8")
    (folder / "dir.png").mkdir()  # a folder with a media name is a folder
    kinds["dir.png"] = Kind("dir.png", "ignored")
    return kinds
