"""The captioning objective on its own: cross-entropy on the suffix alone (prefix and padding never targets, a
hand-computed case), gradients that reach the decoder, the projections and unlocked towers but not locked ones,
the contrastive objective beside it, and errors that name the loss.options field."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from helpers import tiny_model
from omnibind.errors import InputError
from omnibind.models.model import OmniBind
from omnibind.objectives import ObjectiveSetup, build_objective
from omnibind.objectives.captioning import (
    TASK_KEY,
    CaptioningObjective,
    caption_loss,
    next_token_targets,
    suffix_valid,
)
from omnibind.train.optim import lock

SMALL = {"width": 32, "depth": 1, "heads": 2, "head_dim": 16, "mlp_dim": 64}
TASKS = [{"prompt": "caption en", "media": ["image"]},
         {"prompt": "describe the sound", "media": ["audio"], "keys": ["note-*", "speech-*"], "skip": ["*-d"]}]


def test_suffix_runs_to_the_first_eos_inclusive() -> None:
    ids = torch.tensor([[5, 6, 1, 1], [5, 6, 7, 8], [1, 1, 1, 1]])
    assert suffix_valid(ids, 1).tolist() == [[True, True, True, False], [True] * 4, [True, False, False, False]]


def test_prefix_and_padding_ids_are_never_targets() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 7, 11, generator=g)
    prefix = torch.tensor([[True] * 4 + [False] * 3, [True] * 4 + [False] * 3])
    valid = torch.tensor([[False, True, True, True, True, True, False], [True] * 7])
    ids = torch.randint(0, 11, (2, 7), generator=g)
    loss, count = caption_loss(logits, *next_token_targets(ids, valid, prefix))
    changed = ids.clone()
    changed[prefix] = torch.randint(0, 11, (int(prefix.sum()),), generator=g)  # prompt / media positions
    changed[~valid] = 7  # padding
    again, count_again = caption_loss(logits, *next_token_targets(changed, valid, prefix))
    assert count == count_again == 2 + 3  # the suffix tokens alone
    assert torch.equal(loss, again)
    suffix = ids.clone()
    suffix[1, 5] = (suffix[1, 5] + 1) % 11  # a suffix token: it is a target, so the loss moves
    assert not torch.equal(caption_loss(logits, *next_token_targets(suffix, valid, prefix))[0], loss)


def test_cross_entropy_by_hand() -> None:
    """Prefix of 2, suffix [2, 0]: the last prefix position predicts 2, the first suffix position predicts 0."""
    logits = torch.tensor([[[9.0, 9.0, 9.0], [0.0, 1.0, 2.0], [3.0, 0.0, 0.0], [5.0, 5.0, 5.0]]])
    ids = torch.tensor([[0, 1, 2, 0]])
    prefix = torch.tensor([[True, True, False, False]])
    loss, count = caption_loss(logits, *next_token_targets(ids, torch.ones_like(prefix), prefix))
    first = -(2.0 - math.log(math.exp(0) + math.exp(1) + math.exp(2)))
    second = -(3.0 - math.log(math.exp(3) + 2))
    assert count == 2
    assert loss.item() == pytest.approx(first + second, abs=1e-6)


def build(spiece: Path, **options: object) -> tuple[OmniBind, CaptioningObjective]:
    """A tiny three-tower model with the objective's projections and decoder attached, as the trainer does."""
    model = tiny_model(spiece).train()
    objective = build_objective("captioning", ObjectiveSetup(options={"decoder": SMALL, "tasks": TASKS, **options}))
    assert isinstance(objective, CaptioningObjective)
    for name, module in objective.modules(model).items():
        model.add_module(name, module)
    return model, objective


def batch_for(model: OmniBind) -> dict[str, object]:
    """Four examples: images with captions, a sound whose key matches the sound task, one that matches nothing."""
    texts = ["a red apple", "the big dog", "a piano sound", "hello world"]
    g = torch.Generator().manual_seed(1)
    return {"image": torch.randn(4, 3, 32, 32, generator=g), "audio": torch.randn(4, 32, 128, generator=g),
            "text": model.processors["text"](texts), "key": ["emoji-a", "emoji-b", "note-c", "speech-d"],
            "image_mask": torch.tensor([True, True, False, False]),
            "audio_mask": torch.tensor([False, True, True, True]),
            "text_mask": torch.ones(4, dtype=torch.bool)}


