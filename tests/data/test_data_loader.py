"""The loader: exactly once per epoch across ranks and workers, exact resume, batch layout, seeding, errors."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch

from helpers import tiny_model
from omnibind.data.decode import input_specs, processor_specs
from omnibind.data.loader import LoaderConfig, make_loader
from omnibind.errors import InputError

pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create")


def keys_of(batches: list[dict]) -> list[str]:
    return [key for batch in batches for key in batch["key"]]


def one_pass(shards, processors, world_size: int, workers: int, **kw) -> list[str]:
    """Keys from every rank of one evaluation pass (ranks simulated in one process)."""
    keys = []
    for rank in range(world_size):
        config = LoaderConfig(shards, batch_size=4, num_workers=workers, epochs=1, drop_last=False, **kw)
        keys += keys_of(list(make_loader(config, processors, rank, world_size)))
    return keys


@pytest.mark.parametrize("shuffle", [0, 8])
def test_exactly_once_two_ranks_three_workers(small_set, processors, shuffle: int) -> None:
    keys = one_pass(small_set.pattern, processors, world_size=2, workers=3, shuffle_buffer=shuffle)
    assert Counter(keys) == Counter(small_set.keys)


def test_manifest_loads_directly_and_in_process(small_set, processors) -> None:
    keys = one_pass(str(small_set.manifest), processors, world_size=2, workers=0)
    assert Counter(keys) == Counter(small_set.keys)


def test_fewer_shards_than_workers_does_not_hang(small_set, processors) -> None:
    # Two shards for 2 ranks x 3 workers: each shard is split into parts, no worker idles or duplicates.
    shards = [str(p) for p in small_set.shards[:2]]
    keys = one_pass(shards, processors, world_size=2, workers=3)
    assert len(keys) == len(set(keys)) == 10


def test_batch_layout_masks_and_zeros(small_set, processors) -> None:
    config = LoaderConfig(str(small_set.manifest), batch_size=6, num_workers=0, shuffle_buffer=0, epochs=1,
                          drop_last=False)
    batches = list(make_loader(config, processors))
    batch = batches[0]
    assert batch["image"].shape == (6, 3, 16, 16) and batch["image"].dtype == torch.float32
    assert batch["audio"].shape == (6, 8, 10) and batch["audio"].dtype == torch.float32
    assert batch["text"].shape == (6, 8) and batch["text"].dtype == torch.int64
    for row, key in enumerate(batch["key"]):
        for modality in ("image", "text", "audio"):
            present = modality in small_set.modalities[key]
            assert bool(batch[f"{modality}_mask"][row]) == present
            if not present:
                assert not batch[modality][row].any()
    expected = processors["text"](["a red and a red"])[0]  # ex000's caption, in stored order first
    assert batch["key"][0] == "ex000" and torch.equal(batch["text"][0], expected)
    assert [len(b["key"]) for b in batches] == [6] * 6 + [1]  # the last partial batch is kept (drop_last=False)


def test_drop_last_drops_only_the_final_partial_batch(small_set, processors) -> None:
    config = LoaderConfig(str(small_set.manifest), batch_size=6, num_workers=0, shuffle_buffer=0, epochs=1)
    assert [len(b["key"]) for b in make_loader(config, processors)] == [6] * 6


def test_same_seed_same_order_other_seed_other_order(small_set, processors) -> None:
    def order(seed: int) -> list[str]:
        config = LoaderConfig(small_set.pattern, batch_size=4, num_workers=2, shuffle_buffer=10, seed=seed,
                              epochs=1, drop_last=False)
        return keys_of(list(make_loader(config, processors)))

    first = order(1)
    assert first == order(1)
    assert first != order(2) and sorted(first) == sorted(order(2))


def test_epochs_differ_in_order_and_each_is_complete(small_set, processors) -> None:
    config = LoaderConfig(small_set.pattern, batch_size=37, num_workers=0, shuffle_buffer=10, epochs=2,
                          drop_last=False)
    keys = keys_of(list(make_loader(config, processors)))
    assert Counter(keys[:37]) == Counter(keys[37:]) == Counter(small_set.keys)
    assert keys[:37] != keys[37:]


@pytest.mark.parametrize(("workers", "stop_after"), [(0, 1), (3, 2), (3, 5)])
def test_resume_yields_exactly_the_remaining_examples(small_set, processors, workers: int, stop_after: int) -> None:
    seen, rest = [], []
    for rank in range(2):
        config = LoaderConfig(small_set.pattern, batch_size=2, num_workers=workers, shuffle_buffer=6, seed=3,
                              epochs=1, drop_last=False)
        loader = make_loader(config, processors, rank, 2)
        iterator = iter(loader)
        seen += keys_of([next(iterator) for _ in range(stop_after)])
        state = json.loads(json.dumps(loader.state_dict()))  # must survive JSON
        resumed = make_loader(config, processors, rank, 2)
        resumed.load_state_dict(state)
        rest += keys_of(list(resumed))
    assert not set(seen) & set(rest)
    assert Counter(seen + rest) == Counter(small_set.keys)


def test_resume_of_an_endless_stream_continues_the_same_sequence(small_set, processors) -> None:
    config = LoaderConfig(small_set.pattern, batch_size=3, num_workers=2, shuffle_buffer=5, seed=7, epochs=None)
    reference = make_loader(config, processors)
    iterator = iter(reference)
    expected = [next(iterator)["key"] for _ in range(30)]  # 90 examples: crosses two epoch boundaries
    first = make_loader(config, processors)
    iterator = iter(first)
    got = [next(iterator)["key"] for _ in range(14)]  # a multiple of the workers keeps the round-robin phase
    resumed = make_loader(config, processors)
    resumed.load_state_dict(first.state_dict())
    iterator = iter(resumed)
    got += [next(iterator)["key"] for _ in range(16)]
    assert got == expected
    assert resumed.state_dict()["epoch"] >= 1


def test_next_iter_continues_and_a_finished_pass_restarts(small_set, processors) -> None:
    config = LoaderConfig(small_set.pattern, batch_size=5, num_workers=0, shuffle_buffer=0, epochs=1,
                          drop_last=False)
    loader = make_loader(config, processors)
    for _ in loader:
        break  # leave after one batch: the next __iter__ goes on from there
    assert len(keys_of(list(loader))) == 37 - 5
    assert len(keys_of(list(loader))) == 37  # the pass had finished: a new one starts


def test_fsspec_urls_and_brace_patterns(small_set, processors, tmp_path: Path) -> None:
    import fsspec

    memory = fsspec.filesystem("memory")
    for path in small_set.shards:
        memory.pipe(f"/omnibind-test/{path.name}", path.read_bytes())
    url = "memory://omnibind-test/shard-{000000..000007}.tar"
    assert Counter(one_pass(url, processors, world_size=1, workers=2)) == Counter(small_set.keys)
    file_urls = [f"file://{p}" for p in small_set.shards]
    assert Counter(one_pass(file_urls, processors, world_size=2, workers=0)) == Counter(small_set.keys)
    folder = str(small_set.shards[0].parent)  # a folder of shards
    assert Counter(one_pass(folder, processors, world_size=1, workers=0)) == Counter(small_set.keys)


@pytest.mark.parametrize("shards", ["", [], "nowhere/shard-{000..003}.tar"])
def test_empty_or_missing_shard_list_is_a_clear_error(shards, processors, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"shard|names no shards"):
        make_loader(LoaderConfig(shards, batch_size=2), processors)


def test_empty_folder_and_bad_settings_are_errors(processors, tmp_path: Path, small_set) -> None:
    with pytest.raises(InputError, match=r"folder holds no \.tar shards"):
        make_loader(LoaderConfig(str(tmp_path), batch_size=2), processors)
    with pytest.raises(InputError, match="batch_size"):
        make_loader(LoaderConfig(small_set.pattern, batch_size=0), processors)
    with pytest.raises(InputError, match="rank"):
        make_loader(LoaderConfig(small_set.pattern, batch_size=2), processors, rank=2, world_size=2)
    with pytest.raises(InputError, match="unknown modality"):
        make_loader(LoaderConfig(small_set.pattern, batch_size=2), {"video": object()})


def test_state_from_another_layout_is_refused(small_set, processors) -> None:
    config = LoaderConfig(small_set.pattern, batch_size=2, num_workers=0)
    state = make_loader(config, processors, 0, 2).state_dict()
    with pytest.raises(InputError, match="world_size"):
        make_loader(config, processors, 0, 1).load_state_dict(state)
    with pytest.raises(InputError, match="version"):
        make_loader(config, processors, 0, 2).load_state_dict({"version": 99})


def test_in_process_loading_gives_the_caller_its_threads_back(small_set, processors) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        config = LoaderConfig(small_set.pattern, batch_size=4, num_workers=0, epochs=1)
        for _ in make_loader(config, processors):
            assert torch.get_num_threads() == 2  # decoding ran with one thread; the trainer keeps its own
    finally:
        torch.set_num_threads(before)


def test_specs_from_tower_configs_match_the_builtin_processors(spiece_model: Path) -> None:
    model = tiny_model(spiece_model)
    assert input_specs(model.config.towers) == processor_specs(model.processors)
