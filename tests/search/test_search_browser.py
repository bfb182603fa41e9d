"""The web page in a real browser: the service runs on 127.0.0.1 and headless Chromium (the system's, driven
by Playwright) types a query, uploads a picture, filters by modality and meets an error; the page is
screenshotted (to docs/search.png when OMNIBIND_UPDATE_SCREENSHOT=1)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from search_live_server import LiveServer
from search_media import write_media

import omnibind
from omnibind.search import Searcher, SearchIndex, update_index
from omnibind.search.service import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHOTOS = ["astronaut.png", "coffee.png", "rocket.jpg", "chelsea.png", "camera.png", "horse.png",
          "motorcycle_left.png", "hubble_deep_field.jpg", "retina.jpg", "color.png"]
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "search.png"
TIMEOUT_MS = 20_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real photos (scikit-image's samples, when installed), drawings and tones."""
    folder = tmp_path_factory.mktemp("browser") / "media"
    write_media(folder, images=6, sounds=4)
    try:
        import skimage

        for name in PHOTOS:
            source = Path(skimage.__file__).parent / "data" / name
            if source.is_file():
                shutil.copyfile(source, folder / name)
    except ImportError:
        pass
    return folder


@pytest.fixture(scope="module")
def server_url(media: Path, search_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory):
    index = tmp_path_factory.mktemp("browser-index") / "index"
    model = omnibind.load(search_checkpoint)
    update_index(index, media, model, search_checkpoint)
    with LiveServer(create_app(Searcher(SearchIndex(index), model))) as url:
        yield url


@pytest.fixture
def page(tmp_path: Path):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900}, device_scale_factor=1,
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            context.close()


def cards(page) -> list[dict]:
    """What each result card shows: name, modality, score, whether its thumbnail loaded, whether it plays."""
    return page.eval_on_selector_all(".card", """cards => cards.map(card => ({
        name: card.querySelector('.name').textContent,
        modality: card.dataset.modality,
        score: card.querySelector('.value').textContent,
        thumbnail: card.querySelector('img').complete && card.querySelector('img').naturalWidth > 0,
        audio: card.querySelector('audio') !== null,
    }))""")


def wait_for_results(page, summary: str) -> None:
    page.wait_for_function("text => document.querySelector('#summary').textContent.includes(text)", arg=summary)
    page.wait_for_function("() => [...document.querySelectorAll('.card img')].every(i => i.complete)")


def test_search_by_text_and_by_picture_in_chromium(page, server_url: str, media: Path, tmp_path: Path) -> None:
    page.goto(server_url)
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('items')")
    assert "query by text, image, audio" in page.text_content("#status")

    page.fill("#query", "a dog on a beach")
    page.press("#query", "Enter")
    wait_for_results(page, "results for “a dog on a beach”")
    shown = cards(page)
    assert len(shown) == 12 and all(card["thumbnail"] for card in shown)
    assert all(card["audio"] == (card["modality"] == "audio") for card in shown)
    scores = [float(card["score"]) for card in shown]
    assert scores == sorted(scores, reverse=True)

    page.set_input_files("#file-input", str(media / "picture002.png"))
    wait_for_results(page, "results for picture picture002.png")
    shown = cards(page)
    assert shown[0]["name"] == "picture002.png" and shown[0]["score"] == "1.000"
    assert page.locator("#upload-preview img").count() == 1 and page.input_value("#query") == ""

    page.set_input_files("#file-input", str(media / "tone001.flac"))
    wait_for_results(page, "results for sound tone001.flac")
    shown = cards(page)
    assert shown[0]["name"] == "tone001.flac" and shown[0]["score"] == "1.000" and shown[0]["audio"]
    assert all(card["thumbnail"] for card in shown)
    duration = page.eval_on_selector(".card audio", """audio => new Promise((resolve, reject) => {
        audio.addEventListener('loadedmetadata', () => resolve(audio.duration));
        audio.addEventListener('error', () => reject(new Error('audio did not load')));
        audio.preload = 'metadata';
        audio.load();
    })""")
    assert duration == pytest.approx(0.5, abs=0.01)
    page.screenshot(path=str(tmp_path / "search.png"), full_page=True)
    if os.environ.get("OMNIBIND_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(tmp_path / "search.png", DOCS_SCREENSHOT)

    page.check("input[name=modality][value=audio]")
    page.wait_for_function("() => [...document.querySelectorAll('.card')].every(c => c.dataset.modality === 'audio')"
                           " && document.querySelectorAll('.card').length > 0")
    assert {card["modality"] for card in cards(page)} == {"audio"}

    bad = tmp_path / "notes.txt"
    bad.write_text("not media")
    page.set_input_files("#file-input", str(bad))
    page.wait_for_selector("#message:not([hidden])")
    assert "not accepted" in page.text_content("#message")
