"""PYTHONPATH=src python benchmarks/data_throughput.py [--images 256] [--clips 96] [--workers 0,1,2]
[--batch 32] [--json results.json]

Data-loader throughput: decoded + preprocessed examples per second, in total and per worker, for images at 224
px and 10 s audio clips, through the real loader (omnibind.data.loader: tar shards → workers → decode →
preprocess → batch), side by side with its peer: a plain webdataset pipeline over the same shards
(webdataset.WebDataset → torch DataLoader with the same workers and batch) that decodes with Pillow and
soundfile and preprocesses to the same tensors without omnibind (images: transparency composited over white,
Pillow bicubic resize to 224, x/255, (x - 0.5)/0.5 in numpy; audio: mono, soxr to 16 kHz, crop or pad to 10 s,
transformers' WhisperFeatureExtractor with 128 mels). Inputs are real: Tux Paint stamp pictures (their PNGs,
and the same pictures as JPEG, quality 90), and 10 s General MIDI melodies rendered from the Fluid R3 sound
font at 44.1 kHz stereo (FLAC, and Ogg Vorbis), so the audio path includes down-mixing and resampling to 16
kHz. Each configuration runs one full pass (worker start-up included) after one untimed pass, omnibind and the
peer taking turns. Results go to benchmarks/results/ as JSON with the machine (or --json PATH).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table

from omnibind.data.loader import LoaderConfig, make_loader
from omnibind.data.seeding import rng_for
from omnibind.data.tario import ShardWriter
from omnibind.preprocess.audio import AudioPreprocessor, AudioSettings
from omnibind.preprocess.image import ImagePreprocessor

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_results lives beside this script
import bench_results

STAMPS = Path("/usr/share/tuxpaint/stamps")
SOUND_FONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
RATE, CLIP_SECONDS = 44100, 10.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--images", type=int, default=256, help="pictures per image format (default 256)")
    parser.add_argument("--clips", type=int, default=96, help="10 s clips per audio format (default 96)")
    parser.add_argument("--workers", default="0,1,2", help="worker counts to try (default 0,1,2; 0 = main process)")
    parser.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write the results (default: a new file under benchmarks/results/)")
    args = parser.parse_args(argv)
    args.workers = [int(w) for w in args.workers.split(",")]
    if args.images < 1 or args.clips < 1 or args.batch < 1 or min(args.workers) < 0:
        parser.error("--images, --clips and --batch must be at least 1, --workers at least 0")
    for needed in (STAMPS, SOUND_FONT):
        if not needed.exists():
            parser.error(f"{needed} is missing: install the data packages first (make data-deps)")
    return args


def pictures(count: int) -> list[bytes]:
    """The first `count` Tux Paint stamp PNGs (sorted by path, so every run uses the same ones)."""
    paths = sorted(STAMPS.rglob("*.png"))[:count]
    return [p.read_bytes() for p in paths]


def as_jpeg(png: bytes) -> bytes:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def melodies(count: int) -> list[np.ndarray]:
    """`count` 10 s stereo melodies: seeded programs and notes, four notes a second, from Fluid R3."""
    import fluidsynth

    synth = fluidsynth.Synth(samplerate=float(RATE))
    font = synth.sfload(str(SOUND_FONT))
    clips = []
    step = RATE // 4
    for index in range(count):
        rng = rng_for("benchmark", index)
        synth.program_select(0, font, 0, rng.randrange(0, 96))
        chunks = []
        for _ in range(int(CLIP_SECONDS * 4)):
            note = rng.randrange(48, 84)
            synth.noteon(0, note, 90)
            chunks.append(synth.get_samples(step))
            synth.noteoff(0, note)
        clips.append(np.concatenate(chunks).astype(np.float32).reshape(-1, 2) / 32768.0)
        synth.all_sounds_off(0)
    synth.delete()
    return clips


def encode(wave: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, RATE, format=fmt)
    return buffer.getvalue()


def write_shards(folder: Path, ext: str, payloads: list[bytes]) -> str:
    with ShardWriter(folder, ext, max_count=32) as writer:
        for index, payload in enumerate(payloads):
            writer.write(f"{ext}{index:05d}", {ext: payload})
    return str(folder)


def measure(shards: str, processors: dict[str, Any], workers: int, batch: int) -> tuple[float, int, float]:
    """Examples per second of one full pass (after an untimed one), the example count, and the seconds
    to the first batch (worker start-up plus one batch: paid once per pass)."""
    config = LoaderConfig(shards, batch_size=batch, num_workers=workers, shuffle_buffer=0, epochs=1,
                          drop_last=False)
    loader = make_loader(config, processors)
    for _ in loader:  # untimed: page cache, worker start-up paths, allocator
        pass
    start = time.perf_counter()
    first, count = None, 0
    for batch in loader:
        first = time.perf_counter() - start if first is None else first
        count += len(batch["key"])
    elapsed = time.perf_counter() - start
    if loader.stats.total:
        raise RuntimeError(f"benchmark data failed to decode: {loader.stats}")
    return count / elapsed, count, first or 0.0


def plain_image(payload: bytes) -> torch.Tensor:
    """The peer's image path: Pillow decode, RGB (transparency over white, as omnibind and transformers do),
    bicubic resize to 224, x/255, (x - 0.5)/0.5."""
    image = Image.open(io.BytesIO(payload))
    if "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    image = image.convert("RGB").resize((224, 224), Image.Resampling.BICUBIC)
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy((pixels - 0.5) / 0.5).permute(2, 0, 1)


def plain_audio(extractor: Any) -> Callable[[bytes], torch.Tensor]:
    """The peer's audio path: soundfile decode, mono, soxr to 16 kHz, crop or pad to 10 s, Whisper log-mel."""
    import soxr

    def decode(payload: bytes) -> torch.Tensor:
        wave, rate = soundfile.read(io.BytesIO(payload), dtype="float32", always_2d=True)
        wave = soxr.resample(wave.mean(axis=1), rate, 16000)
        wave = np.pad(wave[: 16000 * 10], (0, max(0, 16000 * 10 - len(wave))))
        mel = extractor(wave, sampling_rate=16000, return_tensors="np", padding=False)["input_features"][0]
        return torch.from_numpy(mel)

    return decode


