"""The HTTP service in-process: search by text and by uploaded picture or sound, items, previews, media, the
web page, and hand-written bad inputs that must each get a 4xx with a one-line reason (never a 5xx)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from search_media import picture, png_bytes, wav_bytes, write_media

import omnibind
from omnibind.search import Searcher, SearchIndex, update_index
from omnibind.search.service import create_app

LIMIT = 200_000


def make_client(index: Path, checkpoint: Path, max_upload_bytes: int = LIMIT) -> TestClient:
    searcher = Searcher(SearchIndex(index), omnibind.load(checkpoint))
    return TestClient(create_app(searcher, max_upload_bytes=max_upload_bytes), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(built_index) -> Iterator[TestClient]:
    with make_client(built_index.index, built_index.model) as test_client:
        yield test_client


def first_id(client: TestClient, modality: str) -> int:
    response = client.post("/search", json={"text": "anything", "k": 1, "modality": modality})
    return response.json()["results"][0]["item"]["id"]


def test_health_and_openapi(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["items"] == 9 and health["modalities"] == {"image": 6, "audio": 3}
    assert health["query_modalities"] == ["text", "image", "audio"] and health["embed_dim"] == 32
    assert health["search"]["image"]["kind"] == "exact" and health["max_upload_bytes"] == LIMIT
    spec = client.get("/openapi.json").json()
    assert {"/search", "/items/{item_id}", "/items/{item_id}/thumbnail", "/items/{item_id}/media", "/health"} <= set(
        spec["paths"])
    assert set(spec["paths"]["/search"]["post"]["requestBody"]["content"]) == {"application/json",
                                                                               "multipart/form-data"}


def test_web_page_and_static_files(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="results"' in page.text and 'id="dropzone"' in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200


def test_text_search_ranks_filters_and_limits(client: TestClient) -> None:
    response = client.post("/search", json={"text": "a red circle", "k": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["query"] == {"modality": "text", "text": "a red circle", "filename": None, "filter": None}
    scores = [r["score"] for r in body["results"]]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True) and body["took_ms"] >= 0
    item = body["results"][0]["item"]
    assert item["thumbnail_url"] == f"/items/{item['id']}/thumbnail" and item["name"] == Path(item["path"]).name
    sounds = client.post("/search", json={"text": "a low hum", "k": 20, "modality": "audio"}).json()["results"]
    assert len(sounds) == 3 and {r["item"]["modality"] for r in sounds} == {"audio"}


@pytest.mark.parametrize(("name", "data", "kind"), [
    ("picture002.png", None, "image/png"),
    ("tone000.wav", None, "audio/wav"),
    ("picture004.png", None, "application/octet-stream"),  # typed by its name and header
])
def test_upload_finds_the_same_file(client: TestClient, built_index, name: str, data: bytes | None,
                                    kind: str) -> None:
    content = (built_index.media / name).read_bytes()
    response = client.post("/search", files={"file": (name, content, kind)}, data={"k": "3"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["query"]["filename"] == name and len(body["results"]) == 3
    top = body["results"][0]
    assert top["item"]["name"] == name and top["score"] == pytest.approx(1.0, abs=1e-4)


def test_upload_with_modality_filter(client: TestClient) -> None:
    response = client.post("/search", files={"file": ("x.png", png_bytes(1), "image/png")},
                           data={"modality": "audio", "k": "10"})
    assert response.status_code == 200
    assert {r["item"]["modality"] for r in response.json()["results"]} == {"audio"}


def test_item_thumbnail_and_media(client: TestClient, built_index) -> None:
    image_id, audio_id = first_id(client, "image"), first_id(client, "audio")
    item = client.get(f"/items/{image_id}").json()
    assert item["id"] == image_id and item["modality"] == "image" and (item["width"], item["height"]) == (48, 40)
    thumb = client.get(f"/items/{image_id}/thumbnail")
    assert thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size == (48, 40)
    wave = client.get(f"/items/{audio_id}/thumbnail")
    assert wave.headers["content-type"] == "image/png" and Image.open(io.BytesIO(wave.content)).size == (256, 128)
    audio_item = client.get(f"/items/{audio_id}").json()
    media = client.get(f"/items/{audio_id}/media")
    assert not Path(audio_item["path"]).is_absolute()  # paths relative to the indexed folder, no server paths
    assert media.status_code == 200 and media.content == (built_index.media / audio_item["path"]).read_bytes()
    assert media.headers["content-type"].startswith("audio/")
    partial = client.get(f"/items/{audio_id}/media", headers={"range": "bytes=0-99"})
    assert partial.status_code == 206 and len(partial.content) == 100


BAD_REQUESTS = [
    # (description, request kwargs, status, words in the detail)
    ("empty body", dict(content=b"", headers={"content-type": "application/json"}), 400, "request body: empty"),
    ("not JSON", dict(content=b"{text:", headers={"content-type": "application/json"}), 422, "Invalid JSON"),
    ("no text", dict(json={"k": 3}), 422, "text: Field required"),
    ("empty text", dict(json={"text": ""}), 422, "text: String should have at least 1 character"),
    ("blank text", dict(json={"text": "   "}), 400, "text: empty text"),
    ("unknown field", dict(json={"text": "a", "colour": "red"}), 422, "colour: Extra inputs are not permitted"),
    ("k too big", dict(json={"text": "a", "k": 1000}), 422, "k: Input should be less than or equal to 100"),
    ("bad filter", dict(json={"text": "a", "modality": "video"}), 422, "modality: Input should be"),
    ("JSON list", dict(json=["a"]), 422, "body: Input should be an object"),
    ("text/plain body", dict(content=b"a dog", headers={"content-type": "text/plain"}), 415,
     "content type 'text/plain'"),
    ("no content type", dict(content=b"a dog"), 415, "content type 'missing'"),
    ("multipart without file", dict(data={"k": "3"}, files={"other": ("a.txt", b"x", "text/plain")}), 400,
     "file: missing"),
    ("unknown form field", dict(data={"colour": "red"}, files={"file": ("a.png", png_bytes(), "image/png")}), 400,
     "colour: unknown form field"),
    ("multipart only k", dict(files={"k": (None, "3")}), 400, "file: missing"),
    ("wrong file type", dict(files={"file": ("a.txt", b"hello", "text/plain")}), 415, "content type 'text/plain'"),
    ("corrupt image", dict(files={"file": ("a.png", b"\x89PNG\r\n\x1a\nbroken", "image/png")}), 422,
     "file 'a.png': cannot decode image"),  # the upload is named by its file name
    ("corrupt sound", dict(files={"file": ("a.wav", b"RIFF....WAVEfmt broken", "audio/wav")}), 422,
     "file 'a.wav': cannot decode audio"),
    ("sound sent as image", dict(files={"file": ("a.png", wav_bytes(), "image/png")}), 422, "cannot decode image"),
    ("unrecognised bytes", dict(files={"file": ("blob", b"\x00" * 64, "application/octet-stream")}), 415,
     "neither a picture nor a sound"),
    ("empty file", dict(files={"file": ("a.png", b"", "image/png")}), 422, "empty upload"),
    ("bad k in form", dict(files={"file": ("a.png", png_bytes(), "image/png")}, data={"k": "ten"}), 400,
     "k: got 'ten'"),
    ("bad filter in form", dict(files={"file": ("a.png", png_bytes(), "image/png")}, data={"modality": "x"}), 400,
     "modality: got 'x'"),
    ("repeated field", dict(files=[("file", ("a.png", png_bytes(), "image/png")), ("k", (None, "3")),
                                   ("k", (None, "4"))]), 400, "k: given 2 times"),
    ("huge upload", dict(files={"file": ("a.png", b"\x89PNG" + b"\x00" * (LIMIT + 70_000), "image/png")}), 413,
     "over the limit"),
]


@pytest.mark.parametrize(("description", "kwargs", "status", "words"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_search_requests_get_a_clear_4xx(client: TestClient, description: str, kwargs: dict, status: int,
                                             words: str) -> None:
    response = client.post("/search", **kwargs)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


def test_declared_oversized_body_is_refused_unread(client: TestClient) -> None:
    response = client.post("/search", content=b"{}", headers={"content-type": "application/json",
                                                              "content-length": str(10 * LIMIT)})
    assert response.status_code == 413 and "over the limit" in response.json()["detail"]


def test_image_over_the_pixel_limit(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("omnibind.preprocess.image.MAX_PIXELS", 1000)  # the image modality checks uploads
    response = client.post("/search", files={"file": ("a.png", png_bytes(), "image/png")})
    assert response.status_code == 413 and "48×40 pixels is too large" in response.json()["detail"]


@pytest.mark.parametrize(("path", "status"), [
    ("/items/999999", 404),
    ("/items/0", 422),
    ("/items/abc", 422),
    (f"/items/{2**70}", 422),
    ("/items/..%2F..%2Fetc%2Fpasswd", 404),
    ("/items/..%2F..%2Fetc%2Fpasswd/media", 404),
    ("/items/%2E%2E/media", 422),
    ("/items/1/thumbnail/..%2F..%2F..%2Fetc%2Fpasswd", 404),
    ("/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd", 404),
    ("/items/999999/media", 404),
    ("/items/999999/thumbnail", 404),
])
def test_bad_item_ids_and_traversal_get_4xx(client: TestClient, path: str, status: int) -> None:
    response = client.get(path)
    assert response.status_code == status, response.text
    assert "root:" not in response.text and isinstance(response.json()["detail"], str)


def test_wrong_method(client: TestClient) -> None:
    assert client.get("/search").status_code == 405


def test_files_changed_or_removed_since_indexing_are_not_served(media_dir: Path, tmp_path: Path,
                                                               search_checkpoint: Path) -> None:
    update_index(tmp_path / "index", media_dir, omnibind.load(search_checkpoint), search_checkpoint)
    with make_client(tmp_path / "index", search_checkpoint) as test_client:
        ids = {Path(r["item"]["path"]).name: r["item"]["id"] for r in
               test_client.post("/search", json={"text": "x", "k": 20}).json()["results"]}
        (media_dir / "tone000.wav").unlink()
        picture(7).save(media_dir / "picture000.png")
        for name in ("tone000.wav", "picture000.png"):
            for part in ("media", "thumbnail"):
                response = test_client.get(f"/items/{ids[name]}/{part}")
                assert response.status_code == 410 and "since indexing" in response.json()["detail"]


def test_image_text_model_refuses_audio_queries(tmp_path: Path, image_text_checkpoint: Path) -> None:
    media = tmp_path / "media"
    write_media(media)
    update_index(tmp_path / "index", media, omnibind.load(image_text_checkpoint), image_text_checkpoint)
    with make_client(tmp_path / "index", image_text_checkpoint) as test_client:
        assert test_client.get("/health").json()["query_modalities"] == ["text", "image"]
        response = test_client.post("/search", files={"file": ("t.wav", wav_bytes(), "audio/wav")})
        assert response.status_code == 400
        assert "cannot embed audio queries: it has no audio tower" in response.json()["detail"]
        assert test_client.post("/search", json={"text": "a red circle"}).status_code == 200
