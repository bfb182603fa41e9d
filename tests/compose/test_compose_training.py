"""Training a composed model's connectors with `omnibind train`'s Trainer and the shipped configs (on
synthetic batches here): only the connector changes, everything locked stays bit-identical; text-alone
training lowers the text-mapping loss; and in a perfectly alignable case (the foreign text space is a rotation
of the base one) the linear connector learnt from text alone recovers the rotation, so that sounds find their
pictures through it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from compose_fixtures import AUDIO, IMAGE, TEXT, specs, tiny

import omnibind
from helpers import tiny_corpus
from omnibind.compose import compose, save_composed
from omnibind.errors import InputError
from omnibind.objectives import ObjectiveSetup, build_objective
from omnibind.runlog import read_metrics
from omnibind.train.config import load_train_config
from omnibind.train.state import latest
from omnibind.train.trainer import Trainer

CONFIGS = Path(__file__).parents[2] / "configs"


def train(config: str, composed: Path, run: Path, *overrides: str) -> Path:
    """Train a shipped compose config on synthetic batches; the last checkpoint's folder."""
    cfg = load_train_config(CONFIGS / config, [
        f"run_dir={run}", f"model.init_from={composed}", "data.kind=synthetic", "data.batch_size=16",
        "data.synthetic_classes=8", "eval.splits={}", "train.log_every=1", "optim.warmup_steps=1", *overrides])
    Trainer(cfg, show_progress=False).run()
    folder = latest(run / "checkpoints")
    assert folder is not None
    return folder


@pytest.fixture
def composed(sources: dict[str, Path], tmp_path: Path) -> Path:
    return save_composed(compose(specs(sources)), tmp_path / "composed")


@pytest.mark.parametrize("config", ["compose_text_bridge.yaml", "compose_bind.yaml", "compose_both.yaml"])
def test_only_the_connector_changes(composed: Path, tmp_path: Path, config: str) -> None:
    before = omnibind.load(composed).state_dict()
    after = omnibind.load(train(config, composed, tmp_path / "run", "train.steps=3", "train.ckpt_every=3")).state_dict()
    assert before.keys() == after.keys()
    connector = [k for k in before if k.startswith(f"towers.{AUDIO}.connector.")]
    assert connector and all(not torch.equal(before[k], after[k]) for k in connector)
    assert all(torch.equal(before[k], after[k]) for k in before if k not in connector)


def test_text_alone_training_lowers_the_text_mapping_loss(composed: Path, tmp_path: Path) -> None:
    train("compose_text_bridge.yaml", composed, tmp_path / "run", "train.steps=20", "train.ckpt_every=20",
          "optim.lr=1.0e-2")
    losses = [r[f"loss/{AUDIO}~{TEXT}"] for r in read_metrics(tmp_path / "run") if f"loss/{AUDIO}~{TEXT}" in r]
    assert len(losses) == 20
    assert sum(losses[-3:]) < 0.75 * sum(losses[:3])


def test_the_bridge_refuses_pairs_without_text_and_models_without_anchors(sources: dict[str, Path]) -> None:
    with pytest.raises(InputError, match=r"loss\.pairs: \['audio', 'image'\] does not pair a connected modality "
                                         r"with text"):
        build_objective("text_bridge", ObjectiveSetup(pairs=((AUDIO, IMAGE),)))
    unanchored = compose([specs(sources)[0], f"{AUDIO}={sources['b']}"])
    objective = build_objective("text_bridge", ObjectiveSetup(pairs=((AUDIO, TEXT),)))
    batch = {TEXT: unanchored.preprocess(TEXT, ["a cat"]), f"{TEXT}_mask": torch.ones(1, dtype=torch.bool)}
    with pytest.raises(InputError, match=r"towers\.text: has no foreign text towers to bridge through"):
        objective(unanchored(batch), batch, unanchored)


