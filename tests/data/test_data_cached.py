"""The in-memory decoded set: same tensors as the streaming loader, exact epochs, rank slices, resume."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from omnibind.data.cached import CachedBatches, DecodedSet
from omnibind.data.loader import LoaderConfig, make_loader
from omnibind.errors import InputError


@pytest.fixture(scope="module")
def decoded(small_set, processors) -> DecodedSet:
    return DecodedSet.decode(small_set.pattern, processors, num_workers=2)


def test_decoded_set_holds_what_the_loader_yields(decoded: DecodedSet, small_set, processors) -> None:
    loader = make_loader(LoaderConfig(small_set.pattern, batch_size=8, num_workers=0, shuffle_buffer=0,
                                      drop_last=False, epochs=1), processors)
    streamed = {}
    for batch in loader:
        for i, key in enumerate(batch["key"]):
            streamed[key] = {k: v[i] for k, v in batch.items() if k != "key"}
    assert sorted(decoded.keys) == decoded.keys and set(decoded.keys) == small_set.keys
    gathered = decoded.gather(torch.arange(len(decoded)))
    for i, key in enumerate(gathered["key"]):
        for m in ("image", "text", "audio"):
            assert bool(gathered[f"{m}_mask"][i]) == (m in small_set.modalities[key])
            assert torch.equal(gathered[f"{m}_mask"][i], streamed[key][f"{m}_mask"])
            assert torch.equal(gathered[m][i], streamed[key][m])  # zeros where absent, as collated


def test_every_epoch_holds_every_example_once_across_batches(decoded: DecodedSet) -> None:
    n, batch = len(decoded), 8  # 37 examples: batches cross epoch ends
    stream = CachedBatches(decoded, batch, seed=3)
    seen = [k for _, b in zip(range(n * 3 // batch + 1), stream, strict=False) for k in b["key"]]
    for epoch in range(3):
        assert Counter(seen[epoch * n:(epoch + 1) * n]) == Counter(decoded.keys)
    assert seen[:n] != seen[n:2 * n]  # each epoch has its own order


def test_ranks_slice_the_same_global_batches(decoded: DecodedSet) -> None:
    whole = CachedBatches(decoded, 12, seed=1)
    halves = [CachedBatches(decoded, 12, seed=1, rank=r, world_size=2) for r in range(2)]
    for k in range(6):
        assert whole.batch(k)["key"] == halves[0].batch(k)["key"] + halves[1].batch(k)["key"]
    with pytest.raises(ValueError, match="divisible"):
        CachedBatches(decoded, 12, world_size=5)


def test_resume_continues_after_the_last_batch(decoded: DecodedSet) -> None:
    first = CachedBatches(decoded, 8, seed=2)
    stream = iter(first)
    for _ in range(5):
        next(stream)
    state = first.state_dict()
    expected = [next(stream)["key"] for _ in range(4)]
    resumed = CachedBatches(decoded, 8, seed=2)
    resumed.load_state_dict(state)
    assert [b["key"] for _, b in zip(range(4), resumed, strict=False)] == expected
    with pytest.raises(InputError, match="seed"):
        CachedBatches(decoded, 8, seed=9).load_state_dict(state)


def test_nothing_decodable_is_a_clear_error(tmp_path, processors) -> None:
    (tmp_path / "empty.jsonl").write_text('{"key": "a", "meta": {}}\n')
    with pytest.raises(InputError, match="no decodable examples"):
        DecodedSet.decode(str(tmp_path / "empty.jsonl"), processors, num_workers=0)


def test_select_keeps_matching_keys_with_their_tensors(decoded: DecodedSet) -> None:
    keep = decoded.keys[::3]
    part = decoded.select(keys=keep, skip=[keep[0]])
    assert part.keys == keep[1:]
    whole = decoded.gather(torch.tensor([decoded.keys.index(k) for k in part.keys]))
    mine = part.gather(torch.arange(len(part)))
    for name, value in whole.items():
        assert value == mine[name] if name == "key" else torch.equal(value, mine[name])
    assert decoded.select() is decoded


def test_select_that_keeps_nothing_names_the_field(decoded: DecodedSet) -> None:
    with pytest.raises(InputError, match=r"data\.keys"):
        decoded.select(keys=["no-such-*"])


def test_key_filters_need_the_cached_kind() -> None:
    from omnibind.train.config import DataSection, TrainConfig

    with pytest.raises(InputError, match=r"data\.keys"):
        TrainConfig(data=DataSection(kind="shards", shards="x.tar", keys=["note-*"]))
