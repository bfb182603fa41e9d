"""The service against a hostile client: every corpus file uploaded gets 200 or a 4xx with a JSON reason naming
the upload (never a 5xx, a server path or an object repr); form fields, ranges and HEAD on media; links and
swapped files are never served; paths in responses are relative; a full decode pool answers 503; a text query
does not wait for a slow upload; stalled bodies and headers are cut off; the token, the Host allow-list and
CORS; `serve` refuses to expose the index without a token."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from hostile_corpus import WRITERS, write_corpus
from search_live_server import LiveServer
from search_media import png_bytes, write_media
from typer.testing import CliRunner

import omnibind
from omnibind.cli import app as cli_app
from omnibind.search import Searcher, SearchIndex, update_index
from omnibind.search.security import Guard, TimedH11Protocol
from omnibind.search.service import create_app

TOKEN = "s3cret-token-0123456789"


def make_app(index: Path, checkpoint: Path, **options):
    return create_app(Searcher(SearchIndex(index), omnibind.load(checkpoint)), max_upload_bytes=200_000, **options)


@pytest.fixture(scope="module")
def client(built_index):
    with TestClient(make_app(built_index.index, built_index.model), raise_server_exceptions=False) as test_client:
        yield test_client


def media_type(name: str) -> str:
    return "audio/wav" if name.endswith((".wav", ".flac", ".mp3")) else "image/png"


@pytest.mark.parametrize("name", [n for n in WRITERS if not n.startswith(".") and n != "drawing.svg"])
def test_every_corpus_file_uploaded_gets_200_or_a_clear_4xx(client: TestClient, name: str) -> None:
    _, make, _ = WRITERS[name]
    data = make()
    for kind in (media_type(name), "application/octet-stream"):
        response = client.post("/search", files={"file": (name, data, kind)}, data={"k": "3"})
        assert response.status_code < 500, response.text
        assert response.headers["content-type"] == "application/json"
        if response.status_code != 200:
            detail = response.json()["detail"]
            assert "<bytes>" not in detail and "object at 0x" not in detail and "/tmp" not in detail, detail
            assert detail.startswith("file"), detail


@pytest.mark.parametrize(("name", "status", "words"), [
    ("bomb_area.png", 413, "too large"), ("bomb_aspect.png", 413, "1×39999999"), ("truncated.png", 422, "truncated"),
    ("loud.wav", 422, "sample values reach 1e+30"), ("nan.wav", 422, "NaN"), ("svg_as.png", 422, "cannot decode"),
])
def test_hostile_uploads_get_the_documented_status(client: TestClient, name: str, status: int, words: str) -> None:
    response = client.post("/search", files={"file": (name, WRITERS[name][1](), media_type(name))})
    assert response.status_code == status and words in response.json()["detail"], response.text
    if status == 422:
        assert f"file {name!r}" in response.json()["detail"]


@pytest.mark.parametrize("k", ["--5", "²", "٥", "5" * 5000, "-1", "0", "1e3", " ", "101", "5.0"])
def test_bad_form_k_is_a_400(client: TestClient, k: str) -> None:
    response = client.post("/search", files={"file": ("a.png", png_bytes(), "image/png")}, data={"k": k})
    assert response.status_code == 400 and response.json()["detail"].startswith("k: got"), response.text


def test_paths_are_relative_and_no_server_path_is_sent(client: TestClient, built_index) -> None:
    results = client.post("/search", json={"text": "a red circle", "k": 20}).json()["results"]
    paths = {r["item"]["path"] for r in results}
    assert "sub/picture003.jpg" in paths and all(not p.startswith("/") for p in paths)
    for url in ("/health", f"/items/{results[0]['item']['id']}"):
        text = client.get(url).text
        assert str(built_index.media) not in text and str(built_index.model) not in text
    assert client.get("/health").json()["model"] == built_index.model.name


def test_head_and_ranges_on_media(client: TestClient, built_index) -> None:
    sound = client.post("/search", json={"text": "x", "k": 1, "modality": "audio"}).json()["results"][0]["item"]
    url, size = f"/items/{sound['id']}/media", sound["size"]
    head = client.head(url)
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == str(size)
    assert head.headers["accept-ranges"] == "bytes"
    data = (built_index.media / sound["path"]).read_bytes()
    tail = client.get(url, headers={"range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    assert tail.headers["content-range"] == f"bytes {size - 10}-{size - 1}/{size}"
    assert client.get(url, headers={"range": "bytes=5-"}).content == data[5:]
    assert client.get(url, headers={"range": "bytes=0-1,4-5"}).status_code == 200  # several ranges: the whole file
    for bad in ("bytes=abc", "items=0-1", "bytes=-", "bytes=5-2x", "bytes=" + "9" * 30):
        response = client.get(url, headers={"range": bad})
        assert response.status_code == 400 and "Range header" in response.json()["detail"], (bad, response.text)
    outside = client.get(url, headers={"range": f"bytes={size}-"})
    assert outside.status_code == 416 and outside.headers["content-range"] == f"bytes */{size}"
    assert "Range header" in outside.json()["detail"]


def indexed(tmp_path: Path, checkpoint: Path, follow_symlinks: bool = False) -> tuple[Path, Path, Path]:
    """A fresh media folder with the hostile corpus, indexed; returns (media, outside, index)."""
    media, outside = tmp_path / "media", tmp_path / "outside"
    write_media(media)
    write_corpus(media, outside)
    update_index(tmp_path / "index", media, omnibind.load(checkpoint), checkpoint, follow_symlinks=follow_symlinks)
    return media, outside, tmp_path / "index"


def ids_by_path(client: TestClient) -> dict[str, int]:
    results = client.post("/search", json={"text": "x", "k": 100}).json()["results"]
    return {r["item"]["path"]: r["item"]["id"] for r in results}


def test_links_and_swapped_files_are_never_served(tmp_path: Path, search_checkpoint: Path) -> None:
    media, outside, index = indexed(tmp_path, search_checkpoint)
    with TestClient(make_app(index, search_checkpoint), raise_server_exceptions=False) as test_client:
        ids = ids_by_path(test_client)
        assert not {"escape.png", "escape_text.png", "inside_link.png", "dangling.png"} & set(ids)
        target = media / "picture000.png"
        info = target.stat()
        secret = outside / "same_size.png"
        secret.write_bytes(b"root:x:0:0:" + b"x" * (info.st_size - 11))
        target.unlink()
        os.symlink(secret, target)  # a file swapped for a link of the same size and mtime
        os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=False)
        os.utime(secret, ns=(info.st_atime_ns, info.st_mtime_ns))
        for part in ("media", "thumbnail"):
            response = test_client.get(f"/items/{ids['picture000.png']}/{part}")
            assert response.status_code == 410 and "root:x" not in response.text, response.text
        other = media / "picture002.png"  # the same size and mtime, other content: caught by the hash
        info = other.stat()
        data = bytearray(other.read_bytes())
        data[-20] ^= 0xFF
        other.write_bytes(bytes(data))
        os.utime(other, ns=(info.st_atime_ns, info.st_mtime_ns))
        response = test_client.get(f"/items/{ids['picture002.png']}/media")
        assert response.status_code == 410 and "content changed" in response.json()["detail"]


def test_links_are_followed_only_when_asked(tmp_path: Path, search_checkpoint: Path) -> None:
    _, outside, index = indexed(tmp_path, search_checkpoint, follow_symlinks=True)
    with TestClient(make_app(index, search_checkpoint), raise_server_exceptions=False) as test_client:
        ids = ids_by_path(test_client)
        assert {"escape.png", "inside_link.png"} <= set(ids) and "dangling.png" not in ids
        response = test_client.get(f"/items/{ids['escape.png']}/media")
        assert response.status_code == 200 and response.content == (outside / "secret.png").read_bytes()


def test_a_full_decode_pool_answers_503_and_text_does_not_wait(built_index, monkeypatch: pytest.MonkeyPatch) -> None:
    searcher = Searcher(SearchIndex(built_index.index), omnibind.load(built_index.model))
    release, started = threading.Event(), threading.Event()
    prepare = searcher.prepare

    def slow_prepare(modality, source):
        if modality == "image":
            started.set()
            release.wait(20)
        return prepare(modality, source)

    monkeypatch.setattr(searcher, "prepare", slow_prepare)
    app = create_app(searcher, max_upload_bytes=200_000, decode_workers=1, decode_queue=0)
    with LiveServer(app) as url:
        upload = {"files": {"file": ("a.png", png_bytes(), "image/png")}}
        slow = threading.Thread(target=lambda: httpx.post(f"{url}/search", timeout=30, **upload))
        slow.start()
        assert started.wait(10)
        busy = httpx.post(f"{url}/search", timeout=30, **upload)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1" and "busy" in busy.json()["detail"]
        start = time.perf_counter()
        text = httpx.post(f"{url}/search", json={"text": "a blue square", "k": 3}, timeout=30)
        assert text.status_code == 200 and time.perf_counter() - start < 5
        release.set()
        slow.join(30)


def test_the_same_upload_again_is_answered_from_the_cache(built_index, monkeypatch: pytest.MonkeyPatch) -> None:
    searcher = Searcher(SearchIndex(built_index.index), omnibind.load(built_index.model))
    decoded: list[str] = []
    prepare = searcher.prepare
    monkeypatch.setattr(searcher, "prepare", lambda m, source: decoded.append(m) or prepare(m, source))
    with TestClient(create_app(searcher, max_upload_bytes=200_000)) as test_client:
        answers = [test_client.post("/search", files={"file": (name, png_bytes(5), "image/png")},
                                    data={"modality": modality}) for name, modality in
                   (("a.png", "image"), ("b.png", "audio"), ("c.png", "image"))]
    assert [a.status_code for a in answers] == [200, 200, 200] and decoded == ["image"]
    assert answers[0].json()["results"] == answers[2].json()["results"]


def raw_exchange(url: str, payload: bytes, wait: float) -> bytes:
    """Send `payload` on a fresh connection, then read until the server closes it (at most `wait` s)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as connection:
        connection.sendall(payload)
        received = b""
        try:
            while chunk := connection.recv(4096):
                received += chunk
        except TimeoutError:
            return received + b"<still open>"
    return received


