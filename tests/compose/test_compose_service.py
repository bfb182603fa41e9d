"""The search service with a composed model: `omnibind index DIR -m COMPOSED` indexes pictures and sounds, and
the HTTP service (in-process) answers text queries and uploaded pictures and sounds with the composed model's
scores, whether the connected tower is the audio one (an image–text base) or the image one (an audio–text base).
Slow: indexing takes a few seconds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from compose_fixtures import AUDIO, IMAGE, TEXT
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import omnibind
from omnibind.cli import app
from omnibind.compose import compose, save_composed
from omnibind.search import Searcher, SearchIndex
from omnibind.search.service import create_app

pytestmark = pytest.mark.slow
UPLOAD_TYPES = {".png": "image/png", ".wav": "audio/wav", ".flac": "audio/flac"}


@pytest.mark.parametrize("connected", [AUDIO, IMAGE])
def test_the_service_searches_a_folder_with_a_composed_model(sources: dict[str, Path], tmp_path: Path,
                                                             media_files: dict[str, Path], connected: str) -> None:
    image_text, audio_text = f"{IMAGE},{TEXT}={sources['a']}", f"{AUDIO},{TEXT}={sources['b']}"
    specs = [image_text, audio_text] if connected == AUDIO else [audio_text, image_text]
    folder = save_composed(compose(specs, connector="mlp"), tmp_path / "composed")
    model = omnibind.load(folder)
    assert model.config.towers[connected].kind == "connected"
    media = tmp_path / "media"
    media.mkdir()
    for name in ("drawing", "photo", "tone", "chirp"):
        shutil.copy(media_files[name], media / media_files[name].name)
    result = CliRunner().invoke(app, ["index", str(media), "-m", str(folder), "--index", str(tmp_path / "idx"),
                                      "--runtime", "fp32"])
    assert result.exit_code == 0, result.output

    files = sorted(media.iterdir())
    with torch.no_grad():
        vectors = {p.name: model.encode(IMAGE if p.suffix == ".png" else AUDIO, [p])[0] for p in files}
        query = model.encode(TEXT, ["a red circle"])[0]
    searcher = Searcher(SearchIndex(tmp_path / "idx"), model)
    with TestClient(create_app(searcher), raise_server_exceptions=False) as client:
        health = client.get("/health").json()
        assert health["items"] == 4 and health["modalities"] == {IMAGE: 2, AUDIO: 2}
        assert health["embed_dim"] == model.config.embed_dim and {TEXT, IMAGE, AUDIO} <= set(health["query_modalities"])

        response = client.post("/search", json={"text": "a red circle", "k": 4})
        assert response.status_code == 200, response.text
        found = {r["item"]["name"]: r["score"] for r in response.json()["results"]}
        assert found.keys() == vectors.keys()
        for name, score in found.items():  # the composed model's scores (fp32 runtime), in the base space
            assert score == pytest.approx(float(query @ vectors[name]), abs=1e-4)

        for upload in ("circle.png", "tone.wav"):
            content = (media / upload).read_bytes()
            response = client.post("/search", files={"file": (upload, content, UPLOAD_TYPES[upload[-4:]])},
                                   data={"k": "4"})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["query"]["modality"] == (IMAGE if upload.endswith(".png") else AUDIO)
            results = {r["item"]["name"]: r["score"] for r in body["results"]}
            assert body["results"][0]["item"]["name"] == upload and results[upload] == pytest.approx(1.0, abs=1e-4)
            assert results.keys() == vectors.keys()
            for name, score in results.items():  # across modalities: a picture against the sounds and back
                assert score == pytest.approx(float(vectors[upload] @ vectors[name]), abs=1e-4)

        response = client.post("/search", files={"file": ("tone.wav", (media / "tone.wav").read_bytes(), "audio/wav")},
                               data={"k": "4", "modality": IMAGE})
        assert response.status_code == 200 and {r["item"]["modality"] for r in response.json()["results"]} == {IMAGE}
