"""`omnibind embed-dataset`: every (key, modality) once, resumable after a crash at any point, and the same
vectors from 2 torchrun processes as from 1."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from scale_data import Shards, by_pair

import omnibind
from helpers import tiny_model
from omnibind.data.shardlist import ShardPlan
from omnibind.errors import InputError
from omnibind.scale import parquet
from omnibind.scale.embed import embed_dataset, rank_units
from omnibind.search.identity import identify


def run(shards: Shards, checkpoint: Path, out: Path, **kwargs: object):
    """embed_dataset in this process with the checkpoint loaded as the CLI loads it."""
    model = omnibind.load(checkpoint, device="cpu")
    return embed_dataset(shards.pattern, model, identify(model, checkpoint).to_dict(), out, **kwargs)


def test_every_pair_once_with_its_source_and_meta(shards: Shards, checkpoint: Path, tmp_path: Path) -> None:
    report = run(shards, checkpoint, tmp_path / "out", batch_size=3)
    vectors = by_pair(tmp_path / "out")
    assert set(vectors) == shards.pairs
    assert report.units_written == shards.count and report.rows == len(shards.pairs)
    assert np.allclose([np.linalg.norm(v) for v in vectors.values()], 1, atol=1e-5)
    table = pq.read_table(tmp_path / "out" / parquet.part_name(1)).to_pylist()
    assert {row["source"] for row in table} == {ShardPlan.build(shards.pattern, 1).units[1].url}
    assert all(json.loads(row["meta"])["index"] == int(row["key"][2:]) for row in table)
    # A caption's stored vector is what the model gives for that caption directly.
    model = omnibind.load(checkpoint, device="cpu")
    caption = next(r for r in pq.read_table(tmp_path / "out" / parquet.part_name(0)).to_pylist()
                   if r["modality"] == "text")
    key = caption["key"]
    manifest = Path(shards.pattern).parent.parent / "files" / "manifest.jsonl"
    text = next(json.loads(line)["text"] for line in manifest.read_text().splitlines() if f'"{key}"' in line)
    with torch.no_grad():
        direct = model.encode("text", [text])[0].numpy()
    assert np.allclose(vectors[(key, "text")], direct, atol=1e-5)


def test_rerun_skips_finished_units(shards: Shards, checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(shards, checkpoint, out)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*")}
    report = run(shards, checkpoint, out)
    assert (report.units_written, report.units_already_done) == (0, shards.count)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("part-*")} == stamps


def test_a_crash_before_publishing_and_a_rerun_give_every_pair_once(shards: Shards, checkpoint: Path,
                                                                    tmp_path: Path) -> None:
    run(shards, checkpoint, tmp_path / "ref", batch_size=3)
    reference = by_pair(tmp_path / "ref")

    def crash(unit: int) -> None:
        if unit == 2:
            raise KeyboardInterrupt("killed while publishing unit 2")

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run(shards, checkpoint, out, batch_size=3, before_publish=crash)
    assert sorted(p.name for p in out.glob("part-*")) == [parquet.part_name(0), parquet.part_name(1)]
    assert list(out.glob(f".{parquet.part_name(2)}{parquet.TEMP_MARK}*")), "the killed writer's file is left"
    report = run(shards, checkpoint, out, batch_size=3)
    assert (report.units_written, report.units_already_done) == (shards.count - 2, 2)
    assert not list(out.glob(".part-*")), "leftovers of the killed writer are removed"
    resumed = by_pair(out)
    assert set(resumed) == set(reference) == shards.pairs
    assert max(np.abs(resumed[p] - reference[p]).max() for p in reference) < 1e-5


def test_a_folder_of_another_model_is_refused(shards: Shards, checkpoint: Path, tmp_path: Path,
                                              spiece_model: Path) -> None:
    out = tmp_path / "out"
    run(shards, checkpoint, out)
    other = omnibind.save(tiny_model(spiece_model, seed=1), tmp_path / "other")
    with pytest.raises(InputError, match=r"plan\.json: this folder holds embeddings of another model"):
        run(shards, other, out)


@pytest.mark.parametrize("world_size", [1, 2, 3, 7])
def test_ranks_split_the_units_exactly_once(shards: Shards, world_size: int) -> None:
    plan = ShardPlan.build(shards.pattern, 1)
    owned = [i for rank in range(world_size) for i in rank_units(plan, rank, world_size)]
    assert sorted(owned) == list(range(len(plan.units)))


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "omnibind.cli", "embed-dataset", *args]


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_two_torchrun_processes_give_the_same_pairs_and_vectors_as_one(shards: Shards, checkpoint: Path,
                                                                       tmp_path: Path) -> None:
    args = [shards.pattern, "--model", str(checkpoint), "--batch-size", "3", "--workers", "1", "--device", "cpu"]
    one = subprocess.run(cli(*args, "--out", str(tmp_path / "one")), env=ENV, capture_output=True, text=True,
                         timeout=120)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "omnibind.cli", "embed-dataset", *args, "--out", str(tmp_path / "two")],
                         env=ENV, capture_output=True, text=True, timeout=120)
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    assert "rank 0/2" in two.stdout and "rank 1/2" in two.stdout
    single, double = by_pair(tmp_path / "one"), by_pair(tmp_path / "two")
    assert set(single) == set(double) == shards.pairs
    assert max(np.abs(single[p] - double[p]).max() for p in single) < 1e-5


def entries(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


@pytest.mark.slow
def test_sigkill_at_random_moments_and_a_rerun_give_every_pair_once(many_shards: Shards, checkpoint: Path,
                                                                   tmp_path: Path) -> None:
    """Each run is killed a random 0-30 ms after it first writes (a temporary or finished part: the window
    where a kill can tear a file), then a last run finishes the job."""
    out = tmp_path / "out"
    args = cli(many_shards.pattern, "--model", str(checkpoint), "--out", str(out), "--batch-size", "1",
               "--workers", "0", "--device", "cpu")
    rng = random.Random(17)
    torn = 0
    for _ in range(3):
        before = entries(out) - {parquet.PLAN_FILE}
        process = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while process.poll() is None and not entries(out) - {parquet.PLAN_FILE} - before:
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.03))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            torn += 1
        process.wait()
    assert torn >= 1, "no run was killed mid-way"
    done = len(list(out.glob("part-*")))
    assert done < many_shards.count, "the kills left nothing to resume"
    final = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr[-3000:]
    assert f"{done} of {many_shards.count} already done" in " ".join(final.stdout.split())
    resumed = by_pair(out)
    assert set(resumed) == many_shards.pairs
    assert not list(out.glob(".*.tmp-*"))
    run(many_shards, checkpoint, tmp_path / "ref")
    reference = by_pair(tmp_path / "ref")
    assert max(np.abs(resumed[p] - reference[p]).max() for p in reference) < 1e-5
