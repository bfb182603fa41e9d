"""Spoken captions: eSpeak NG reads each stamp caption and emoji name aloud, so speech links to the same
pictures and texts. Accents and voice variants are split: those in HELD_OUT_* never speak a training item."""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import soundfile

from omnibind.data.seeding import rng_for
from omnibind.errors import InputError
from omnibind.starter.items import UNSEEN_VOICE, Excluded, Item, Media, flac_bytes
from omnibind.starter.provenance import provenance

TRAIN_ACCENTS = ("en", "en-us", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc")
TRAIN_VARIANTS = ("m1", "m2", "m3", "m4", "f1", "f2", "f3")
HELD_OUT_ACCENTS = ("en-029", "en-gb-scotland")  # Caribbean and Scottish English
HELD_OUT_VARIANTS = ("m7", "f4")
SPEED = (140, 190)  # words per minute, drawn per item
PITCH = (35, 65)  # eSpeak pitch 0-99, drawn per item


@dataclass(frozen=True)
class Voice:
    """An eSpeak NG voice: accent (language voice) + variant, with the speed and pitch of one reading."""

    accent: str
    variant: str
    speed: int
    pitch: int

    @property
    def name(self) -> str:
        """The -v argument, e.g. "en-us+f3"."""
        return f"{self.accent}+{self.variant}"


def pick_voice(seed: int, key: str, held_out: bool) -> Voice:
    """A voice for one item, fixed by the seed and key; held-out voices only when `held_out`."""
    rng = rng_for(seed, "voice", key)
    accents, variants = (HELD_OUT_ACCENTS, HELD_OUT_VARIANTS) if held_out else (TRAIN_ACCENTS, TRAIN_VARIANTS)
    return Voice(rng.choice(accents), rng.choice(variants), rng.randint(*SPEED), rng.randint(*PITCH))


def speak(text: str, voice: Voice) -> tuple[str, bytes]:
    """FLAC bytes of eSpeak NG reading `text` in `voice`."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise InputError("espeak-ng", "not installed", "Debian package espeak-ng (make data-deps)")
    command = [espeak, "-v", voice.name, "-s", str(voice.speed), "-p", str(voice.pitch), "--stdout", text]
    result = subprocess.run(command, capture_output=True, check=False, timeout=60)
    if result.returncode != 0 or not result.stdout:
        raise Excluded("espeak-ng failed", f"{voice.name}: {result.stderr.decode(errors='replace')[:200]}")
    wave, rate = soundfile.read(io.BytesIO(result.stdout), dtype="float32")
    if wave.ndim > 1:
        wave = wave.mean(axis=1)
    if float(np.abs(wave).max(initial=0.0)) < 1e-4:
        raise Excluded("silent speech", f"{voice.name}: {text!r}")
    return "flac", flac_bytes(wave, rate)


def spoken(seed: int, source: Item, split: str, held_out: bool, image: Media | None) -> Item:
    """A speech item for `source`'s caption: the same picture and text, audio read by eSpeak NG."""
    suffix = "unseen-voice" if held_out else "speech"
    key = f"{source.key}-{suffix}"
    voice = pick_voice(seed, key, held_out)
    meta = {k: v for k, v in source.meta.items() if k not in ("audio_kind",)}
    meta.update(voice=voice.name, accent=voice.accent, variant=voice.variant, words_per_minute=voice.speed,
                pitch=voice.pitch, audio_kind="spoken caption", spoken_source=source.key,
                concept_split=source.meta.get("concept_split", source.split))
    sources = {k: v for k, v in source.sources.items() if k != "audio"}
    sources["audio"] = provenance("espeak-ng", f"espeak-ng -v {voice.name} -s {voice.speed} -p {voice.pitch}",
                                  text_licence=source.sources["text"]["licence"])
    return Item(key, UNSEEN_VOICE if held_out else split, "speech", source.text, meta, image,
                lambda t=source.text, v=voice: speak(t, v), sources)


def plan_speech(seed: int, sources: list[Item]) -> list[Item]:
    """For every caption source: one reading by a training voice (same split as the source) and one by a
    held-out voice (the unseen-voice split)."""
    items = []
    for source in sources:
        split = source.meta.get("concept_split", source.split)
        items.append(spoken(seed, source, split, held_out=False, image=source.image))
        items.append(spoken(seed, source, split, held_out=True, image=source.image))
    return items