def peer_measure(shards: str, ext: str, workers: int, batch: int) -> tuple[float, int]:
    """Examples per second of one full pass (after an untimed one) through the plain webdataset pipeline."""
    import webdataset as wds

    if ext in ("png", "jpg"):
        decode: Callable[[bytes], torch.Tensor] = plain_image
    else:
        from transformers import WhisperFeatureExtractor

        decode = plain_audio(WhisperFeatureExtractor(feature_size=128))
    urls = sorted(str(p) for p in Path(shards).glob("*.tar"))
    dataset = wds.WebDataset(urls, shardshuffle=False, empty_check=False).map(lambda sample: decode(sample[ext]))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, num_workers=workers)
    for _ in loader:  # untimed, as for omnibind's loader
        pass
    start, count = time.perf_counter(), 0
    for tensors in loader:
        count += len(tensors)
    return count / (time.perf_counter() - start), count


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    console = console or Console()
    image_processor = {"image": ImagePreprocessor(224)}
    audio_processor = {"audio": AudioPreprocessor(AudioSettings())}  # 16 kHz, 128 mels, 10 s
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        pngs = pictures(args.images)
        clips = melodies(args.clips)
        sets = [
            ("image", "png", "png", write_shards(Path(tmp, "png"), "png", pngs), image_processor),
            ("image", "jpg q90", "jpg", write_shards(Path(tmp, "jpg"), "jpg", [as_jpeg(p) for p in pngs]),
             image_processor),
            ("audio", "flac 44.1k", "flac", write_shards(Path(tmp, "flac"), "flac",
                                                        [encode(c, "FLAC") for c in clips]), audio_processor),
            ("audio", "ogg 44.1k", "ogg", write_shards(Path(tmp, "ogg"), "ogg",
                                                       [encode(c, "OGG") for c in clips]), audio_processor),
        ]
        for modality, fmt, ext, shards, processors in sets:
            for workers in args.workers:
                rate, count, first = measure(shards, processors, workers, args.batch)
                peer_rate, peer_count = peer_measure(shards, ext, workers, args.batch)
                if peer_count != count:
                    raise RuntimeError(f"the peer read {peer_count} examples of {fmt}, omnibind {count}")
                results.append({"modality": modality, "format": fmt, "workers": workers, "examples": count,
                                "examples_per_s": rate, "per_worker": rate / max(1, workers),
                                "first_batch_s": first, "peer_examples_per_s": peer_rate,
                                "vs_peer": rate / peer_rate})
    info = bench_results.machine()
    console.print(f"{info['cpu']} ({info['cores']} cores, load {info['load_1min']}), torch {info['torch']}, "
                  f"batch {args.batch}; images: Tux Paint stamps → 224 px; audio: 10 s 44.1 kHz "
                  "stereo melodies → 16 kHz, 128-mel log-mel; peer: webdataset + Pillow/soundfile", highlight=False)
    table = Table(title="decoded + preprocessed examples per second, omnibind's loader vs a plain webdataset pipeline")
    for column in ("modality", "format", "workers", "n", "omnibind ex/s", "per worker", "1st batch", "peer ex/s",
                   "omnibind/peer"):
        table.add_column(column, justify="left" if column in ("modality", "format") else "right")
    for r in results:
        table.add_row(r["modality"], r["format"], str(r["workers"]) if r["workers"] else "0 (main)",
                      str(r["examples"]), f"{r['examples_per_s']:.1f}", f"{r['per_worker']:.1f}",
                      f"{r['first_batch_s']:.2f} s", f"{r['peer_examples_per_s']:.1f}", f"{r['vs_peer']:.2f}×")
    console.print(table)
    path = bench_results.save("data_throughput", {"config": {k: v for k, v in vars(args).items() if k != "json"},
                                                  "results": results}, args.json)
    console.print(f"written: {path}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