class QuickHeaders(TimedH11Protocol):
    header_seconds = 0.5


def test_stalled_bodies_and_headers_are_cut_off(built_index) -> None:
    app = make_app(built_index.index, built_index.model, body_idle_seconds=0.5)
    with LiveServer(app, http=QuickHeaders) as url:
        start = time.perf_counter()
        stalled = raw_exchange(url, b"POST /search HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                                    b"content-length: 100\r\n\r\n{\"te", wait=10)
        assert stalled.startswith(b"HTTP/1.1 408") and b"not received in time" in stalled
        trickle = raw_exchange(url, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", wait=10)
        assert trickle == b"" and time.perf_counter() - start < 8


def test_token_host_allow_list_and_cors(built_index) -> None:
    guarded = Guard(make_app(built_index.index, built_index.model), token=TOKEN, allowed_hosts=["search.lan"])
    with TestClient(guarded, base_url="http://127.0.0.1") as test_client:
        refused = test_client.get("/health")
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert "token" in refused.json()["detail"]
        assert test_client.get("/health", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert test_client.get("/health", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
        page = test_client.get(f"/?token={TOKEN}", follow_redirects=False)
        assert page.status_code == 303 and "HttpOnly" in page.headers["set-cookie"]
        assert test_client.get("/health").status_code == 200  # the cookie now carries the token
        for host, status in (("evil.example", 400), ("search.lan:8000", 200), ("10.0.0.7:8000", 200)):
            response = test_client.get("/health", headers={"host": host, "authorization": f"Bearer {TOKEN}"})
            assert response.status_code == status, (host, response.text)
        cors = test_client.get("/health", headers={"origin": "https://evil.example",
                                                   "authorization": f"Bearer {TOKEN}"})
        assert "access-control-allow-origin" not in cors.headers


def serve(*args: str, monkeypatch: pytest.MonkeyPatch, built_index) -> tuple[int, str, list]:
    calls: list = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: calls.append((app, kw)))
    result = CliRunner().invoke(cli_app, ["serve", str(built_index.index), "--device", "cpu", *args])
    return result.exit_code, result.output, calls


def test_serve_refuses_to_expose_the_index_without_a_token(built_index, monkeypatch: pytest.MonkeyPatch) -> None:
    code, output, calls = serve("--host", "0.0.0.0", monkeypatch=monkeypatch, built_index=built_index)
    assert code == 2 and "no --token is given" in " ".join(output.split()) and not calls
    code, output, calls = serve("--host", "0.0.0.0", "--token", "short", monkeypatch=monkeypatch,
                                built_index=built_index)
    assert code == 2 and "--token" in output and not calls
    code, output, calls = serve("--host", "0.0.0.0", "--insecure", monkeypatch=monkeypatch, built_index=built_index)
    assert code == 0 and "WITHOUT a token" in " ".join(output.split()) and calls
    code, output, calls = serve("--host", "0.0.0.0", "--token", TOKEN, "--cors-origin", "https://app.example",
                                monkeypatch=monkeypatch, built_index=built_index)
    assert code == 0 and calls and calls[0][1]["http"] is TimedH11Protocol
    with TestClient(calls[0][0], base_url="http://127.0.0.1") as test_client:
        allowed = test_client.get("/health", headers={"origin": "https://app.example",
                                                      "authorization": f"Bearer {TOKEN}"})
        assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "https://app.example"
