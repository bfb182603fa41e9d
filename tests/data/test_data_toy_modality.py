"""A modality defined only in tests/ (depth maps in .npy files) goes through the whole data path: a manifest
naming it packs into shards, the loader and the cached set decode it into (B, 1, 16, 16) batches with masks,
inspect counts it, and its bad samples are skipped under its own reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import toy_modality
from omnibind.cli import app
from omnibind.data.cached import CachedBatches, DecodedSet
from omnibind.data.decode import input_specs
from omnibind.data.inspect import inspect
from omnibind.data.loader import LoaderConfig, make_loader
from omnibind.data.pack import pack
from omnibind.data.skips import MANIFEST_LINE_INVALID
from omnibind.data.tario import ShardWriter, read_tar
from omnibind.errors import InputError
from omnibind.modalities import TextConfig
from omnibind.preprocess.text import Tokenizer
from toy_data import write_depth_manifest
from toy_modality import DepthConfig, DepthPreprocessor, depth_map, npy_bytes

pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create")
SIZE = 16


@pytest.fixture(scope="module")
def depth_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, set[str]], Path]:
    """12 depth/caption examples packed into 3 shards: the shard pattern, modalities per key, the files."""
    folder = tmp_path_factory.mktemp("depth_set")
    manifest, modalities = write_depth_manifest(folder / "files")
    report = pack(manifest, folder / "shards", shard_size=5, show_progress=False)
    assert report.examples == 12 and len(report.paths) == 3 and report.skipped.total == 0
    return report.pattern, modalities, folder / "files"


@pytest.fixture(scope="module")
def processors(spiece_model: Path) -> dict:
    return {"text": Tokenizer(spiece_model, max_len=8), toy_modality.NAME: DepthPreprocessor(SIZE)}


@pytest.fixture(scope="module")
def specs() -> dict:
    return input_specs({"text": TextConfig(max_len=8), toy_modality.NAME: DepthConfig(size=SIZE)})


def test_pack_writes_npy_fields(depth_set) -> None:
    pattern, _, files = depth_set
    shards = sorted(Path(pattern).parent.glob("*.tar"))
    samples = {s.key: s for p in shards for s in read_tar(str(p), lambda *e: pytest.fail(str(e)))}
    assert samples["d00"].fields["npy"] == (files / "d00.npy").read_bytes()
    assert set(samples["d04"].fields) == {"npy", "json"} and set(samples["d05"].fields) == {"txt", "json"}


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_batches_carry_depth_and_its_mask(depth_set, processors, specs, workers: int) -> None:
    pattern, modalities, files = depth_set
    config = LoaderConfig(pattern, batch_size=4, num_workers=workers, shuffle_buffer=0, drop_last=False, epochs=1)
    batches = list(make_loader(config, processors, specs=specs))
    seen = 0
    for batch in batches:
        assert batch["depth"].shape == (len(batch["key"]), 1, SIZE, SIZE) and batch["depth"].dtype == torch.float32
        for row, key in enumerate(batch["key"]):
            assert bool(batch["depth_mask"][row]) == ("depth" in modalities[key])
            assert bool(batch["text_mask"][row]) == ("text" in modalities[key])
            if "depth" in modalities[key]:
                expected = processors["depth"].one((files / f"{key}.npy").read_bytes())
                assert torch.allclose(batch["depth"][row], expected)
            else:
                assert not batch["depth"][row].any()
            seen += 1
    assert seen == 12


def test_cached_set_holds_depth(depth_set, processors, specs) -> None:
    pattern, modalities, _ = depth_set
    decoded = DecodedSet.decode(pattern, processors, num_workers=0, specs=specs)
    with_depth = sum("depth" in m for m in modalities.values())
    assert decoded.tensors["depth"].shape == (with_depth, 1, SIZE, SIZE)
    batch = CachedBatches(decoded, global_batch=6, seed=0).batch(0)
    assert batch["depth"].shape == (6, 1, SIZE, SIZE)
    assert batch["depth_mask"].tolist() == ["depth" in modalities[k] for k in batch["key"]]


class SpecLess:
    """A processor with one/batch but no input_spec: the loader cannot tell what to zero-fill."""

    def __init__(self, inner) -> None:
        self.one, self.batch = inner.one, inner.batch


def test_a_plugin_processor_without_specs_is_a_clear_error(depth_set, processors) -> None:
    bare = {**processors, "depth": SpecLess(processors["depth"])}
    with pytest.raises(InputError, match=r"processors\['depth'\].*input_specs"):
        make_loader(LoaderConfig(depth_set[0], batch_size=2), bare)


def test_a_processor_with_input_spec_needs_no_specs(depth_set, processors, specs) -> None:
    batch = next(iter(make_loader(LoaderConfig(depth_set[0], batch_size=2, num_workers=0), processors)))
    assert batch["depth"].shape == (2, *specs["depth"].shape)


def test_inspect_counts_depth(depth_set, tmp_path: Path) -> None:
    pattern, modalities, _ = depth_set
    report = inspect(pattern, examples=1, show_progress=False)
    assert report.modalities["depth"] == sum("depth" in m for m in modalities.values()) == 10
    assert report.combinations["depth+text"] == 8 and report.combinations["depth"] == 2
    assert report.bytes_by_modality["depth"] > 0 and report.extensions["npy"] == 10
    result = CliRunner().invoke(app, ["data", "inspect", str(Path(pattern).parent), "--examples", "0"])
    assert result.exit_code == 0, result.output
    assert "depth" in result.output and "image" not in result.output  # columns: the modalities present


def test_manifest_checks_the_file_type_of_each_modality(tmp_path: Path) -> None:
    (tmp_path / "a.npy").write_bytes(npy_bytes(depth_map(0, 0)))
    (tmp_path / "b.npy").write_bytes(npy_bytes(depth_map(1, 1)))
    lines = [{"key": "good", "depth": "a.npy", "text": "a floor"}, {"key": "misfiled", "image": "b.npy"}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    report = pack(tmp_path / "m.jsonl", tmp_path / "out", show_progress=False)
    assert report.examples == 1 and report.skipped.counts == {MANIFEST_LINE_INVALID: 1}
    assert "a depth file under 'image'" in report.skipped.examples[MANIFEST_LINE_INVALID][0]


def test_a_broken_depth_map_is_skipped_under_its_modality_reason(tmp_path: Path, processors, specs) -> None:
    with ShardWriter(tmp_path, "s") as writer:
        writer.write("good", {"npy": npy_bytes(depth_map(0, 0)), "txt": b"a floor"})
        writer.write("broken", {"npy": b"\x93NUMPY not really", "txt": b"a broken map"})
    loader = make_loader(LoaderConfig(str(tmp_path), batch_size=2, num_workers=0, epochs=1, drop_last=False),
                         processors, specs=specs)
    assert [k for b in loader for k in b["key"]] == ["good"]
    assert loader.stats.counts == {toy_modality.DEPTH.skip_reason("decode"): 1}
    assert "broken.npy" in loader.stats.examples["depth undecodable"][0]