def rotated_sources(spiece: Path, folder: Path, sounds: torch.Tensor, pictures: torch.Tensor,
                    sentences: list[str]) -> tuple[dict[str, Path], torch.Tensor]:
    """An image–text model A, and an audio–text model B whose text space is A's turned by a random rotation R
    (B's text tower is A's with R applied to its projection) and whose audio tower sends sound i exactly to
    R·(A's embedding of picture i) (its projection solved by least squares on the pooled features); and R. A's text
    projection whitens its pooled features on `sentences`, so that text spans the space evenly: the
    rotation is then determined in every direction, and well conditioned."""
    a = tiny(spiece, (IMAGE, TEXT), 32, seed=1, text_width=48)
    b = tiny(spiece, (AUDIO, TEXT), 32, seed=2, projection=True, text_width=48)
    rotation, _ = torch.linalg.qr(torch.randn(32, 32, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        text = a.towers[TEXT]
        features = text.pool(text.tokens(a.preprocess(TEXT, sentences)))
        mean = features.mean(0)
        _, values, vectors = torch.linalg.svd(features - mean, full_matrices=False)
        whiten = len(sentences) ** 0.5 * vectors[:32] / values[:32, None]
        text.proj.weight.copy_(whiten)
        text.proj.bias.copy_(-whiten @ mean)
        b.towers[TEXT].load_state_dict(text.state_dict())
        b.towers[TEXT].proj.weight.copy_(rotation @ text.proj.weight)
        b.towers[TEXT].proj.bias.copy_(rotation @ text.proj.bias)
        targets = a.encode(IMAGE, pictures) @ rotation.T  # (n, 32): R v_i
        tower = b.towers[AUDIO]
        pooled = tower.pool(tower.tokens(sounds))  # (n, width)
        tower.proj.weight.copy_(torch.linalg.lstsq(pooled, targets).solution.T)
        tower.proj.bias.zero_()
        assert torch.allclose(b.encode(AUDIO, sounds), targets, atol=1e-4)
    return {"a": omnibind.save(a, folder / "a"), "b": omnibind.save(b, folder / "b")}, rotation


def test_a_rotated_text_space_is_recovered_from_text_alone(spiece_model: Path, tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(1)
    sounds, pictures = torch.randn(8, 32, 128, generator=generator), torch.rand(8, 3, 32, 32, generator=generator)
    sentences = tiny_corpus(256, seed=3)
    sources, rotation = rotated_sources(spiece_model, tmp_path, sounds, pictures, sentences)
    model = compose(specs(sources))
    with torch.no_grad():
        before = model.encode(AUDIO, sounds) @ model.encode(IMAGE, pictures).T
    assert before.diagonal().mean() < 0.5 and not torch.equal(before.argmax(1), torch.arange(8))  # a fresh connector

    for name, p in model.named_parameters():
        p.requires_grad_(".connector." in name)
    model.train()
    objective = build_objective("text_bridge", ObjectiveSetup(pairs=((AUDIO, TEXT),)))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-2)
    ids = model.preprocess(TEXT, sentences)  # both tokenizers, once; every step reads all 256 sentences
    batch = {TEXT: ids, f"{TEXT}_mask": torch.ones(len(ids), dtype=torch.bool)}
    for _ in range(60):
        loss, parts = objective(model(batch), batch, model)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    assert parts[f"{AUDIO}~{TEXT}"] < 5e-3  # from about 1 (unrelated spaces)

    with torch.no_grad():
        similarity = model.encode(AUDIO, sounds) @ model.encode(IMAGE, pictures).T
    assert torch.equal(similarity.argmax(1), torch.arange(8))  # audio → image R@1 = 1 through the connector
    assert similarity.diagonal().min() > 0.99
    weight = model.towers[AUDIO].connector.layers[0].weight
    undone = (weight @ rotation).detach()  # the connector undoes R: W·R is a multiple of the identity
    assert (undone / undone.diagonal().mean() - torch.eye(32)).abs().max() < 0.1
