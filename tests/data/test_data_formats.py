"""Shards and manifests: the deterministic tar writer, WebDataset compatibility both ways, pack, inspect,
and the `omnibind data` commands."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omnibind.cli import app
from omnibind.data.inspect import inspect
from omnibind.data.loader import LoaderConfig, make_loader
from omnibind.data.pack import DUPLICATE_KEY, pack
from omnibind.data.skips import FILE_MISSING
from omnibind.data.tario import ShardWriter, check_key, read_tar
from omnibind.errors import InputError

runner = CliRunner()


def digest(paths: list[Path]) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest()


def test_pack_writes_every_example_into_shards(small_set) -> None:
    assert len(small_set.shards) == 8
    assert small_set.pattern.endswith("shard-{000000..000007}.tar")
    found = [s.key for p in small_set.shards for s in read_tar(str(p), lambda *a: pytest.fail(str(a)))]
    assert Counter(found) == Counter(small_set.keys)


def test_pack_is_deterministic(small_set, tmp_path: Path) -> None:
    again = pack(small_set.manifest, tmp_path / "again", shard_size=5, show_progress=False)
    assert digest(again.paths) == digest(small_set.shards)


def test_pack_skips_missing_files_and_duplicate_keys(tmp_path: Path, small_set) -> None:
    image = next(small_set.manifest.parent.glob("*.png"))
    lines = [{"key": "a", "image": str(image)}, {"key": "a", "image": str(image)},
             {"key": "b", "image": "missing.png", "text": "x"}, {"key": "c.d", "text": "a dotted key"}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    report = pack(tmp_path / "m.jsonl", tmp_path / "out", show_progress=False)
    assert report.examples == 2
    assert report.skipped.counts == {DUPLICATE_KEY: 1, FILE_MISSING: 1}
    assert [s.key for s in read_tar(str(report.paths[0]), print)] == ["a", "c_d"]


def test_pack_errors_name_the_manifest(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="manifest not found"):
        pack(tmp_path / "none.jsonl", tmp_path / "out", show_progress=False)
    (tmp_path / "bad.jsonl").write_text('{"image": "nope.png"}\n')
    with pytest.raises(InputError, match="no usable entries"):
        pack(tmp_path / "bad.jsonl", tmp_path / "out", show_progress=False)


@pytest.mark.parametrize("key", ["a.b", "", "with space", "/abs"])
def test_keys_webdataset_could_not_split_back_are_refused(key: str) -> None:
    with pytest.raises(InputError, match="key"):
        check_key(key)


def test_webdataset_reads_our_shards(small_set) -> None:
    webdataset = pytest.importorskip("webdataset")
    dataset = webdataset.WebDataset(small_set.pattern, shardshuffle=False, empty_check=False)
    samples = list(dataset)
    assert Counter(s["__key__"] for s in samples) == Counter(small_set.keys)
    first = next(s for s in samples if s["__key__"] == "ex000")
    assert {"png", "wav", "txt", "json"} <= set(first) and first["txt"] == b"a red and a red"


def test_we_read_webdataset_shards(tmp_path: Path, small_set, processors) -> None:
    webdataset = pytest.importorskip("webdataset")
    image = next(small_set.manifest.parent.glob("*.png")).read_bytes()
    with webdataset.TarWriter(str(tmp_path / "wds-000000.tar")) as sink:
        for i in range(5):
            sink.write({"__key__": f"sample{i}", "png": image, "txt": f"picture {i}"})
    config = LoaderConfig(str(tmp_path / "wds-000000.tar"), batch_size=5, num_workers=0, epochs=1)
    batch = next(iter(make_loader(config, processors)))
    assert sorted(batch["key"]) == [f"sample{i}" for i in range(5)]
    assert batch["image_mask"].all() and batch["text_mask"].all() and not batch["audio_mask"].any()


def test_shard_writer_limits_and_cleans_up(tmp_path: Path) -> None:
    with ShardWriter(tmp_path, "b", max_count=100, max_bytes=2500) as writer:
        for i in range(5):
            writer.write(f"k{i}", {"bin": bytes(1000)})
    assert len(writer.paths) == 3 and not list(tmp_path.glob("*.tmp"))
    with pytest.raises(RuntimeError), ShardWriter(tmp_path / "failed", "c") as failing:
        failing.write("k", {"bin": b"x"})
        raise RuntimeError("interrupted")
    assert not list((tmp_path / "failed").iterdir())  # no half-written shard is left behind


def test_inspect_counts_modalities_and_combinations(small_set) -> None:
    report = inspect(small_set.pattern, examples=2, show_progress=False)
    from_manifest = inspect(str(small_set.manifest), examples=2, show_progress=False)
    for r in (report, from_manifest):
        assert r.examples == 37
        assert r.modalities == Counter(m for mods in small_set.modalities.values() for m in mods)
        assert r.combinations["audio+image+text"] == 7 and r.combinations["image"] == 6
        assert len(r.samples) == 2 and r.samples[0]["key"] == "ex000"
    assert report.shards == 8 and report.total_bytes == from_manifest.total_bytes


def test_cli_pack_and_inspect(small_set, tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "pack", str(small_set.manifest), str(tmp_path / "out"), "--shard-size", "20"])
    assert result.exit_code == 0, result.output
    assert "wrote 37 examples" in result.output and "shard-{000000..000001}.tar" in result.output
    result = runner.invoke(app, ["data", "inspect", str(tmp_path / "out"), "--examples", "1"])
    assert result.exit_code == 0, result.output
    assert "37" in result.output and "ex000" in result.output
    result = runner.invoke(app, ["data", "inspect", str(tmp_path / "out"), "--json"])
    assert json.loads(result.output)[0]["examples"] == 37


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "inspect", str(tmp_path / "nothing-{0..3}.tar")])
    assert result.exit_code == 2
    assert "error:" in result.output and "not found" in result.output
