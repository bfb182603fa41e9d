"""Instrument notes and drum hits rendered from General MIDI sound fonts with FluidSynth (no audio device).

Fluid R3 is the training sound font; MuseScore General is held out for the "unseen sound font" split
(its piano, strings and drumline are other recordings; many other presets derive from Fluid R3 Mono).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from omnibind.data.seeding import rng_for
from omnibind.errors import InputError
from omnibind.starter.gm import DRUMS, EFFECTS, PROGRAMS, REGISTERS, article, note_name, register_range
from omnibind.starter.items import UNSEEN_SOUNDFONT, Excluded, Item, assign_split, flac_bytes
from omnibind.starter.provenance import provenance

RATE = 22050
NOTE_SECONDS, TAIL_SECONDS = 1.5, 0.5  # key held, then released and left to ring
VELOCITY = 100
PEAK = 0.5  # clips are peak-normalised to -6 dBFS: sound fonts differ a lot in level
SILENCE = 1e-4
DRUM_CHANNEL, DRUM_BANK = 9, 128


@dataclass(frozen=True)
class SoundFont:
    """A sound font file and the Debian package that ships it."""

    name: str
    path: str
    package: str


SOUND_FONTS = (
    SoundFont("fluid", "/usr/share/sounds/sf2/FluidR3_GM.sf2", "fluid-soundfont-gm"),
    SoundFont("musescore", "/usr/share/sounds/sf3/MuseScore_General.sf3", "musescore-general-soundfont"),
)
HELD_OUT_FONT = "musescore"


class Synth:
    """One FluidSynth instance per sound font, loaded on first use (MuseScore's .sf3 takes seconds)."""

    def __init__(self) -> None:
        self._synths: dict[str, tuple[Any, int]] = {}

    def _get(self, font: SoundFont) -> tuple[Any, int]:
        if font.name not in self._synths:
            import fluidsynth

            synth = fluidsynth.Synth(samplerate=float(RATE), gain=0.5)
            synth.setting("synth.reverb.active", 0)  # dry notes: the room would be the synthesiser's, not the font's
            synth.setting("synth.chorus.active", 0)
            font_id = synth.sfload(font.path)
            if font_id < 0:
                raise InputError(font.path, "FluidSynth cannot load this sound font", "a readable .sf2/.sf3 file")
            self._synths[font.name] = (synth, font_id)
        return self._synths[font.name]

    def render(self, font: SoundFont, program: int, note: int, drum: bool = False) -> np.ndarray:
        """A mono clip: the note held NOTE_SECONDS, released, TAIL_SECONDS more; peak-normalised."""
        synth, font_id = self._get(font)
        channel = DRUM_CHANNEL if drum else 0
        synth.program_select(channel, font_id, DRUM_BANK if drum else 0, 0 if drum else program)
        synth.noteon(channel, note, VELOCITY)
        held = synth.get_samples(round(NOTE_SECONDS * RATE))
        synth.noteoff(channel, note)
        tail = synth.get_samples(round(TAIL_SECONDS * RATE))
        synth.all_sounds_off(channel)
        synth.get_samples(1024)  # let the cut voices finish before the next note
        stereo = np.concatenate([held, tail]).astype(np.float32).reshape(-1, 2) / 32768.0
        mono = stereo.mean(axis=1)
        peak = float(np.abs(mono).max())
        if peak < SILENCE:
            raise Excluded("silent note", f"{font.name} program {program} note {note}")
        return mono * (PEAK / peak)

    def close(self) -> None:
        """Free every synthesiser."""
        for synth, _ in self._synths.values():
            synth.delete()
        self._synths.clear()


def plan_instruments(seed: int, synth: Synth) -> list[Item]:
    """Per sound font: every melodic program in three registers, the eight GM effects, the 47 drum sounds."""
    items = []
    for font in SOUND_FONTS:
        for program, name in enumerate(PROGRAMS):
            if program in EFFECTS:
                items.append(_item(seed, synth, font, program, 60, None, EFFECTS[program]))
                continue
            for register in REGISTERS:
                low, high = register_range(program, register)
                note = rng_for(seed, "note", program, register).randint(low, high)
                caption = f"{article(name)} {name} playing a {register} note"
                items.append(_item(seed, synth, font, program, note, register, caption))
        for key, name in DRUMS.items():
            items.append(_item(seed, synth, font, None, key, None, f"{article(name)} {name} from a drum kit"))
    return items


def _item(seed: int, synth: Synth, font: SoundFont, program: int | None, note: int, register: str | None,
          caption: str) -> Item:
    drum = program is None
    group = f"drum:{note}" if drum else f"program:{program}:{register}"
    concept_split = assign_split(seed, group)
    split = UNSEEN_SOUNDFONT if font.name == HELD_OUT_FONT else concept_split
    kind = "drum" if drum else "instrument"
    key = f"drum-{font.name}-k{note}" if drum else f"note-{font.name}-p{program:03d}-{register or 'effect'}"
    meta = {"soundfont": font.name, "midi_note": note, "note_name": note_name(note), "velocity": VELOCITY,
            "sample_rate": RATE, "seconds": NOTE_SECONDS + TAIL_SECONDS, "peak_normalised_dbfs": -6.0,
            "concept_split": concept_split, "label": DRUMS[note] if drum else PROGRAMS[program]}
    if drum:
        meta.update(gm_drum=DRUMS[note])
        origin = f"{font.path}#bank{DRUM_BANK}/preset0/key{note}"
    else:
        meta.update(gm_program=program, gm_name=PROGRAMS[program], register=register or "effect")
        origin = f"{font.path}#bank0/preset{program}/key{note}"

    def audio() -> tuple[str, bytes]:
        return "flac", flac_bytes(synth.render(font, 0 if drum else program, note, drum), RATE)

    return Item(key, split, kind, caption, meta, audio=audio,
                sources={"audio": provenance(font.package, origin, synthesiser="FluidSynth (pyfluidsynth)"),
                         "text": provenance("omnibind", "General MIDI program / drum name")})
