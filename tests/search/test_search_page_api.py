"""What the web page needs from the API: "more like this" by an item's stored vector (GET /items/{id}/similar),
paging through results with an offset (up to offset + k = MAX_DEPTH), the media type of each item, and clear
4xx answers for bad paging parameters."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

import omnibind
from omnibind.search import Searcher, SearchIndex
from omnibind.search.schemas import MAX_DEPTH
from omnibind.search.service import create_app


@pytest.fixture(scope="module")
def client(built_index) -> Iterator[TestClient]:
    searcher = Searcher(SearchIndex(built_index.index), omnibind.load(built_index.model))
    with TestClient(create_app(searcher), raise_server_exceptions=False) as test_client:
        yield test_client


def ids(body: dict) -> list[int]:
    return [result["item"]["id"] for result in body["results"]]


def every_item(client: TestClient) -> list[dict]:
    return [result["item"] for result in client.post("/search", json={"text": "anything", "k": 100}).json()["results"]]


def test_more_like_this_ranks_as_a_search_by_the_items_own_file(client: TestClient, built_index) -> None:
    for item in every_item(client):
        similar = client.get(f"/items/{item['id']}/similar", params={"k": 9})
        assert similar.status_code == 200, similar.text
        body = similar.json()
        assert body["query"] == {"modality": item["modality"], "text": None, "filename": item["name"],
                                 "filter": None, "item": item["id"]}
        assert body["results"][0]["item"]["id"] == item["id"]
        assert body["results"][0]["score"] == pytest.approx(1.0, abs=1e-4)
        data = (built_index.media / item["path"]).read_bytes()
        uploaded = client.post("/search", files={"file": (item["name"], data)}, data={"k": "9"}).json()
        assert ids(body) == ids(uploaded)
        assert [r["score"] for r in body["results"]] == pytest.approx([r["score"] for r in uploaded["results"]],
                                                                      abs=1e-4)


def test_more_like_this_filters_and_pages(client: TestClient) -> None:
    picture = next(item for item in every_item(client) if item["modality"] == "image")
    sounds = client.get(f"/items/{picture['id']}/similar", params={"modality": "audio", "k": 10}).json()
    assert len(sounds["results"]) == 3 and {r["item"]["modality"] for r in sounds["results"]} == {"audio"}
    assert sounds["query"]["filter"] == "audio"
    whole = ids(client.get(f"/items/{picture['id']}/similar", params={"k": 9}).json())
    pages = [client.get(f"/items/{picture['id']}/similar", params={"k": 4, "offset": offset}).json()
             for offset in (0, 4, 8)]
    assert [page["offset"] for page in pages] == [0, 4, 8]
    assert [i for page in pages for i in ids(page)] == whole


def test_search_pages_with_an_offset(client: TestClient, built_index) -> None:
    whole = client.post("/search", json={"text": "a red circle", "k": 9}).json()
    assert whole["offset"] == 0 and "item" not in whole["query"]
    pages = [client.post("/search", json={"text": "a red circle", "k": 3, "offset": offset}).json()
             for offset in (0, 3, 6, 9)]
    assert [i for page in pages for i in ids(page)] == ids(whole) and pages[-1]["results"] == []
    data = (built_index.media / "picture000.png").read_bytes()
    uploaded = client.post("/search", files={"file": ("picture000.png", data)}, data={"k": "9"}).json()
    second = client.post("/search", files={"file": ("picture000.png", data)}, data={"k": "4", "offset": "4"}).json()
    assert second["offset"] == 4 and ids(second) == ids(uploaded)[4:8]


@pytest.mark.parametrize(("params", "status", "words"), [
    ({"k": 100, "offset": MAX_DEPTH - 50}, 400, f"offset: got {MAX_DEPTH - 50} with k 100 (expected offset + k of "
                                                f"at most {MAX_DEPTH})"),
    ({"offset": -1}, 422, "offset"),
    ({"offset": MAX_DEPTH}, 422, "offset"),
    ({"k": 0}, 422, "k"),
    ({"modality": "text"}, 422, "modality"),
    ({"modality": "video"}, 422, "modality"),
])
def test_bad_paging_and_filters_are_refused(client: TestClient, params: dict, status: int, words: str) -> None:
    item_id = every_item(client)[0]["id"]
    response = client.get(f"/items/{item_id}/similar", params=params)
    assert response.status_code == status and words in response.json()["detail"]


def test_bad_offsets_of_search_and_unknown_items(client: TestClient) -> None:
    response = client.post("/search", json={"text": "x", "k": 20, "offset": MAX_DEPTH - 10})
    assert response.status_code == 400 and "offset + k of at most" in response.json()["detail"]
    response = client.post("/search", json={"text": "x", "offset": "3"})
    assert response.status_code == 422 and "offset" in response.json()["detail"]
    response = client.post("/search", files={"file": ("a.png", b"x")}, data={"offset": "-2"})
    assert response.status_code == 400 and "offset" in response.json()["detail"]
    response = client.get("/items/999999/similar")
    assert response.status_code == 404 and response.json()["detail"] == "item 999999: not in the index"
    assert client.get("/items/0/similar").status_code == 422


def test_documented_in_the_openapi_schema(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/items/{item_id}/similar"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert set(parameters) == {"item_id", "k", "offset", "modality"}
    assert parameters["offset"]["schema"]["maximum"] == MAX_DEPTH - 1
    assert {"400", "404", "422"} <= set(operation["responses"])
    multipart = spec["paths"]["/search"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert "offset" in multipart["properties"]
    health = client.get("/health").json()
    assert health["max_depth"] == MAX_DEPTH
    items = every_item(client)
    assert {item["media_type"].split("/")[0] for item in items} == {item["modality"] for item in items}


def test_the_page_is_small_and_self_contained(client: TestClient) -> None:
    page = client.get("/").text
    assert re.findall(r'(?:src|href)="([^"#]+)"', page) == ["/static/style.css", "/static/app.js"]
    for name in ("app.js", "style.css"):
        text = client.get(f"/static/{name}").text
        assert "http://" not in text and "https://" not in text and "import " not in text
    assert sum(len(client.get(f"/static/{name}").content) for name in ("app.js", "style.css")) + len(page) < 60_000
