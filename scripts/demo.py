"""`make demo` until the training issue lands: the quickest end-to-end path that exists today.

Trains a tokenizer on a small caption corpus, creates an untrained Ti/16 image–text–audio model,
saves and reloads it, embeds real photos, synthetic sounds and texts, and runs zero-shot
classification. The weights are random, so the scores are not meaningful: this checks the pipeline.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import soundfile
import torch
from rich.console import Console
from rich.table import Table

import omnibind
from omnibind.preprocess.text import Tokenizer, train_tokenizer

CAPTIONS = [
    "an astronaut in a white space suit", "a cup of coffee on a saucer", "a rocket on the launch pad",
    "a grey cat looking at the camera", "a man with a camera on a tripod", "the sound of a piano note",
    "a high whistle", "a low hum", "a photo of a horse", "a red apple on a table", "the sound of a bird",
]
PHOTOS = ["astronaut.png", "coffee.png", "rocket.jpg", "chelsea.png", "camera.png"]
LABELS = ["an astronaut", "a cup of coffee", "a rocket", "a cat", "a camera"]


def write_sounds(folder: Path) -> list[Path]:
    """Two one-second tones (a low hum, a high whistle) as WAV files."""
    t = np.arange(16000) / 16000
    paths = []
    for name, freq in (("low_hum.wav", 110.0), ("high_whistle.wav", 3000.0)):
        soundfile.write(folder / name, (0.4 * np.sin(2 * np.pi * freq * t)).astype("float32"), 16000)
        paths.append(folder / name)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo_out"))
    args = parser.parse_args()
    console = Console()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    start = time.perf_counter()

    spiece = train_tokenizer(CAPTIONS * 20, args.out / "spiece", vocab_size=120)
    vocab = Tokenizer(spiece).vocab_size
    model = omnibind.create("Ti/16", tokenizer=spiece, text={"vocab_size": vocab}, audio={"clip_seconds": 2.0})
    omnibind.save(model, args.out / "model")
    model = omnibind.load(args.out / "model")
    console.print(f"saved and reloaded an untrained Ti/16 model in {args.out / 'model'}")

    import skimage

    photo_dir = Path(skimage.__file__).parent / "data"
    photos = [photo_dir / name for name in PHOTOS]
    sounds = write_sounds(args.out)
    with torch.no_grad():
        image_emb = model.encode("image", photos)
        audio_emb = model.encode("audio", sounds)
        text_emb = model.encode("text", CAPTIONS)
    np.save(args.out / "image_embeddings.npy", image_emb.numpy())
    console.print(f"embedded {len(photos)} photos, {len(sounds)} sounds, {len(CAPTIONS)} texts "
                  f"into {model.config.embed_dim}-d unit vectors")

    result = omnibind.zero_shot(model, photos, LABELS)
    table = Table(title="zero-shot (untrained weights: a pipeline check, not a result)")
    for column in ("photo", "top label", "probability"):
        table.add_column(column)
    for photo, best in zip(PHOTOS, result.top(1), strict=True):
        table.add_row(photo, best[0][0], f"{best[0][1]:.3g}")
    console.print(table)
    sims = (audio_emb @ text_emb.T).numpy()
    console.print(f"audio–text cosine range: {sims.min():.3f} … {sims.max():.3f}")
    console.print(f"demo finished in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
