"""General MIDI names, as captions use them: the 128 programs, their playable ranges and the drum kit."""

from __future__ import annotations

# GM program names in caption form (GM's numbering kept where GM has two of a kind).
PROGRAMS = (
    "acoustic grand piano", "bright acoustic piano", "electric grand piano", "honky-tonk piano",
    "electric piano 1", "electric piano 2", "harpsichord", "clavinet",
    "celesta", "glockenspiel", "music box", "vibraphone", "marimba", "xylophone", "tubular bells", "dulcimer",
    "drawbar organ", "percussive organ", "rock organ", "church organ", "reed organ", "accordion", "harmonica",
    "tango accordion",
    "nylon-string acoustic guitar", "steel-string acoustic guitar", "jazz electric guitar",
    "clean electric guitar", "muted electric guitar", "overdriven guitar", "distortion guitar",
    "guitar harmonics",
    "acoustic bass", "fingered electric bass", "picked electric bass", "fretless bass", "slap bass 1",
    "slap bass 2", "synth bass 1", "synth bass 2",
    "violin", "viola", "cello", "contrabass", "tremolo strings", "pizzicato strings", "orchestral harp",
    "timpani",
    "string ensemble 1", "string ensemble 2", "synth strings 1", "synth strings 2", "choir singing aah",
    "voices singing ooh", "synth voice", "orchestra hit",
    "trumpet", "trombone", "tuba", "muted trumpet", "french horn", "brass section", "synth brass 1",
    "synth brass 2",
    "soprano saxophone", "alto saxophone", "tenor saxophone", "baritone saxophone", "oboe", "english horn",
    "bassoon", "clarinet",
    "piccolo", "flute", "recorder", "pan flute", "blown bottle", "shakuhachi", "whistle", "ocarina",
    "square wave synth lead", "sawtooth synth lead", "calliope synth lead", "chiff synth lead",
    "charang synth lead", "voice synth lead", "fifths synth lead", "bass and lead synth",
    "new age synth pad", "warm synth pad", "polysynth pad", "choir synth pad", "bowed synth pad",
    "metallic synth pad", "halo synth pad", "sweep synth pad",
    "rain synth effect", "soundtrack synth effect", "crystal synth effect", "atmosphere synth effect",
    "brightness synth effect", "goblins synth effect", "echoes synth effect", "sci-fi synth effect",
    "sitar", "banjo", "shamisen", "koto", "kalimba", "bagpipe", "fiddle", "shehnai",
    "tinkle bell", "agogo", "steel drums", "woodblock", "taiko drum", "melodic tom", "synth drum",
    "reverse cymbal",
    "guitar fret noise", "breath noise", "seashore", "bird tweet", "telephone ring", "helicopter", "applause",
    "gunshot",
)
# Programs 120-127 are sound effects: one clip each, captioned as the sound itself.
EFFECTS = {120: "guitar fret noise", 121: "breath noise", 122: "waves on a seashore", 123: "a bird tweeting",
           124: "a telephone ringing", 125: "a helicopter", 126: "applause", 127: "a gunshot"}

# Playable MIDI note range per family of eight programs, with overrides for instruments GM fixes tighter.
FAMILY_RANGE = ((33, 96), (60, 96), (36, 96), (40, 84), (28, 55), (36, 96), (36, 84), (40, 82), (48, 82),
                (60, 96), (48, 96), (36, 84), (36, 84), (48, 84), (48, 84), (60, 60))
RANGE_OVERRIDES = {9: (79, 108), 11: (53, 89), 12: (45, 96), 13: (65, 105), 14: (60, 77), 40: (55, 100),
                   41: (48, 84), 42: (36, 76), 43: (28, 60), 46: (24, 100), 47: (40, 57), 56: (55, 82),
                   57: (40, 72), 58: (28, 58), 60: (34, 77), 64: (56, 87), 67: (36, 69), 68: (58, 91),
                   69: (52, 81), 70: (34, 75), 71: (50, 91), 72: (74, 102), 73: (60, 96), 74: (60, 96)}
REGISTERS = ("low", "middle", "high")

# GM percussion key map (channel 10), keys 35-81.
DRUMS = {
    35: "acoustic bass drum", 36: "bass drum", 37: "side stick", 38: "acoustic snare", 39: "hand clap",
    40: "electric snare", 41: "low floor tom", 42: "closed hi-hat", 43: "high floor tom", 44: "pedal hi-hat",
    45: "low tom", 46: "open hi-hat", 47: "low-mid tom", 48: "high-mid tom", 49: "crash cymbal", 50: "high tom",
    51: "ride cymbal", 52: "chinese cymbal", 53: "ride bell", 54: "tambourine", 55: "splash cymbal",
    56: "cowbell", 57: "second crash cymbal", 58: "vibraslap", 59: "second ride cymbal", 60: "high bongo",
    61: "low bongo", 62: "muted high conga", 63: "open high conga", 64: "low conga", 65: "high timbale",
    66: "low timbale", 67: "high agogo", 68: "low agogo", 69: "cabasa", 70: "maracas", 71: "short whistle",
    72: "long whistle", 73: "short guiro", 74: "long guiro", 75: "claves", 76: "high woodblock",
    77: "low woodblock", 78: "muted cuica", 79: "open cuica", 80: "muted triangle", 81: "open triangle",
}
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_range(program: int) -> tuple[int, int]:
    """Lowest and highest MIDI note the program is played at."""
    return RANGE_OVERRIDES.get(program, FAMILY_RANGE[program // 8])


def register_range(program: int, register: str) -> tuple[int, int]:
    """The notes of one third (low / middle / high) of the program's range, inclusive."""
    low, high = note_range(program)
    third = (high - low + 1) / 3
    index = REGISTERS.index(register)
    return low + round(third * index), low + round(third * (index + 1)) - 1


def note_name(note: int) -> str:
    """Scientific pitch name of a MIDI note (60 = C4)."""
    return f"{NOTE_NAMES[note % 12]}{note // 12 - 1}"


def article(phrase: str) -> str:
    """'a' or 'an' before a phrase."""
    return "an" if phrase[0] in "aeiou" else "a"
