"""The objective registry: built-ins in order, unknown names listed in the error (also from a config),
conflicting registrations refused, plugins named in OMNIBIND_OBJECTIVES imported, and the contrastive
objectives equal the pair losses over the pooled embeddings whatever else the outputs hold."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import omnibind.objectives as objectives
from omnibind import plugins
from omnibind.errors import InputError
from omnibind.losses import sigmoid_loss, softmax_loss
from omnibind.objectives import Objective, ObjectiveSetup, get_objective, register_objective, unregister_objective
from omnibind.objectives import registry as objective_registry
from omnibind.train.config import load_train_config


class FakeModel(torch.nn.Module):
    """What an objective reads of the model: t' and b."""

    def __init__(self) -> None:
        super().__init__()
        self.logit_scale = torch.nn.Parameter(torch.tensor([2.0]))
        self.logit_bias = torch.nn.Parameter(torch.tensor([-1.0]))


def unit(*shape: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_builtins_come_first_and_unknown_names_are_listed() -> None:
    assert objectives.objective_names()[:2] == ("sigmoid", "softmax")
    assert get_objective("sigmoid") is objectives.SigmoidObjective
    with pytest.raises(InputError, match=r"loss\.kind: unknown objective 'triplet'.*sigmoid, softmax"):
        get_objective("triplet")
    with pytest.raises(InputError, match=r"loss\.kind: unknown objective 'triplet'.*sigmoid, softmax"):
        load_train_config(None, ["loss.kind=triplet"])


def test_conflicting_or_malformed_registrations_are_refused() -> None:
    class Other(Objective):
        name = "sigmoid"

        def __call__(self, outputs, batch, model):
            raise NotImplementedError

    with pytest.raises(InputError, match="already registered"):
        register_objective(Other)
    register_objective(objectives.SigmoidObjective)  # the same class again is no conflict
    with pytest.raises(InputError, match="not an Objective subclass"):
        register_objective(len)  # type: ignore[arg-type]
    Other.name = "not a name"
    with pytest.raises(InputError, match="an identifier"):
        register_objective(Other)
    assert get_objective("sigmoid") is objectives.SigmoidObjective


def test_plugin_modules_named_in_the_environment_are_imported(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "plugin_objective.py").write_text(
        "from omnibind.objectives import SigmoidObjective, register_objective\n\n\n"
        "@register_objective\nclass Plugged(SigmoidObjective):\n    name = 'plugged'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(objective_registry.ENV_VAR, "plugin_objective")
    monkeypatch.setattr(plugins, "_loaded", set())
    try:
        assert "plugged" in objectives.objective_names()
    finally:
        unregister_objective("plugged")
        sys.modules.pop("plugin_objective", None)
    monkeypatch.setenv(objective_registry.ENV_VAR, "no_such_objective_module")
    monkeypatch.setattr(plugins, "_loaded", set())
    with pytest.raises(InputError, match=objective_registry.ENV_VAR):
        objectives.objective_names()


@pytest.mark.parametrize("name", ["sigmoid", "softmax"])
def test_contrastive_objectives_sum_their_pairs_over_the_pooled_embeddings(name: str) -> None:
    outputs = {m: unit(6, 8, seed=i) for i, m in enumerate(("image", "text", "audio"))}
    outputs["image/tokens"] = torch.randn(6, 5, 16)  # token sequences asked by another objective: ignored
    batch = {"image_mask": torch.tensor([1, 1, 1, 0, 1, 1]).bool(), "text_mask": torch.ones(6, dtype=torch.bool),
             "audio_mask": torch.tensor([0, 1, 1, 1, 0, 1]).bool()}
    model = FakeModel()
    objective = objectives.build_objective(name, ObjectiveSetup((("image", "text"),)))
    assert objective.supports_grad_cache and objective.token_modalities == ()
    loss, parts = objective(outputs, batch, model)
    mask = batch["image_mask"]
    if name == "sigmoid":
        expected = sigmoid_loss(outputs["image"], outputs["text"], model.logit_scale, model.logit_bias, mask)
    else:
        expected = softmax_loss(outputs["image"], outputs["text"], model.logit_scale, mask)
    assert set(parts) == {"image-text"} and abs(loss.item() - expected.item()) < 1e-6


@pytest.mark.parametrize(("name", "world", "chunked", "mode"), [
    ("sigmoid", 1, True, "local"), ("sigmoid", 2, True, "ring"), ("sigmoid", 2, False, "gather"),
    ("softmax", 1, True, "local"), ("softmax", 2, True, "gather")])
def test_the_distributed_mode_follows_the_setup(name: str, world: int, chunked: bool, mode: str) -> None:
    objective = objectives.build_objective(name, ObjectiveSetup((("image", "text"),), world, chunked))
    assert objective.loss.mode == mode
