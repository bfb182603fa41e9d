"""A fourth modality defined only in tests/toy_modality.py (depth maps as .npy files) is indexed, queried,
filtered, uploaded, previewed and listed by the search package with no edit in src/: everything it knows about
modalities comes from the registry."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from search_media import picture
from typer.testing import CliRunner

import omnibind
import omnibind.modalities as registry
from helpers import TINY_TOWER
from omnibind.search import Searcher, SearchIndex, update_index
from omnibind.search.service import create_app

MAPS = 4


@dataclass(frozen=True)
class DepthIndex:
    """An index of depth maps and one picture, built with an image–text–depth model."""

    index: Path
    media: Path
    model: Path
    report: object


@pytest.fixture(scope="module")
def toy() -> Iterator[object]:
    """The depth modality, registered for this module and unregistered after it unless it already was."""
    registered = "depth" in registry.names()
    import toy_modality

    registry.register(toy_modality.DEPTH)  # the same class again is allowed
    yield toy_modality
    if not registered:
        registry.unregister("depth")


@pytest.fixture(scope="module")
def depth_index(toy, tmp_path_factory: pytest.TempPathFactory, spiece_model: Path) -> DepthIndex:
    import torch

    from omnibind.preprocess.text import Tokenizer

    root = tmp_path_factory.mktemp("depth")
    torch.manual_seed(0)
    model = omnibind.create(
        "Ti/16", modalities=("image", "text", "depth"), tokenizer=spiece_model, embed_dim=32,
        image=dict(TINY_TOWER, image_size=32, patch_size=8),
        text=dict(TINY_TOWER, vocab_size=Tokenizer(spiece_model).vocab_size, max_len=16),
        depth=dict(TINY_TOWER, size=16, patch_size=4),
    ).eval()
    checkpoint = omnibind.save(model, root / "model")
    media = root / "media"
    media.mkdir()
    for i in range(MAPS):
        (media / f"scan{i}.npy").write_bytes(toy.npy_bytes(toy.depth_map(label=i, seed=i)))
    picture(0).save(media / "picture.png")
    report = update_index(root / "index", media, omnibind.load(checkpoint), checkpoint)
    return DepthIndex(root / "index", media, checkpoint, report)


@pytest.fixture(scope="module")
def searcher(depth_index: DepthIndex) -> Searcher:
    return Searcher(SearchIndex(depth_index.index), omnibind.load(depth_index.model))


def test_depth_maps_are_indexed_with_their_metadata(depth_index: DepthIndex, searcher: Searcher) -> None:
    assert depth_index.report.totals == {"depth": MAPS, "image": 1} and depth_index.report.failed == []
    records = searcher.index.store.items(range(1, 10)).values()
    depth = [r for r in records if r.modality == "depth"]
    assert len(depth) == MAPS and all(r.meta == {"height": 24, "width": 24} for r in depth)
    assert all(r.to_dict()["width"] == 24 for r in depth)
    assert searcher.query_modalities == ("text", "image", "depth") and searcher.item_modalities == ("image", "depth")


@pytest.mark.parametrize("as_bytes", [False, True])
def test_a_depth_query_finds_the_same_map(depth_index: DepthIndex, searcher: Searcher, as_bytes: bool) -> None:
    path = depth_index.media / "scan2.npy"
    hits = searcher.search("depth", path.read_bytes() if as_bytes else path, k=3)
    assert Path(hits[0].item.path).name == "scan2.npy" and hits[0].score == pytest.approx(1.0, abs=1e-5)


def test_a_text_query_filtered_to_depth(searcher: Searcher) -> None:
    hits = searcher.search("text", "a depth map of a slope", k=10, only=["depth"])
    assert len(hits) == MAPS and {h.item.modality for h in hits} == {"depth"}


@pytest.fixture(scope="module")
def client(searcher: Searcher) -> Iterator[TestClient]:
    with TestClient(create_app(searcher, max_upload_bytes=200_000), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize("filename", ["scan1.npy", "blob"])  # typed by its extension, or sniffed
def test_the_service_takes_an_uploaded_depth_map(client: TestClient, depth_index: DepthIndex, filename: str) -> None:
    content = (depth_index.media / "scan1.npy").read_bytes()
    response = client.post("/search", files={"file": (filename, content, "application/octet-stream")},
                           data={"k": "3", "modality": "depth"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["query"] == {"modality": "depth", "text": None, "filename": filename, "filter": "depth"}
    top = body["results"][0]
    assert top["item"]["name"] == "scan1.npy" and top["score"] == pytest.approx(1.0, abs=1e-4)
    assert (top["item"]["width"], top["item"]["height"]) == (24, 24)


def test_the_service_previews_lists_and_documents_depth(client: TestClient) -> None:
    body = client.post("/search", json={"text": "a slope", "k": 2, "modality": "depth"}).json()
    item = body["results"][0]["item"]
    assert item["modality"] == "depth" and client.get(f"/items/{item['id']}").json()["width"] == 24
    thumb = client.get(item["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(thumb.content)).size == (24, 24)
    health = client.get("/health").json()
    assert health["modalities"] == {"depth": MAPS, "image": 1} and "depth" in health["search"]
    assert health["query_modalities"] == ["text", "image", "depth"] and health["item_modalities"] == ["image", "depth"]
    spec = client.get("/openapi.json").json()
    multipart = spec["paths"]["/search"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert "depth" in multipart["properties"]["modality"]["enum"]
    text_query = spec["paths"]["/search"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "depth" in json.dumps(text_query)
    bad = client.post("/search", files={"file": ("x.npy", b"\x93NUMPY broken", "application/octet-stream")})
    assert bad.status_code == 422 and "cannot decode depth map" in bad.json()["detail"]


def test_the_cli_takes_a_depth_query(depth_index: DepthIndex) -> None:
    from omnibind.cli import app

    index, scan = str(depth_index.index), str(depth_index.media / "scan3.npy")
    result = CliRunner().invoke(app, ["search", index, "--file", scan, "--json", "-k", "2", "--modality", "depth"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["query"]["modality"] == "depth" and payload["results"][0]["path"].endswith("scan3.npy")
    for args, message in [([], "got 0 queries (expected exactly one of TEXT, --image FILE, --file FILE)"),
                          (["--file", "clip.mp4"], "--file: no registered modality reads .mp4")]:
        wrong = CliRunner().invoke(app, ["search", index, *args])
        assert wrong.exit_code == 2 and message in " ".join(wrong.output.split())


def test_plugin_metadata_is_stored_as_plain_json() -> None:
    import numpy as np

    from omnibind.errors import InputError
    from omnibind.search.store import plain_meta

    assert plain_meta({"height": np.int64(3), "scale": np.float32(0.5)}, "a.npy", "depth") == {"height": 3,
                                                                                             "scale": 0.5}
    with pytest.raises(InputError, match=r"a\.npy: depth metadata .* cannot be stored"):
        plain_meta([3, 4], "a.npy", "depth")