def loss_of(model: OmniBind, objective: CaptioningObjective, batch: dict[str, object]) -> torch.Tensor:
    tensors = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
    inputs = {m: tensors[m] for m in model.modalities}
    outputs = model(inputs, tokens=objective.token_modalities)
    loss, parts = objective(outputs, {**tensors, **objective.prepare(batch)}, model)
    assert set(parts) >= {"caption"}
    return loss


def test_tasks_follow_media_and_key_patterns(spiece_model: Path) -> None:
    model, objective = build(spiece_model)
    batch = batch_for(model)
    assert objective.prepare(batch)[TASK_KEY].tolist() == [0, 0, 1, -1]  # "speech-d" is skipped
    bos = model.config.towers["text"].vocab_size  # BOS comes after the text tower's vocabulary
    assert objective.prompt_ids[0][0] == objective.prompt_ids[1][0] == bos


def test_gradients_reach_decoder_projections_and_unlocked_towers_only(spiece_model: Path) -> None:
    model, objective = build(spiece_model)
    frozen = lock(model, ["towers.image.*"])  # LiT-style: one pattern
    loss_of(model, objective, batch_for(model)).backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(grads[name] is None for name in frozen)
    for prefix in ("decoder.", "project.image.", "project.audio.", "towers.audio.patch"):
        reached = [name for name, g in grads.items() if name.startswith(prefix) and g is not None and g.abs().sum() > 0]
        assert reached, prefix
    assert all(g is None for name, g in grads.items() if name.startswith("towers.text."))  # read for its ids only


def test_weighted_beside_the_contrastive_loss(spiece_model: Path) -> None:
    model, objective = build(spiece_model, contrastive="sigmoid", weight=0.5, contrastive_weight=2.0)
    torch.manual_seed(0)
    batch = batch_for(model)
    tensors = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
    outputs = model({m: tensors[m] for m in model.modalities}, tokens=objective.token_modalities)
    loss, parts = objective(outputs, {**tensors, **objective.prepare(batch)}, model)
    contrastive = sum(v.detach() for k, v in parts.items() if k != "caption")
    assert set(parts) == {"caption", "image-text"}  # the default pairs
    assert loss.item() == pytest.approx(0.5 * parts["caption"].item() + 2.0 * float(contrastive), rel=1e-6)
    alone = build_objective("captioning", ObjectiveSetup(options={"decoder": SMALL, "tasks": TASKS}))
    assert isinstance(alone, CaptioningObjective)
    alone.prompt_ids = objective.prompt_ids
    caption_alone, _ = alone(outputs, {**tensors, **objective.prepare(batch)}, model)
    assert parts["caption"].item() == pytest.approx(caption_alone.item(), rel=1e-6)


@pytest.mark.parametrize(("options", "field"), [
    ({"decoder": {"vocab_size": 10}}, "loss.options.decoder"),
    ({"tasks": [{"prompt": "x", "media": ["text"]}]}, "loss.options.tasks[0].media"),
    ({"tasks": [{"media": ["image"]}]}, "loss.options.tasks[0]"),
    ({"weight": -1}, "loss.options.weight"),
    ({"beam": 3}, "loss.options"),
])
def test_bad_options_name_their_field(options: dict[str, object], field: str) -> None:
    with pytest.raises(InputError, match=re.escape(field)):
        build_objective("captioning", ObjectiveSetup(options=options))


def test_a_task_medium_the_model_lacks_is_refused(spiece_model: Path) -> None:
    objective = build_objective("captioning", ObjectiveSetup(options={"tasks": [{"prompt": "", "media": ["depth"]}]}))
    with pytest.raises(InputError, match=r"loss\.options\.tasks"):
        objective.modules(tiny_model(spiece_model))


def test_options_are_checked_when_the_config_is_read() -> None:
    from omnibind.train.config import load_train_config

    with pytest.raises(InputError, match=r"loss\.options\.tasks\[0\]\.media"):
        load_train_config(None, ["loss.kind=captioning", "loss.options={tasks: [{prompt: x, media: []}]}"])
    with pytest.raises(InputError, match=r"loss\.options: \['tasks'\] given to 'sigmoid'"):
        load_train_config(None, ["loss.options={tasks: []}"])
