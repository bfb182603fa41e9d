"""The case composition is for: a base image–text model with a SentencePiece tokenizer, and a transformers
CLAP folder (HTSAT audio tower with batch norms, RoBERTa text tower with its byte-level BPE tokenizer.json) as
the foreign source. Both tokenizers read the same sentences; the anchor embeds them exactly as CLAP does; the
audio tower is CLAP's behind the connector; training the connector leaves CLAP's batch-norm statistics as
they were; and the checkpoint, with both tokenizers, saves and loads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from compose_fixtures import AUDIO, IMAGE, TEXT, tiny

import omnibind
from omnibind.compose import compose, save_composed
from omnibind.train.config import load_train_config
from omnibind.train.state import latest
from omnibind.train.trainer import Trainer

pytest.importorskip("transformers")
PARITY = Path(__file__).parents[1] / "convert" / "test_clap_parity.py"
SENTENCES = ["a dog barks twice", "Rain on a tin roof!", "birds"]


def clap_parity():
    """The CLAP parity test's helpers (a tiny random-init ClapModel folder written by transformers)."""
    spec = importlib.util.spec_from_file_location("compose_clap_parity_helpers", PARITY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def clap_sources(tmp_path_factory: pytest.TempPathFactory, spiece_model: Path) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clap_compose")
    helpers = clap_parity()
    helpers.make_hf_checkpoint(folder / "clap", helpers.TINY, fusion=False)
    base = omnibind.save(tiny(spiece_model, (IMAGE, TEXT), 32, seed=1), folder / "a")
    return {"a": base, "clap": folder / "clap"}


def test_a_clap_folder_composes_into_a_siglip_style_space(clap_sources: dict[str, Path], tmp_path: Path,
                                                          media_files: dict[str, Path]) -> None:
    base, clap = omnibind.load(clap_sources["a"]), omnibind.load(clap_sources["clap"])
    model = compose([f"{IMAGE},{TEXT}={clap_sources['a']}", f"{AUDIO},{TEXT}={clap_sources['clap']}"])
    assert model.config.towers[AUDIO].options["tower"]["kind"] == "htsat"
    sounds = [media_files["tone"], media_files["chirp"]]
    with torch.no_grad():
        assert torch.equal(model.encode(TEXT, SENTENCES), base.encode(TEXT, SENTENCES))
        anchor = model.towers[TEXT].anchor(AUDIO, model.preprocess(TEXT, SENTENCES))
        assert torch.allclose(F.normalize(anchor, dim=-1), clap.encode(TEXT, SENTENCES), atol=1e-5)
        connected = model.towers[AUDIO].connector(clap.encode(AUDIO, sounds))
        assert torch.allclose(model.encode(AUDIO, sounds), F.normalize(connected, dim=-1), atol=1e-5)

    folder = save_composed(model, tmp_path / "composed")
    assert {"spiece.model", "anchor0.tokenizer.json"} <= {p.name for p in folder.iterdir()}
    loaded = omnibind.load(folder)
    with torch.no_grad():
        assert torch.equal(loaded.encode(AUDIO, sounds), model.encode(AUDIO, sounds))
        assert torch.equal(loaded.encode(TEXT, SENTENCES), model.encode(TEXT, SENTENCES))

    cfg = load_train_config(Path(__file__).parents[2] / "configs" / "compose_text_bridge.yaml", [
        f"run_dir={tmp_path / 'run'}", f"model.init_from={folder}", "data.kind=synthetic", "data.batch_size=4",
        "eval.splits={}", "train.steps=2", "train.ckpt_every=2", "optim.warmup_steps=1"])
    Trainer(cfg, show_progress=False).run()
    trained = latest(tmp_path / "run" / "checkpoints")
    assert trained is not None
    before, after = loaded.state_dict(), omnibind.load(trained).state_dict()
    running = [k for k in before if "running_mean" in k or "running_var" in k]
    assert running  # HTSAT's batch norms: a frozen foreign tower stays in eval mode while training
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(".connector." in k for k in changed)
