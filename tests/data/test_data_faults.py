"""Fault injection: corrupt images, truncated audio, missing keys and files, bad manifest lines and
truncated shards are skipped and counted by reason; the run goes on and the good examples all arrive."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

from omnibind.data import skips
from omnibind.data.loader import LoaderConfig, make_loader
from omnibind.data.tario import ShardWriter

pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create")


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (12, 10), (seed * 20 % 256, 40, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


def audio(fmt: str, seconds: float = 0.3) -> bytes:
    buffer = io.BytesIO()
    t = np.arange(round(8000 * seconds)) / 8000
    soundfile.write(buffer, (0.4 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 8000, format=fmt)
    return buffer.getvalue()


def good(i: int) -> dict[str, bytes]:
    return {"png": png(i), "txt": f"a good example number {i}".encode(), "wav": audio("WAV", 0.1)}


def load_all(shards, processors, workers: int = 0, world_size: int = 1):
    keys, stats = [], None
    for rank in range(world_size):
        config = LoaderConfig(shards, batch_size=3, num_workers=workers, epochs=1, drop_last=False, shuffle_buffer=4)
        loader = make_loader(config, processors, rank, world_size)
        keys += [k for batch in loader for k in batch["key"]]
        stats = loader.stats if stats is None else stats.merged(loader.stats)
    return keys, stats


BAD = {
    "corrupt-image": ({"png": png(1)[:40] + b"\x00garbage" * 20, "txt": b"a broken picture"},
                      skips.IMAGE_UNDECODABLE),
    "random-image-bytes": ({"jpg": bytes(range(256)) * 4}, skips.IMAGE_UNDECODABLE),
    "truncated-wav": ({"wav": audio("WAV")[:1500], "txt": b"a cut off sound"}, skips.AUDIO_TRUNCATED),
    "truncated-flac": ({"flac": audio("FLAC")[:700]}, skips.AUDIO_UNDECODABLE),
    "json-only": ({"json": b'{"note": "no media, no text"}'}, skips.NO_MODALITY),
    "bad-utf8-text": ({"txt": b"\xff\xfe not text", "png": png(2)}, skips.TEXT_NOT_UTF8),
}


@pytest.fixture
def faulty_shards(tmp_path: Path) -> tuple[str, set[str]]:
    """Three shards: good samples with every kind of bad sample mixed in."""
    with ShardWriter(tmp_path, "faulty", max_count=6) as writer:
        for i in range(10):
            writer.write(f"good{i:02d}", good(i))
            if i < len(BAD):
                name = list(BAD)[i]
                writer.write(name, BAD[name][0])
    return str(tmp_path / "faulty-{000000..000002}.tar"), {f"good{i:02d}" for i in range(10)}


@pytest.mark.parametrize(("workers", "world_size"), [(0, 1), (2, 2)])
def test_bad_samples_are_skipped_and_counted(faulty_shards, processors, workers: int, world_size: int) -> None:
    shards, expected = faulty_shards
    keys, stats = load_all(shards, processors, workers, world_size)
    assert Counter(keys) == Counter(expected)
    assert stats.counts == dict(Counter(reason for _, reason in BAD.values()))
    assert any("corrupt-image.png" in e for e in stats.examples[skips.IMAGE_UNDECODABLE])
    assert "declares" in stats.examples[skips.AUDIO_TRUNCATED][0]
    assert "no usable modality" in str(stats)


def test_truncated_tar_keeps_the_samples_before_the_cut(tmp_path: Path, processors) -> None:
    with ShardWriter(tmp_path, "s", max_count=4) as writer:
        for i in range(8):
            writer.write(f"good{i:02d}", good(i))
    first = tmp_path / "s-000000.tar"
    data = first.read_bytes()
    for cut in (len(data) // 2, 0):
        first.write_bytes(data[:cut])
        keys, stats = load_all(str(tmp_path / "s-{000000..000001}.tar"), processors)
        reason = skips.SHARD_TRUNCATED if cut else skips.SHARD_UNREADABLE  # an empty file is not a tar at all
        assert stats.counts == {reason: 1}
        assert {f"good{i:02d}" for i in range(4, 8)} <= set(keys)  # the second shard is untouched
        kept = {f"good{i:02d}" for i in range(4)} & set(keys)
        assert (1 <= len(kept) < 4) if cut else not kept  # the half shard keeps the samples before the cut


@pytest.mark.parametrize("cut_blocks", [0, 1])
def test_tar_cut_at_a_member_boundary_is_detected(tmp_path: Path, processors, cut_blocks: int) -> None:
    """tarfile ends silently when the file stops at (or inside) a header: the missing end block tells."""
    import tarfile

    with ShardWriter(tmp_path, "s", max_count=10) as writer:
        for i in range(3):
            writer.write(f"good{i:02d}", {"txt": f"text {i}".encode()})
    path = tmp_path / "s-000000.tar"
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    boundary = members[2].offset + 100 * cut_blocks  # start of the third sample's header (plus a partial)
    path.write_bytes(path.read_bytes()[:boundary])
    keys, stats = load_all(str(path), {"text": processors["text"]})
    assert stats.counts == {skips.SHARD_TRUNCATED: 1}
    assert sorted(keys) == ["good00"]  # good01 may be incomplete at the cut, so it is dropped too


def test_manifest_missing_files_and_bad_lines(tmp_path: Path, processors) -> None:
    Image.new("RGB", (8, 8), "red").save(tmp_path / "ok.png")
    lines = [
        {"image": "ok.png", "text": "a red square"},
        {"image": "gone.png", "text": "a missing picture"},
        {"audio": "gone.flac"},
        {"image": "ok.svg"},
        {"text": ""},
    ]
    text = "\n".join(json.dumps(e) for e in lines) + "\n{not json\n[1, 2]\n\n"
    (tmp_path / "m.jsonl").write_text(text)
    keys, stats = load_all(str(tmp_path / "m.jsonl"), processors, workers=2)
    assert keys == ["m-000001"]
    assert stats.counts == {skips.FILE_MISSING: 2, skips.MANIFEST_LINE_INVALID: 3, skips.NO_MODALITY: 1}
    assert any("gone.png" in e for e in stats.examples[skips.FILE_MISSING])


def test_counts_survive_resume_without_double_counting(faulty_shards, processors) -> None:
    shards, expected = faulty_shards
    config = LoaderConfig(shards, batch_size=2, num_workers=2, epochs=1, drop_last=False, shuffle_buffer=3)
    whole = make_loader(config, processors)
    list(whole)
    first = make_loader(config, processors)
    iterator = iter(first)
    seen = [k for _ in range(2) for k in next(iterator)["key"]]
    resumed = make_loader(config, processors)
    resumed.load_state_dict(first.state_dict())
    rest = [k for batch in resumed for k in batch["key"]]
    assert Counter(seen + rest) == Counter(expected)
    assert resumed.stats.counts == whole.stats.counts == dict(Counter(r for _, r in BAD.values()))


def test_an_endless_stream_of_only_bad_samples_ends_with_a_clear_error(tmp_path: Path, processors) -> None:
    from omnibind.errors import InputError

    with ShardWriter(tmp_path, "bad") as writer:
        writer.write("only", BAD["corrupt-image"][0])
    loader = make_loader(LoaderConfig(str(tmp_path), batch_size=2, num_workers=0), processors)
    with pytest.raises(InputError, match="no decodable examples"):
        next(iter(loader))
    assert loader.stats.counts == {skips.IMAGE_UNDECODABLE: 1}
