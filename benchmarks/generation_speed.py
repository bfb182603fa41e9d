"""PYTHONPATH=src python benchmarks/generation_speed.py [--quick] [--batches 1,8] [--new-tokens 24] [--iters 2]
[--warmup 0] [--threads N] [--json results.json]

Greedy-decoding speed of omnibind's Generator against transformers' `PaliGemmaForConditionalGeneration.generate`
on one random-init checkpoint, fp32 on CPU. transformers writes the checkpoint (`save_pretrained`, model and
PaliGemmaProcessor with a small trained Gemma-style tokenizer); transformers loads it back with `from_pretrained`
and omnibind with `omnibind.load` (its PaliGemma converter). Default shape: a Gemma decoder 1024 wide, 8 layers,
8 query heads sharing one 128-wide key/value head, MLP 4096, vocabulary 8192; a SigLIP tower at 224 px in 14 px
patches (256 image tokens), 768 wide, 2 layers; `--quick` shrinks it to a smoke-test size.

Both get the same inputs, prepared beforehand (preprocessing is not timed): the processor's pixels and the ids
of "<image>caption en" for a batch of copies of one picture. EOS is disabled on both sides (transformers'
generation config has no EOS id; omnibind's generator is given none), so every call writes exactly
`--new-tokens` tokens; before timing, the two must write identical tokens (exit status 1 otherwise); that
check is each library's warm-up call, so no other is made unless `--warmup` asks for more.

Each batch size times, interleaved (order flipped every repeat), a call writing one token (the prefill: image
tower, projection, prefix through the decoder, first token) and a call writing all `--new-tokens`; reported are
the median prefill seconds, decoding tokens/s = batch × (new tokens − 1) / (full − prefill) (the steps after the
prefill), and end-to-end tokens/s = batch × new tokens / full, under torch.inference_mode. Results go to
benchmarks/results/ as JSON with the machine (or --json PATH).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from PIL import Image
from rich.console import Console
from rich.table import Table

import omnibind
from omnibind.generation import Decoding, Generator

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_results lives beside this script
import bench_results

PROMPT = "caption en"
NO_EOS = -1  # an id no argmax can return: omnibind's generator never stops early
TEXT = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=8, num_attention_heads=8,
            num_key_value_heads=1, head_dim=128, initializer_range=0.1)
VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=2, num_attention_heads=12,
              image_size=224, patch_size=14)
VOCAB = 8192
QUICK_TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=1, head_dim=16, initializer_range=0.2)
QUICK_VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                    image_size=56, patch_size=14)
QUICK_VOCAB = 2048
CORPUS = ["a photo of a cat sitting on the mat", "the dog runs in the park", "caption en", "answer en what is it?",
          "a bird sings near the water", "two people talk in a quiet room", "a red car parked on the street 123"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    description = __doc__.split("\n\n")[1]
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a tiny model, batches 1,2, 4 new tokens, one repeat: a smoke test, not a measurement")
    parser.add_argument("--batches", default=None, help="batch sizes, comma-separated (default 1,8)")
    parser.add_argument("--new-tokens", type=int, default=None, help="tokens written per call (default 24)")
    parser.add_argument("--iters", type=int, default=None, help="timed repeats per call (default 2)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed repeats beyond the parity check's call (default 0)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch threads (all)")
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write the results (default: a new file under benchmarks/results/)")
    args = parser.parse_args(argv)
    defaults = {"batches": "1,2", "new_tokens": 4, "iters": 1, "warmup": 0} if args.quick else \
        {"batches": "1,8", "new_tokens": 24, "iters": 2, "warmup": 0}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    try:
        args.batches = [int(b) for b in str(args.batches).split(",") if b.strip()]
    except ValueError:
        parser.error(f"--batches must be integers separated by commas, got {args.batches!r}")
    if not args.batches or min(args.batches) < 1:
        parser.error("--batches must name batch sizes of at least 1")
    if args.new_tokens < 2:
        parser.error("--new-tokens must be at least 2 (the first token comes with the prefill)")
    for name in ("iters", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be at least 0")
    return args


def shape(quick: bool) -> dict[str, Any]:
    """The decoder and vision tower shapes (transformers' config names) and the vocabulary size."""
    if quick:
        return {"text": QUICK_TEXT, "vision": QUICK_VISION, "vocab_size": QUICK_VOCAB}
    return {"text": TEXT, "vision": VISION, "vocab_size": VOCAB}


def describe(s: dict[str, Any]) -> str:
    t, v = s["text"], s["vision"]
    tokens = (v["image_size"] // v["patch_size"]) ** 2
    return (f"decoder {t['hidden_size']} wide, {t['num_hidden_layers']} layers, {t['num_attention_heads']} heads / "
            f"{t['num_key_value_heads']} KV head(s) of {t['head_dim']}, MLP {t['intermediate_size']}, vocabulary "
            f"{s['vocab_size']}; SigLIP {v['image_size']} px / {v['patch_size']} px patches ({tokens} image tokens), "
            f"{v['hidden_size']} wide, {v['num_hidden_layers']} layer(s), MLP {v['intermediate_size']}")


def gemma_tokenizer(folder: Path) -> Any:
    """A GemmaTokenizer over a SentencePiece BPE model trained here, with Gemma's ids (pad 0, eos 1, bos 2)."""
    import sentencepiece as spm

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 20), model_writer=buffer, vocab_size=300, model_type="bpe",
        byte_fallback=True, pad_id=0, eos_id=1, bos_id=2, unk_id=3, bos_piece="<bos>", eos_piece="<eos>",
        add_dummy_prefix=False, normalization_rule_name="identity", remove_extra_whitespaces=False,
        split_digits=True, user_defined_symbols=["\n"], minloglevel=2,
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.model").write_bytes(buffer.getvalue())
    return transformers.GemmaTokenizer.from_pretrained(str(folder))


def make_checkpoint(folder: Path, s: dict[str, Any]) -> None:
    """A random PaliGemma saved by transformers (model, processor) into `folder`."""
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    side, patch = s["vision"]["image_size"], s["vision"]["patch_size"]
    image_processor = SiglipImageProcessorPil(size={"height": side, "width": side},
                                              image_seq_length=(side // patch) ** 2, resample=3,
                                              image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    processor = transformers.PaliGemmaProcessor(image_processor=image_processor,
                                                tokenizer=gemma_tokenizer(folder / "spm"))
    text = s["text"]
    config = transformers.PaliGemmaConfig(
        text_config={**text, "vocab_size": s["vocab_size"]}, vision_config={**s["vision"], "vision_use_head": False},
        image_token_index=processor.image_token_id, vocab_size=s["vocab_size"], projection_dim=text["hidden_size"],
        hidden_size=text["hidden_size"])
    torch.manual_seed(0)
    transformers.PaliGemmaForConditionalGeneration(config).save_pretrained(str(folder))
    processor.save_pretrained(str(folder))


def load_both(folder: Path) -> tuple[Any, Any, Generator]:
    """transformers' model and processor, and omnibind's generator, from the same folder; EOS disabled on both."""
    theirs = transformers.PaliGemmaForConditionalGeneration.from_pretrained(str(folder)).eval()
    theirs.generation_config.eos_token_id = None
    processor = transformers.PaliGemmaProcessor.from_pretrained(str(folder))
    ours = omnibind.load(folder)
    assert isinstance(ours, Generator)
    ours.config.eos_id = NO_EOS
    return theirs, processor, ours


def make_inputs(processor: Any, ours: Generator, batch: int) -> tuple[dict[str, torch.Tensor], list[list[int]],
                                                                       list[torch.Tensor]]:
    """The processor's batch for transformers; the same pixels and prompt ids for omnibind."""
    rng = np.random.default_rng(0)
    picture = Image.fromarray((rng.random((240, 320, 3)) * 255).astype(np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inputs = processor(images=[picture] * batch, text=["<image>" + PROMPT] * batch, return_tensors="pt")
    inputs = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "pixel_values")}
    assert ours.tokenizer is not None
    return inputs, [ours.tokenizer.prompt_ids(PROMPT)] * batch, list(inputs["pixel_values"])


def callers(theirs: Any, ours: Generator, inputs: dict[str, torch.Tensor], prompt_ids: list[list[int]],
            pixels: list[torch.Tensor]) -> dict[str, Callable[[int], list[list[int]]]]:
    """Per library: new tokens → the generated ids per row."""
    start = inputs["input_ids"].shape[1]

    def transformers_generate(n: int) -> list[list[int]]:
        out = theirs.generate(**inputs, max_new_tokens=n, do_sample=False, pad_token_id=0)
        return [list(map(int, row)) for row in out[:, start:].tolist()]

    def omnibind_generate(n: int) -> list[list[int]]:
        return ours.generate_ids(prompt_ids, {"image": pixels}, Decoding(max_new_tokens=n))

    return {"transformers": transformers_generate, "omnibind": omnibind_generate}


def benchmark_batch(run: dict[str, Callable[[int], list[list[int]]]], batch: int, new_tokens: int, iters: int,
                    warmup: int) -> list[dict[str, Any]]:
    """One row per library: median prefill and full-call seconds, decoding and end-to-end tokens/s."""
    calls = {f"{lib} {n}": (lambda f=f, n=n: f(n)) for lib, f in run.items() for n in (1, new_tokens)}
    times = bench_results.time_interleaved(calls, iters, warmup)
    rows = []
    for lib in run:
        prefill, full = statistics.median(times[f"{lib} 1"]), statistics.median(times[f"{lib} {new_tokens}"])
        decode = full - prefill  # not positive only when noise swamps the steps (tiny --quick runs)
        rows.append({"library": lib, "batch": batch, "new_tokens": new_tokens, "prefill_seconds": prefill,
                     "full_seconds": full, "prefill_seconds_each": times[f"{lib} 1"],
                     "full_seconds_each": times[f"{lib} {new_tokens}"],
                     "decode_tokens_per_s": batch * (new_tokens - 1) / decode if decode > 0 else None,
                     "ms_per_step": 1000 * decode / (new_tokens - 1) if decode > 0 else None,
                     "end_to_end_tokens_per_s": batch * new_tokens / full})
    ref = next(r for r in rows if r["library"] == "transformers")
    for row in rows:
        ok = row["decode_tokens_per_s"] is not None and ref["decode_tokens_per_s"] is not None
        row["decode_speedup_vs_transformers"] = row["decode_tokens_per_s"] / ref["decode_tokens_per_s"] if ok else None
        row["prefill_speedup_vs_transformers"] = ref["prefill_seconds"] / row["prefill_seconds"]
        row["end_to_end_speedup_vs_transformers"] = row["end_to_end_tokens_per_s"] / ref["end_to_end_tokens_per_s"]
    return rows


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{suffix}"


def results_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="greedy decoding, fp32 CPU (median over repeats)")
    for name in ("batch", "library", "prefill s", "ms / step", "decode tokens/s", "end-to-end tokens/s",
                 "decode vs transformers", "prefill vs transformers", "end-to-end vs transformers"):
        table.add_column(name, justify="left" if name == "library" else "right")
    for row in rows:
        table.add_row(str(row["batch"]), row["library"], f"{row['prefill_seconds']:.3f}",
                      _fmt(row["ms_per_step"], ".1f"), _fmt(row["decode_tokens_per_s"], ".1f"),
                      f"{row['end_to_end_tokens_per_s']:.1f}", _fmt(row["decode_speedup_vs_transformers"], ".2f", "×"),
                      f"{row['prefill_speedup_vs_transformers']:.2f}×",
                      f"{row['end_to_end_speedup_vs_transformers']:.2f}×")
    return table


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """Write the checkpoint, load it both ways, check identical tokens per batch size, then time."""
    torch.set_num_threads(args.threads)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    s = shape(args.quick)
    env = {"torch": torch.__version__, "transformers": transformers.__version__, "omnibind": omnibind.__version__,
           "threads": torch.get_num_threads()}
    console.print(f"torch {env['torch']} · transformers {env['transformers']} · {env['threads']} threads · fp32 · "
                  f"{args.new_tokens} new tokens · shape: {describe(s)}", soft_wrap=True)
    rows: list[dict[str, Any]] = []
    parity: dict[str, Any] = {"identical": True, "batches": {}}
    with tempfile.TemporaryDirectory(prefix="omnibind-genbench-") as tmp, torch.inference_mode():
        folder = Path(tmp) / "paligemma"
        make_checkpoint(folder, s)
        theirs, processor, ours = load_both(folder)
        for batch in args.batches:
            inputs, prompt_ids, pixels = make_inputs(processor, ours, batch)
            generate = callers(theirs, ours, inputs, prompt_ids, pixels)
            tokens = {lib: f(args.new_tokens) for lib, f in generate.items()}
            same = tokens["omnibind"] == tokens["transformers"]
            lengths = {len(r) for rows_ in tokens.values() for r in rows_}
            parity["batches"][str(batch)] = {"identical": same, "lengths": sorted(lengths),
                                             "distinct_tokens": len({t for r in tokens["omnibind"] for t in r}),
                                             "omnibind_first_row": tokens["omnibind"][0],
                                             "transformers_first_row": tokens["transformers"][0]}
            parity["identical"] &= same and lengths == {args.new_tokens}
            console.print(f"batch {batch}: identical tokens {'[green]yes[/green]' if same else '[red]NO[/red]'} "
                          f"({args.new_tokens} per row, {parity['batches'][str(batch)]['distinct_tokens']} distinct)")
            if not parity["identical"]:
                raise SystemExit("the two libraries wrote different tokens: their timings are not comparable")
            rows += benchmark_batch(generate, batch, args.new_tokens, args.iters, args.warmup)
    console.print(results_table(rows))
    config = {k: v for k, v in vars(args).items() if k != "json"}
    return {"environment": env, "config": config, "shape": {**s, "described": describe(s)}, "parity": parity,
            "rows": rows}


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> dict[str, Any]:
    """Run the benchmark; prints the table, writes the JSON, and returns the results."""
    args = parse_args(argv)
    console = console or Console(width=None if sys.stdout.isatty() else 200)
    results = run(args, console)
    console.print(f"written: {bench_results.save('generation_speed', results, args.json)}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
