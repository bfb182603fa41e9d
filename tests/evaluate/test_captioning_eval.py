"""The captioning evaluator: CIDEr-D / BLEU-4 equal pycocoevalcap called directly, the tokenizer splits as its
Java PTB tokenizer does, the baselines pick the most frequent and the nearest training caption, and a tiny
generator goes through `omnibind eval` and `omnibind report`."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from typer.testing import CliRunner

import omnibind
from helpers import TINY_TOWER
from omnibind.cli import app
from omnibind.config import model_config
from omnibind.errors import InputError
from omnibind.evaluate.captioning import (
    FREQUENT,
    GENERATED,
    NEAREST,
    CaptioningEval,
    CaptionSettings,
    caption_items,
    most_frequent,
    nearest_captions,
    tasks_from_config,
)
from omnibind.evaluate.captioning_metrics import BLEU4, CIDER, caption_scores, exact_match, tokenize
from omnibind.evaluate.examples import EvalExample
from omnibind.generation import DecoderConfig, Generator, GeneratorConfig
from omnibind.generation.text_ids import SentencePiecePrompts
from omnibind.objectives.captioning import Task
from omnibind.preprocess.text import Tokenizer
from omnibind.processors import build_processors

REFERENCES = {
    "lark": ["A lark.", "a small brown bird"],
    "tiger": ["A Sumatran tiger.", "a tiger lying down", "an orange striped cat"],
    "piano": ["an acoustic grand piano playing a high note"],
    "shirt": ["A folded shirt.", "a blue shirt, folded"],
}
CANDIDATES = {"lark": "a brown bird", "tiger": "a striped tiger lying down",
              "piano": "a grand piano playing a low note", "shirt": "a folded blue shirt"}


def test_scores_equal_pycocoevalcap_called_directly() -> None:
    ours = caption_scores(REFERENCES, CANDIDATES)
    gts = {k: [tokenize(r) for r in refs] for k, refs in REFERENCES.items()}
    res = {k: [tokenize(c)] for k, c in CANDIDATES.items()}
    cider, _ = Cider().compute_score(gts, res)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    assert ours == {CIDER: pytest.approx(cider, abs=0), BLEU4: pytest.approx(bleu[3], abs=0)}
    assert ours[CIDER] > 0 and 0 < ours[BLEU4] < 1
    perfect = caption_scores(REFERENCES, {k: refs[-1] for k, refs in REFERENCES.items()})
    assert perfect[BLEU4] == pytest.approx(1.0) and perfect[CIDER] > ours[CIDER]


def test_tokens_drop_case_and_punctuation() -> None:
    assert tokenize("A “Granny Smith” apple, (red).") == "a granny smith apple -lrb- red -rrb-"
    assert tokenize("Don't stop! The cat's hat.") == "do n't stop the cat 's hat"
    assert exact_match({"a": ["A violin."], "b": ["a drum"]}, {"a": "a violin", "b": "a drum kit"}) == 0.5


@pytest.mark.skipif(shutil.which("java") is None, reason="pycocoevalcap's PTB tokenizer needs Java")
def test_tokens_equal_the_java_ptb_tokenizer() -> None:
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    texts = [*(r for refs in REFERENCES.values() for r in refs), "A “Granny Smith” apple.", "two o’clock",
             "A Canadian 1 cent piece ($.01) called a penny.", "The caboose—a carriage for the guard.", "U.S. flag",
             "Don't stop! The cat's hat, [red].", "hear-no-evil monkey", "Excited!", "a string ensemble 1",
             "It’s a woman’s boot.", "Don’t stick it with the trash!", "A Jack-o’-lantern.", "A ginger 'root'.",
             "Boom!!!", "Mrs. Claus", "A coin (0.50 €).", "a brain is a terrible thing to waste…"]
    ptb = PTBTokenizer().tokenize({str(i): [{"caption": t}] for i, t in enumerate(texts)})
    assert [tokenize(t) for t in texts] == [ptb[str(i)][0] for i in range(len(texts))]


def test_scores_refuse_mismatched_items() -> None:
    with pytest.raises(InputError, match="candidates"):
        caption_scores(REFERENCES, {"lark": "a bird"})


def example(key: str, text: str, **media: object) -> EvalExample:
    return EvalExample(key, {"text": text, **media})


def test_most_frequent_caption_and_task_filtering() -> None:
    assert most_frequent(["a", "b", "b", "c", "a", "b"]) == "b"
    assert most_frequent(["x", "y", "y", "x"]) == "x"  # a tie goes to the caption seen first
    tasks = [Task("what is said?", ("audio",), keys=("*-speech",)), Task("describe the sound", ("audio",)),
             Task("caption en", ("image",))]
    train = [example("note-1", "a piano"), *(example(f"s{i}-speech", "hello", audio=b"s") for i in range(3)),
             example("note-2", "a violin", audio=b"v"), example("note-3", "a piano", audio=b"p"),
             example("note-4", "a piano", audio=b"q"), example("drum-1", "a drum", audio=b"d"),
             *(example(f"e{i}", "a drum", image=b"e") for i in range(3))]
    evaluation = CaptioningEval([example("note-9", "a harp", audio=b"h"), example("x-speech", "hi", audio=b"x")],
                                tasks, CaptionSettings(train=train))
    for index in range(len(tasks)):
        evaluation._baselines(index, [i for i in evaluation.items if i.task == index])
    # the speech clips take the first task, so the second one reads only the other sounds: "hello" and the
    # pictures' "a drum" are not its captions, and the first "a piano" has no sound
    assert [i.texts for i in evaluation.items] == [{FREQUENT: "a piano"}, {FREQUENT: "hello"}]


class ControlledEmbedder:
    """Embeddings set by hand: pictures and captions map to fixed unit vectors."""

    modalities = ("image", "text")

    def __init__(self) -> None:
        self.vectors = {b"red": [1.0, 0.0], b"blue": [0.0, 1.0], b"purple": [0.6, 0.8],
                        "a red square": [0.9, 0.1], "a blue square": [0.1, 0.9], "a square": [0.7, 0.7]}

    def encode(self, modality: str, inputs: list, normalize: bool = True) -> torch.Tensor:
        return torch.nn.functional.normalize(torch.tensor([self.vectors[i] for i in inputs]), dim=-1)


def test_nearest_caption_follows_the_embeddings() -> None:
    task = Task("caption en", ("image",))
    items = caption_items([example("r", "red", image=b"red"), example("b", "blue", image=b"blue"),
                           example("p", "purple", image=b"purple"), example("r2", "scarlet", image=b"red")], [task])
    assert [i.references for i in items] == [["red", "scarlet"], ["blue"], ["purple"]]  # one picture, two captions
    pool = ["a blue square", "a red square", "a square", "a red square"]
    assert nearest_captions(ControlledEmbedder(), task, items, pool) == ["a red square", "a blue square", "a square"]
    with pytest.raises(InputError, match="baseline model"):
        nearest_captions(ControlledEmbedder(), Task("p", ("audio",)), items, pool)


def tiny_captioner(spiece: Path, folder: Path) -> Path:
    """A random image + audio generator reading prompts with the test SentencePiece model, saved."""
    torch.manual_seed(0)
    vocab = Tokenizer(spiece).vocab_size
    encoders = model_config("Ti/16", ("image", "audio", "text"), embed_dim=32,
                            image=dict(TINY_TOWER, image_size=32, patch_size=8),
                            audio=dict(TINY_TOWER, n_mels=32, clip_seconds=1.28, patch_size=8),
                            text=dict(TINY_TOWER, vocab_size=vocab, max_len=16))
    decoder = DecoderConfig(vocab_size=vocab + 1, width=32, depth=1, heads=2, kv_heads=1, head_dim=16, mlp_dim=64)
    processors = build_processors(encoders, tokenizer_file=spiece)
    model = Generator(GeneratorConfig(encoders, decoder, bos_id=vocab, eos_id=1, pad_id=0), processors,
                      SentencePiecePrompts(processors["text"], vocab))
    with torch.no_grad():
        for name, param in model.decoder.named_parameters():
            param.normal_(0, 0.3 if "norm" not in name else 0.1)
    return omnibind.save(model.eval(), folder)


def manifest(path: Path, rows: list[tuple[str, str, str, Path]]) -> Path:
    path.write_text("".join(json.dumps({"key": k, modality: str(f), "text": t}) + "\n" for k, modality, f, t in rows))
    return path


def test_a_generator_through_eval_and_report(tmp_path: Path, spiece_model: Path, tiny_checkpoint: Path,
                                             media_files: dict[str, Path]) -> None:
    photo, drawing, tone, chirp = (media_files[k] for k in ("photo", "drawing", "tone", "chirp"))
    test = manifest(tmp_path / "test.jsonl", [
        ("photo", "image", photo, "an astronaut"), ("circle", "image", drawing, "a red circle"),
        ("circle-2", "image", drawing, "a circle"), ("note-tone", "audio", tone, "a tone"),
        ("note-chirp", "audio", chirp, "a chirp")])
    train = manifest(tmp_path / "train.jsonl", [
        ("t1", "image", photo, "an astronaut"), ("t2", "image", drawing, "a red circle"),
        ("t3", "image", photo, "a red circle"), ("note-1", "audio", tone, "a tone"),
        ("note-2", "audio", chirp, "a chirp"), ("note-3", "audio", chirp, "a chirp")])
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(yaml.safe_dump({"loss": {"kind": "captioning", "options": {"tasks": [
        {"prompt": "what instrument is this?", "media": ["audio"], "keys": ["note-*"]},
        {"prompt": "caption en", "media": ["image"]}]}}}))
    generator = tiny_captioner(spiece_model, tmp_path / "gen")
    out = tmp_path / "ev"
    runner = CliRunner()
    result = runner.invoke(app, ["eval", str(generator), "--data", f"test={test}", "--out", str(out),
                                 "--tasks", str(tasks), "--train-data", str(train), "--baseline-model",
                                 str(tiny_checkpoint), "--max-tokens", "6", "--beams", "2", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "eval" / "test.json").read_text())
    metrics = saved["metrics"]
    question = "captioning/audio.what_instrument_is_this"
    assert metrics["captioning/image.caption_en/items"] == 2 and metrics[f"{question}/items"] == 2
    assert not any(k.startswith(("retrieval/", "image_zeroshot")) for k in metrics)  # embedding evaluators skip it
    for task in ("image.caption_en", "audio.what_instrument_is_this"):
        for system in (GENERATED, NEAREST, FREQUENT):
            assert {f"captioning/{task}/{system}/{m}" for m in (CIDER, BLEU4)} <= set(metrics)
    assert {k for k in metrics if k.endswith("exact_match")} == {f"{question}/{s}/exact_match"
                                                                for s in (GENERATED, NEAREST, FREQUENT)}
    captions = saved["captions"]
    assert len(captions) == 4 and all((out / "eval" / m["media"]).is_file() for c in captions for m in c["media"])
    by_task: dict[str, list[dict]] = {}
    for caption in captions:
        by_task.setdefault(caption["task"], []).append(caption)
    assert {c["texts"][FREQUENT] for c in by_task["image.caption_en"]} == {"a red circle"}
    assert {c["texts"][FREQUENT] for c in by_task["audio.what_instrument_is_this"]} == {"a chirp"}
    assert {c["texts"][NEAREST] for c in by_task["image.caption_en"]} <= {"an astronaut", "a red circle"}
    assert sorted(sorted(c["references"]) for c in by_task["image.caption_en"]) == [["a circle", "a red circle"],
                                                                                    ["an astronaut"]]
    # every item is kept here, so the saved texts rescore to the saved metrics
    for task, rows in by_task.items():
        refs = {c["key"]: c["references"] for c in rows}
        for system in (GENERATED, FREQUENT):
            scores = caption_scores(refs, {c["key"]: c["texts"][system] for c in rows})
            assert metrics[f"captioning/{task}/{system}/{CIDER}"] == pytest.approx(scores[CIDER])
    assert metrics[f"{question}/{FREQUENT}/exact_match"] == 0.5  # "a chirp" is right for the chirp only
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    assert "<audio controls" in page and "Generated text" in page and "most frequent caption" in page
    assert all(html.escape(c["texts"][GENERATED]) in page for c in captions)


def test_tasks_config_and_refusals(tmp_path: Path, tiny_checkpoint: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("loss: {kind: captioning, options: {tasks: [{prompt: hi, media: [image], keys: ['a-*']}]}}\n")
    assert tasks_from_config(config) == (Task("hi", ("image",), ("a-*",)),)
    config.write_text("loss: {kind: sigmoid}\n")
    with pytest.raises(InputError, match=r"loss\.options\.tasks"):
        tasks_from_config(config)
    with pytest.raises(InputError, match="beams"):
        CaptionSettings(beams=0)
    result = CliRunner().invoke(app, ["eval", str(tiny_checkpoint), "--data", "x=y.jsonl", "--train-data", "t.jsonl"])
    assert result.exit_code == 2 and "not a generator" in result.output
