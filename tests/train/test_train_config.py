"""Training configs: every file under configs/ parses, overrides apply with types, bad keys are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnibind.errors import InputError
from omnibind.train.config import load_train_config

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_config_parses_and_opens_with_its_command(path: Path) -> None:
    load_train_config(path)
    assert path.read_text().startswith(f"# omnibind train configs/{path.name}")


def test_overrides_are_typed() -> None:
    cfg = load_train_config(None, ["optim.lr=3e-4", "train.steps=7", "model.modalities=[image,text,audio]",
                                   "optim.grad_clip=null", "lock=[towers.image.*]"])
    assert cfg.optim.lr == 3e-4 and isinstance(cfg.optim.lr, float)
    assert cfg.train.steps == 7 and cfg.optim.grad_clip is None and cfg.lock == ["towers.image.*"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.lrr=1"], r"config\.optim: unknown key"),
        (["optim.lr=fast"], r"config\.optim\.lr: 'fast' is not a number"),
        (["train.precision=fp8"], "train.precision"),
        (["loss.pairs=[[image,audio]]"], "loss.pairs"),
        (["novalue"], "key=value"),
        (["data.kind=shards"], "data.shards"),
        (["data.skip_keys=[*-speech]"], r"data\.skip_keys: value .* is not valid YAML"),
        (["data.kind=shards", "data.shards=x.tar", "data.keys=[note-*]"], "only with data.kind: cached"),
    ],
)
def test_bad_configs_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_train_config(None, overrides)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="config file not found"):
        load_train_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed")
    with pytest.raises(InputError, match="invalid YAML"):
        load_train_config(bad)
