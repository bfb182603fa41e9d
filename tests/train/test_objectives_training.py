"""Objectives defined in this file alone, with no edit in src/, train through the Trainer by their config
name: one over the pooled embeddings (gradient caching allowed), one that reads token sequences (which the
Stepper asks the forward pass for) and is refused with a clear error under train.accum_steps > 1."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
import torch

from omnibind.errors import InputError
from omnibind.objectives import Objective, mask, pair_name, register_objective
from omnibind.train.config import load_train_config
from omnibind.train.metrics import read_metrics
from omnibind.train.trainer import Trainer

CONFIG = Path(__file__).parents[2] / "configs" / "tiny_synthetic.yaml"
IMAGE_TEXT = ("model.modalities=[image,text]", "loss.pairs=[[image,text]]")


@register_objective
class MeanCosineDistance(Objective):
    """1 − cos(x_i, y_i) averaged over the examples with both modalities, summed over the pairs."""

    name = "mean_cosine_distance"
    supports_grad_cache = True

    def __call__(self, outputs, batch, model):
        parts = {}
        for a, b in self.setup.pairs:
            both = (mask(batch, a) & mask(batch, b)).float()
            distance = 1 - (outputs[a].float() * outputs[b].float()).sum(-1)
            parts[pair_name((a, b))] = (distance * both).sum() / both.sum().clamp(min=1)
        return torch.stack(list(parts.values())).sum(), parts


@register_objective
class TokenSpread(MeanCosineDistance):
    """The mean cosine distance plus a (tiny) penalty on the image tokens' mean square: it needs the token
    sequence, which gradient caching does not keep."""

    name = "token_spread"
    supports_grad_cache = False
    token_modalities = ("image",)
    seen: ClassVar[list[tuple[int, ...]]] = []

    def __call__(self, outputs, batch, model):
        loss, parts = super().__call__(outputs, batch, model)
        tokens = outputs["image/tokens"]
        TokenSpread.seen.append(tuple(tokens.shape))
        parts["tokens"] = 1e-3 * tokens.float().pow(2).mean()
        return loss + parts["tokens"], parts


def config(tmp_path: Path, *overrides: str):
    return load_train_config(CONFIG, [f"run_dir={tmp_path / 'run'}", "data.batch_size=8", *IMAGE_TEXT, *overrides])


def test_an_objective_registered_in_a_test_trains_by_its_config_name(tmp_path: Path) -> None:
    cfg = config(tmp_path, "loss.kind=mean_cosine_distance", "train.steps=8", "train.log_every=1",
                 "optim.warmup_steps=1", "train.accum_steps=2")
    Trainer(cfg, show_progress=False).run()
    records = read_metrics(tmp_path / "run")
    assert "loss/image-text" in records[-1]
    assert records[-1]["loss"] < 0.5 * records[0]["loss"]


def test_an_objective_gets_the_token_sequences_it_declares(tmp_path: Path) -> None:
    TokenSpread.seen.clear()
    Trainer(config(tmp_path, "loss.kind=token_spread", "train.steps=2"), show_progress=False).run()
    assert TokenSpread.seen == [(8, 16, 32)] * 2  # (batch, 32-px image / 8-px patches, width)
    assert "loss/tokens" in read_metrics(tmp_path / "run")[-1]


def test_an_objective_without_gradient_caching_is_refused_under_accumulation(tmp_path: Path) -> None:
    cfg = config(tmp_path, "loss.kind=token_spread", "train.accum_steps=2")
    with pytest.raises(InputError, match=r"train\.accum_steps: 2 needs exact gradient caching.*'token_spread'.*"
                                         r"token sequences of image.*expected 1 with this objective"):
        Trainer(cfg, show_progress=False)
    assert not (tmp_path / "run").exists()  # refused before anything was built or written
