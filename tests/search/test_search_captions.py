"""Captions in the search service: an index built with a mixed checkpoint (towers, t' and b, and a decoder) is
indexed with its embedding part, and `omnibind serve` also holds its Generator: POST /caption captions an uploaded
picture or sound and GET /items/{id}/caption an indexed item, as the generator itself does; bad settings get a
4xx, a full caption queue 503 with Retry-After, a text query never waits for a caption, the token and the Host
allow-list apply; without a decoder both answer 409 and /health says captioning is off."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from search_media import picture, png_bytes, wav_bytes, write_media
from typer.testing import CliRunner

import omnibind
import omnibind.modalities as registry
from omnibind.cli import app as cli_app
from omnibind.generation import Generator
from omnibind.search import Searcher, SearchIndex, update_index
from omnibind.search.captions import DEFAULT_PROMPT, DEFAULT_TOKENS, MAX_PROMPT
from omnibind.search.security import Guard
from omnibind.search.service import create_app

IMAGE, AUDIO, TEXT = registry.IMAGE.name, registry.AUDIO.name, registry.TEXT.name
LIMIT = 200_000
TOKEN = "a-test-token-of-enough-length"


def caption_app(index: Path, model: Path, **kwargs) -> tuple[object, Generator]:
    searcher = Searcher(SearchIndex(index), omnibind.load(model, kind="embedding"), model)
    generator = omnibind.load(model, kind="generator")
    return create_app(searcher, max_upload_bytes=LIMIT, generator=generator, **kwargs), generator


@pytest.fixture(scope="module")
def served(caption_index) -> Iterator[tuple[TestClient, Generator]]:
    app, generator = caption_app(caption_index.index, caption_index.model)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, generator


def expected(generator: Generator, modality: str, data: bytes | Path, prompt: str = DEFAULT_PROMPT,
             max_tokens: int = DEFAULT_TOKENS, beams: int = 1) -> str:
    tensor = generator.processors[modality].one(data)
    return generator.generate(prompt, max_new_tokens=max_tokens, beams=beams, **{modality: tensor})[0]


def ids_by_name(client: TestClient) -> dict[str, int]:
    found = client.post("/search", json={"text": "anything", "k": 20}).json()["results"]
    return {Path(r["item"]["path"]).name: r["item"]["id"] for r in found}


def test_health_and_the_spec_say_captioning_is_on(served) -> None:
    client, _ = served
    health = client.get("/health").json()
    assert health["captioning"] is True and health["caption_modalities"] == [IMAGE, AUDIO]
    assert health["items"] == 9
    spec = client.get("/openapi.json").json()
    assert {"/caption", "/items/{item_id}/caption"} <= set(spec["paths"])
    form = spec["paths"]["/caption"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(form["properties"]) == {"file", "prompt", "max_tokens", "beams"} and form["required"] == ["file"]
    assert {"409", "503"} <= set(spec["paths"]["/items/{item_id}/caption"]["get"]["responses"])


@pytest.mark.parametrize(("modality", "name", "data", "kind"), [
    (IMAGE, "drawing.png", png_bytes(3), "image/png"),
    (AUDIO, "tone.wav", wav_bytes(660.0), "audio/wav"),
    (IMAGE, "untyped", png_bytes(4), "application/octet-stream"),
], ids=["picture", "sound", "untyped"])
def test_an_upload_is_captioned_as_the_generator_does(served, modality: str, name: str, data: bytes,
                                                      kind: str) -> None:
    client, generator = served
    response = client.post("/caption", files={"file": (name, data, kind)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["caption"] == expected(generator, modality, data) and body["prompt"] == DEFAULT_PROMPT
    assert body["modality"] == modality and body["filename"] == name and body["cached"] is False
    assert body["max_tokens"] == DEFAULT_TOKENS and body["beams"] == 1 and "item" not in body
    again = client.post("/caption", files={"file": (name, data, kind)}).json()
    assert again["cached"] is True and again["caption"] == body["caption"]


def test_prompt_tokens_and_beams_reach_the_decoder(served) -> None:
    client, generator = served
    data = png_bytes(5)
    form = {"prompt": "a photo of", "max_tokens": "3", "beams": "2"}
    body = client.post("/caption", files={"file": ("p.png", data, "image/png")}, data=form).json()
    assert body["caption"] == expected(generator, IMAGE, data, "a photo of", 3, 2)
    assert (body["prompt"], body["max_tokens"], body["beams"]) == ("a photo of", 3, 2)


def test_an_indexed_item_is_captioned(served, caption_index) -> None:
    client, generator = served
    ids = ids_by_name(client)
    for name in ("picture000.png", "tone001.flac"):
        path = next(caption_index.media.rglob(name))
        modality = registry.modality_of(path)
        response = client.get(f"/items/{ids[name]}/caption", params={"max_tokens": 5})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["item"] == ids[name] and body["modality"] == modality and "filename" not in body
        assert body["caption"] == expected(generator, modality, path, max_tokens=5)


BAD = [
    ("max_tokens 0", {"data": {"max_tokens": "0"}}, 400, "max_tokens"),
    ("max_tokens 65", {"data": {"max_tokens": "65"}}, 400, "an integer from 1 to 64"),
    ("beams 5", {"data": {"beams": "5"}}, 400, "beams"),
    ("beams not digits", {"data": {"beams": "²"}}, 400, "beams"),
    ("empty prompt", {"data": {"prompt": ""}}, 400, "prompt"),
    ("long prompt", {"data": {"prompt": "x" * (MAX_PROMPT + 1)}}, 400, f"1 to {MAX_PROMPT} characters"),
    ("unknown field", {"data": {"k": "3"}}, 400, "unknown form field"),
    ("not media", {"files": {"file": ("a.txt", b"hello", "text/plain")}}, 415, "not accepted"),
    ("undecodable", {"files": {"file": ("a.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "image/png")}}, 422, "a.png"),
    ("json", {"json": {"text": "a"}}, 415, "multipart/form-data"),
    ("no file", {"files": {"other": ("x", b"x", "text/plain")}}, 400, "missing"),
]


@pytest.mark.parametrize(("description", "kwargs", "status", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_caption_requests_get_a_clear_4xx(served, description: str, kwargs: dict, status: int,
                                              words: str) -> None:
    client, _ = served
    request = {"files": {"file": ("p.png", png_bytes(1), "image/png")}, **kwargs}
    if "json" in request:
        request.pop("files")
    response = client.post("/caption", **request)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


@pytest.mark.parametrize(("params", "path", "status"), [
    ({"max_tokens": 0}, "/items/1/caption", 422),
    ({"beams": 5}, "/items/1/caption", 422),
    ({"prompt": ""}, "/items/1/caption", 422),
    ({}, "/items/999/caption", 404),
    ({}, "/items/0/caption", 422),
])
def test_bad_item_caption_requests_get_a_4xx(served, params: dict, path: str, status: int) -> None:
    client, _ = served
    response = client.get(path, params=params)
    assert response.status_code == status and response.json()["detail"]


def test_a_changed_file_is_not_captioned(tmp_path: Path, spiece_model: Path, caption_index) -> None:
    media = tmp_path / "media"
    write_media(media)
    update_index(tmp_path / "index", media, omnibind.load(caption_index.model, kind="embedding"), caption_index.model)
    app, _ = caption_app(tmp_path / "index", caption_index.model)
    with TestClient(app, raise_server_exceptions=False) as client:
        ids = ids_by_name(client)
        picture(7).save(media / "picture000.png")
        response = client.get(f"/items/{ids['picture000.png']}/caption")
        assert response.status_code == 410 and "since indexing" in response.json()["detail"]


def test_a_full_caption_queue_answers_503_and_text_never_waits(caption_index) -> None:
    app, generator = caption_app(caption_index.index, caption_index.model)
    release, started = threading.Event(), threading.Event()
    real = generator.generate

    def slow(*args, **kwargs):
        started.set()
        assert release.wait(30)
        return real(*args, **kwargs)

    generator.generate = slow  # type: ignore[method-assign]
    with TestClient(app, raise_server_exceptions=False) as client:
        answers: list = []
        first = threading.Thread(target=lambda: answers.append(client.post(
            "/caption", files={"file": ("a.png", png_bytes(2), "image/png")})))
        first.start()
        assert started.wait(30)
        begin = time.perf_counter()
        assert client.post("/search", json={"text": "a red circle", "k": 3}).status_code == 200
        assert time.perf_counter() - begin < 10  # answered while the caption is being generated
        slots = app.state.captioner._slots
        held = 0
        while slots.acquire(blocking=False):  # the queue fills up
            held += 1
        busy = client.post("/caption", files={"file": ("b.png", png_bytes(3), "image/png")})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert "busy generating other captions" in busy.json()["detail"]
        for _ in range(held):
            slots.release()
        release.set()
        first.join(30)
        assert answers and answers[0].status_code == 200, answers


def test_without_a_decoder_captioning_answers_409(built_index) -> None:
    searcher = Searcher(SearchIndex(built_index.index), omnibind.load(built_index.model))
    with TestClient(create_app(searcher), raise_server_exceptions=False) as client:
        health = client.get("/health").json()
        assert health["captioning"] is False and health["caption_modalities"] == []
        for response in (client.post("/caption", files={"file": ("a.png", png_bytes(1), "image/png")}),
                         client.get("/items/1/caption")):
            assert response.status_code == 409
            assert "this index's model has no decoder" in response.json()["detail"]


def test_token_and_host_apply_to_captions(served, caption_index) -> None:
    app, _ = caption_app(caption_index.index, caption_index.model)
    guarded = Guard(app, token=TOKEN, allowed_hosts=["search.lan"])
    with TestClient(guarded, base_url="http://127.0.0.1") as client:
        upload = {"file": ("a.png", png_bytes(1), "image/png")}
        assert client.post("/caption", files=upload).status_code == 401
        assert client.get("/items/1/caption").status_code == 401
        auth = {"authorization": f"Bearer {TOKEN}"}
        assert client.post("/caption", files=upload, headers=auth).status_code == 200
        assert client.get("/items/1/caption", headers={**auth, "host": "evil.example"}).status_code == 400


def test_index_and_serve_use_both_parts_of_a_mixed_checkpoint(tmp_path: Path, caption_index,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(cli_app, ["index", str(caption_index.media), "-m", str(caption_index.model),
                                          "--index", str(tmp_path / "index"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "9 new" in result.output
    calls: list = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: calls.append(app))
    result = CliRunner().invoke(cli_app, ["serve", str(tmp_path / "index"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    with TestClient(calls[0], base_url="http://127.0.0.1") as client:
        assert client.get("/health").json()["captioning"] is True
        assert client.get("/items/1/caption").status_code == 200
