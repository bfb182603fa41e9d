"""Hub ids work wherever a folder does, through huggingface_hub's cache, with no network: checkpoints written
by transformers (SigLIP, CLAP) and by omnibind (a composed one, with its anchor's tokenizer) are stored in a
cache laid out as huggingface_hub lays out downloads, HF_HUB_OFFLINE=1, and `omnibind.load`, `omnibind info`,
`omnibind embed -m` and `omnibind compose --from` take the ids. An id that is not cached is refused with an
error that names it and says why (offline, not in the cache)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from compose_fixtures import AUDIO, IMAGE, TEXT
from foreign_folders import clap_folder, siglip_folder
from typer.testing import CliRunner

import hub_cache
import omnibind
from omnibind.checkpoint import resolve
from omnibind.cli import app
from omnibind.compose import compose, save_composed
from omnibind.errors import CheckpointError

pytest.importorskip("transformers")
SIGLIP, CLAP, COMPOSED, ABSENT = "omnibind-tests/siglip-tiny", "omnibind-tests/clap-tiny", "omnibind-tests/composed", \
    "omnibind-tests/not-downloaded"
SENTENCES = ["a red circle", "the sound of a bell"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory, spiece_model: Path) -> dict[str, Path]:
    """The transformers folders, written once for the module (tests must not modify them)."""
    root = tmp_path_factory.mktemp("hub_sources")
    return {SIGLIP: siglip_folder(root / "siglip", spiece_model), CLAP: clap_folder(root / "clap")}


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, folders: dict[str, Path]) -> Path:
    """An offline huggingface_hub cache (HF_HOME under tmp_path) holding both transformers repositories."""
    cache = hub_cache.offline_cache(monkeypatch, tmp_path / "hf_home")
    for repo_id, folder in folders.items():
        hub_cache.put(cache, repo_id, folder)
    return cache


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    return result.output


def test_the_cache_is_huggingface_hubs_own(cache: Path, folders: dict[str, Path]) -> None:
    """What the helper writes is what huggingface_hub reads back as a download (so the tests below exercise
    huggingface_hub's own offline path, not a folder that happens to exist)."""
    from huggingface_hub import scan_cache_dir, try_to_load_from_cache

    scanned = scan_cache_dir(cache)
    assert not scanned.warnings and {r.repo_id for r in scanned.repos} == {SIGLIP, CLAP}
    assert all({"main"} == set(next(iter(r.revisions)).refs) for r in scanned.repos)
    cached = try_to_load_from_cache(SIGLIP, "config.json")
    assert isinstance(cached, str) and Path(cached).read_bytes() == (folders[SIGLIP] / "config.json").read_bytes()
    assert resolve(SIGLIP).is_relative_to(cache) and (resolve(SIGLIP) / "spiece.model").is_symlink()


def test_load_a_hub_id_offline(cache: Path, folders: dict[str, Path]) -> None:
    pixels = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for repo_id, modality, inputs in ((SIGLIP, IMAGE, pixels), (SIGLIP, TEXT, SENTENCES), (CLAP, TEXT, SENTENCES)):
        by_id, by_folder = omnibind.load(repo_id), omnibind.load(folders[repo_id])
        with torch.no_grad():
            assert torch.equal(by_id.encode(modality, inputs), by_folder.encode(modality, inputs))


def test_info_embed_and_compose_take_hub_ids(cache: Path, folders: dict[str, Path], tmp_path: Path,
                                            media_files: dict[str, Path]) -> None:
    assert re.search(rf"{SIGLIP}\s+\(embedding dim 32\)", cli("info", SIGLIP))
    assert "2s @ 8000 Hz, 64 mels, CLAP HTSAT (rand_trunc" in cli("info", CLAP)

    cli("embed", str(media_files["drawing"]), "-m", SIGLIP, "-t", SENTENCES[0], "-o", str(tmp_path / "e.npy"),
        "--device", "cpu", "--runtime", "fp32")
    with torch.no_grad():
        model = omnibind.load(folders[SIGLIP])
        expected = torch.cat([model.encode(IMAGE, [media_files["drawing"]]), model.encode(TEXT, SENTENCES[:1])])
    assert np.abs(np.load(tmp_path / "e.npy") - expected.numpy()).max() < 1e-5

    out = tmp_path / "composed"
    assert "image (vit), text (anchored), audio (connected)" in " ".join(
        cli("compose", str(out), "--from", f"{IMAGE},{TEXT}={SIGLIP}", "--from", f"{AUDIO},{TEXT}={CLAP}").split())
    by_folder = compose([f"{IMAGE},{TEXT}={folders[SIGLIP]}", f"{AUDIO},{TEXT}={folders[CLAP]}"])
    by_id = omnibind.load(out)
    assert by_id.config.to_dict() == by_folder.config.to_dict()
    assert all(torch.equal(v, by_folder.state_dict()[k]) for k, v in by_id.state_dict().items())

    # A composed checkpoint on the hub: its anchor's tokenizer (anchor0.tokenizer.json) comes from the cache too.
    hub_cache.put(cache, COMPOSED, save_composed(by_folder, tmp_path / "upload"))
    again = omnibind.load(COMPOSED)
    assert (resolve(COMPOSED) / "anchor0.tokenizer.json").is_file()
    with torch.no_grad():
        assert torch.equal(again.preprocess(TEXT, SENTENCES), by_folder.preprocess(TEXT, SENTENCES))
        assert torch.equal(again.encode(AUDIO, [media_files["tone"]]), by_folder.encode(AUDIO, [media_files["tone"]]))
    assert f"{COMPOSED}  (embedding dim 32)" in cli("info", COMPOSED)


def test_an_id_that_is_not_cached_is_named(cache: Path, folders: dict[str, Path], tmp_path: Path) -> None:
    message = rf"{ABSENT}: not in huggingface_hub's cache \({re.escape(str(cache))}\), and HF_HUB_OFFLINE is set"
    with pytest.raises(CheckpointError, match=message):
        omnibind.load(ABSENT)
    for args in (["info", ABSENT], ["embed", "-m", ABSENT, "-t", "a cat", "-o", str(tmp_path / "e.npy")],
                 ["compose", str(tmp_path / "out"), "--from", f"{IMAGE},{TEXT}={SIGLIP}",
                  "--from", f"{AUDIO},{TEXT}={ABSENT}"]):
        result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
        assert result.exit_code == 2, result.output
        assert re.search(message, " ".join(result.output.split())), result.output
    assert not (tmp_path / "out").exists()
