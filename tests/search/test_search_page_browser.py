"""The search page as a person uses it, in headless Chromium (the system's, driven by Playwright), over a generated
folder of pictures of very different shapes (panoramas, towers, squares; PNG, JPEG, WebP) and sounds: a tidy grid,
the item view, "more like this", "load more", the URL after each step (reload, back, a shared link), the keyboard,
axe-core's report, a phone-sized screen, dark mode and the error lines. With OMNIBIND_UPDATE_SCREENSHOT=1 the
desktop and phone screenshots, light and dark, are written to docs/."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
import soundfile
from PIL import Image, ImageDraw
from search_live_server import LiveServer
from search_media import COLOURS, tone

import omnibind
from omnibind.search import Searcher, SearchIndex, update_index
from omnibind.search.service import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DOCS = Path(__file__).resolve().parents[2] / "docs"
TIMEOUT_MS = 20_000
UPLOAD_LIMIT = 300_000
# (width, height): from a 25:1 panorama to a 1:25 tower
SHAPES = [(400, 60), (60, 400), (300, 300), (640, 360), (360, 640), (200, 150), (150, 200), (1000, 40), (40, 1000),
          (256, 512), (512, 256), (90, 90)]
PICTURES = 24
SOUNDS = 6
LONG_NAME = "albums/2024/summer/a-very-long-file-name-for-a-picture-of-the-evening-sky-over-the-harbour.png"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


def drawing(index: int, size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """A picture of the given shape: a two-colour gradient with a shape in the middle."""
    width, height = size
    ramp = np.linspace(0, 1, width)[None, :, None] * np.ones((height, 1, 1))
    first = np.array(Image.new("RGB", (1, 1), COLOURS[index % len(COLOURS)]).getpixel((0, 0)), dtype=float)
    second = np.array([240, 236, 226], dtype=float)
    image = Image.fromarray((first * (1 - ramp) * 0.6 + second * (0.4 + 0.6 * ramp)).astype(np.uint8)).convert(mode)
    draw = ImageDraw.Draw(image)
    side = min(width, height) // 2
    box = (width // 2 - side // 2, height // 2 - side // 2, width // 2 + side // 2, height // 2 + side // 2)
    colour = COLOURS[(index + 3) % len(COLOURS)]
    if index % 2:
        draw.ellipse(box, fill=colour)
    else:
        draw.rectangle(box, fill=colour)
    return image


def write_folder(folder: Path) -> None:
    """PICTURES pictures of the SHAPES (PNG, some with transparency, JPEG, WebP), one with a long name deep in
    sub-folders, and SOUNDS tones of 0.5 to 3 s (WAV and FLAC)."""
    folder.mkdir(parents=True)
    for i in range(PICTURES - 1):
        size = SHAPES[i % len(SHAPES)]
        kind = ("png", "jpg", "webp")[i % 3]
        mode = "RGBA" if kind == "png" and i % 2 else "RGB"
        drawing(i, size, mode).save(folder / f"{size[0]}x{size[1]}-{i:02d}.{kind}")
    (folder / LONG_NAME).parent.mkdir(parents=True)
    drawing(99, (320, 200)).save(folder / LONG_NAME)
    for i in range(SOUNDS):
        seconds = 0.5 + 0.5 * i
        samples = np.tile(tone(220.0 * (1 + i), 0.5), int(seconds / 0.5))
        soundfile.write(folder / f"tone-{i}.{'flac' if i % 2 else 'wav'}", samples, 16000)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("page") / "media"
    write_folder(folder)
    return folder


@pytest.fixture(scope="module")
def server(media: Path, search_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    index = tmp_path_factory.mktemp("page-index") / "index"
    model = omnibind.load(search_checkpoint)
    update_index(index, media, model, search_checkpoint)
    with LiveServer(create_app(Searcher(SearchIndex(index), model), max_upload_bytes=UPLOAD_LIMIT)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def open_page(browser) -> Iterator:
    """open_page(url, viewport=DESKTOP, scheme="light") -> a fresh page (its own context) at `url`."""
    contexts = []

    def opener(url: str, viewport: dict = DESKTOP, scheme: str = "light"):
        context = browser.new_context(viewport=viewport, color_scheme=scheme, device_scale_factor=1)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        return page

    yield opener
    for context in contexts:
        context.close()


def ready(page) -> None:
    page.wait_for_function("() => /items|unreachable/.test(document.querySelector('#status').textContent)")


def wait_results(page, summary: str = "result") -> None:
    page.wait_for_function("text => document.querySelector('#summary').textContent.includes(text)", arg=summary)
    page.wait_for_function("() => [...document.querySelectorAll('.card img')].every(i => i.complete)")


def cards(page) -> list[dict]:
    return page.eval_on_selector_all(".card", """cards => cards.map(card => {
        const box = card.getBoundingClientRect();
        return {id: Number(card.dataset.id), name: card.querySelector('.name').textContent,
                path: card.querySelector('.name').title, modality: card.dataset.modality,
                score: card.querySelector('.value').textContent, width: box.width, height: box.height,
                audio: card.querySelector('audio') !== null};
    })""")


def params(page) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlparse(page.url).query).items()}


def search(page, text: str) -> None:
    page.fill("#query", text)
    page.press("#query", "Enter")
    wait_results(page, f"for “{text}”")


def viewer(page) -> dict:
    """What the item view shows: its title and its metadata (dt -> dd)."""
    page.wait_for_selector("#viewer[open]")
    return page.evaluate("""() => ({
        title: document.querySelector('#viewer-title').textContent,
        meta: Object.fromEntries([...document.querySelectorAll('#viewer-meta dt')].map(
            dt => [dt.textContent, dt.nextElementSibling.textContent])),
    })""")


def message(page) -> str:
    page.wait_for_selector("#message:not([hidden])")
    return page.inner_text("#message")


def test_a_tidy_grid_of_equal_cards(open_page, server: str) -> None:
    page = open_page(f"{server}/?q=the%20evening%20sky&k=48")
    wait_results(page, "30 results")
    shown = cards(page)
    assert len(shown) == PICTURES + SOUNDS
    assert {(round(c["width"]), round(c["height"])) for c in shown} == {(round(shown[0]["width"]),
                                                                        round(shown[0]["height"]))}
    assert shown[0]["height"] < 1.6 * shown[0]["width"]  # no tall picture stretches the rows
    rows = page.eval_on_selector_all(".card", "cards => new Set(cards.map(c => c.getBoundingClientRect().top)).size")
    columns = page.evaluate("getComputedStyle(document.querySelector('#results')).gridTemplateColumns.split(' ')"
                            ".length")
    assert columns == 5 and rows == -(-len(shown) // columns)
    # Each picture fits its frame whole: scaled (contain), never cropped or stretched; the preview keeps the
    # picture's own shape.
    fits = page.eval_on_selector_all(".card", """cards => cards.map(card => {
        const img = card.querySelector('img'), frame = card.querySelector('.media').getBoundingClientRect();
        const box = img.getBoundingClientRect(), [w, h] = (card.querySelector('.extra').textContent || '0×0')
            .split('×').map(Number);
        return {fit: getComputedStyle(img).objectFit, inside: box.left >= frame.left - 0.5 &&
                box.right <= frame.right + 0.5 && box.top >= frame.top - 0.5 && box.bottom <= frame.bottom + 0.5,
                loaded: img.naturalWidth > 0, family: card.dataset.family,
                shape: img.naturalWidth / img.naturalHeight, original: w / h};
    })""")
    assert all(f["fit"] == "contain" and f["inside"] and f["loaded"] for f in fits)
    for f in fits:
        if f["family"] == "image":
            assert f["shape"] == pytest.approx(f["original"], rel=0.1)
    assert all(c["audio"] == (c["modality"] == "audio") for c in shown)
    assert sum(c["audio"] for c in shown) == SOUNDS
    long = page.locator(".card .name", has_text="a-very-long-file-name")
    assert long.get_attribute("title") == LONG_NAME
    assert long.evaluate("n => getComputedStyle(n).textOverflow === 'ellipsis' && n.scrollWidth > n.clientWidth")


def test_the_url_keeps_query_filter_and_open_item(open_page, server: str) -> None:
    page = open_page(server)
    ready(page)
    search(page, "a red circle")
    assert params(page) == {"q": "a red circle"}
    page.check("input[name=modality][value=image]")
    page.wait_for_function("() => location.search.includes('modality=image') && document.querySelectorAll('.card')"
                           ".length > 0 && [...document.querySelectorAll('.card')].every(c => c.dataset.modality"
                           " === 'image')")
    assert params(page) == {"q": "a red circle", "modality": "image"}
    wait_results(page, "among pictures")
    ranking = [c["id"] for c in cards(page)]
    page.locator(".card").nth(2).locator(".details").click()  # anywhere on the card
    opened = viewer(page)
    assert params(page) == {"q": "a red circle", "modality": "image", "item": str(ranking[2])}
    assert opened["title"] == cards(page)[2]["name"]

    page.reload()
    assert viewer(page)["title"] == opened["title"]
    wait_results(page, "among pictures")
    assert [c["id"] for c in cards(page)] == ranking and page.input_value("#query") == "a red circle"
    assert page.is_checked("input[name=modality][value=image]")

    page.go_back()  # closes the item view (the reload kept the history)
    page.wait_for_function("() => !document.querySelector('#viewer').open")
    assert params(page) == {"q": "a red circle", "modality": "image"}
    page.go_back()  # the filter goes
    page.wait_for_function("() => [...document.querySelectorAll('.card')].some(c => c.dataset.modality === 'audio')")
    assert params(page) == {"q": "a red circle"} and page.is_checked("input[name=modality][value='']")
    page.go_forward()
    page.wait_for_function("() => [...document.querySelectorAll('.card')].every(c => c.dataset.modality === 'image')")

    shared = open_page(f"{server}/?q=a+red+circle&modality=image&item={ranking[2]}")
    assert viewer(shared)["title"] == opened["title"]
    wait_results(shared, "among pictures")
    assert [c["id"] for c in cards(shared)] == ranking
    shared.click("#viewer-close")  # opened by the link itself: closing stays on this page, without the item
    shared.wait_for_function("() => !document.querySelector('#viewer').open")
    assert params(shared) == {"q": "a red circle", "modality": "image"}


def test_the_item_view_shows_the_item_and_its_metadata(open_page, server: str, media: Path) -> None:
    page = open_page(f"{server}/?q=anything&k=48")
    wait_results(page)
    wide = next(c for c in cards(page) if c["name"].startswith("400x60-"))
    page.focus(f".card[data-id='{wide['id']}'] a.open")
    page.keyboard.press("Enter")
    shown = viewer(page)
    path = media / wide["path"]
    assert shown["title"] == wide["name"] and shown["meta"]["Path"] == wide["path"] and "/" not in wide["path"][:1]
    assert shown["meta"]["Dimensions"] == "400 × 60 px" and shown["meta"]["Modality"] == "image"
    assert shown["meta"]["Size"] == f"{path.stat().st_size / 1e3:.1f} kB" if path.stat().st_size >= 1000 else True
    assert shown["meta"]["Type"].startswith("image/") and shown["meta"]["Score"] == wide["score"]
    page.wait_for_function("() => document.querySelector('#viewer-media img').complete")
    assert page.eval_on_selector("#viewer-media img", "i => i.naturalWidth") == 400
    download = page.locator("#viewer-download")
    assert download.get_attribute("download") == wide["name"]
    assert page.request.get(server + download.get_attribute("href")).body() == path.read_bytes()
    assert params(page)["item"] == str(wide["id"])
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.querySelector('#viewer').open")
    assert page.evaluate("() => document.activeElement.closest('.card').dataset.id") == str(wide["id"])
    assert "item" not in params(page)

    sound = next(c for c in cards(page) if c["name"] == "tone-2.wav")
    page.click(f".card[data-id='{sound['id']}'] a.open")
    shown = viewer(page)
    assert shown["meta"]["Duration"] == "1.50 s" and shown["meta"]["Modality"] == "audio"
    assert shown["meta"]["Sample rate"] == "16000" and shown["meta"]["Channels"] == "1"
    duration = page.eval_on_selector("#viewer-media audio", """audio => new Promise((resolve, reject) => {
        if (audio.readyState >= 1) resolve(audio.duration);
        audio.addEventListener('loadedmetadata', () => resolve(audio.duration));
        audio.addEventListener('error', () => reject(new Error('audio did not load')));
    })""")
    assert duration == pytest.approx(1.5, abs=0.01)


def test_more_like_this_ranks_as_a_search_by_the_items_own_file(open_page, server: str, media: Path) -> None:
    page = open_page(f"{server}/?q=a+tower")
    wait_results(page)
    target = cards(page)[3]
    page.click(f".card[data-id='{target['id']}'] .like")
    wait_results(page, f"like {target['name']}")
    assert params(page) == {"like": str(target["id"])}
    liked = cards(page)
    assert liked[0]["id"] == target["id"] and liked[0]["score"] == "1.000"
    page.set_input_files("#file-input", str(media / target["path"]))
    wait_results(page, "an uploaded file")
    uploaded = cards(page)
    assert [c["id"] for c in uploaded] == [c["id"] for c in liked]
    assert [c["score"] for c in uploaded] == [c["score"] for c in liked]

    other = uploaded[4]
    page.click(f".card[data-id='{other['id']}'] a.open")
    viewer(page)
    page.click("#viewer-like")
    wait_results(page, f"like {other['name']}")
    assert params(page) == {"like": str(other["id"])} and not page.evaluate("document.querySelector('#viewer').open")
    page.go_back()  # back to the upload's results, with the item open
    assert viewer(page)["title"] == other["name"]


def test_load_more_pages_up_to_the_stated_limit(open_page, server: str) -> None:
    page = open_page(f"{server}/?q=sky&k=6")
    wait_results(page, "6 results")
    assert "at most 1000 results" in page.text_content("#depth")
    first = [c["id"] for c in cards(page)]
    page.click("#more")
    wait_results(page, "12 results")
    assert [c["id"] for c in cards(page)][:6] == first and params(page) == {"q": "sky", "k": "6"}
    assert page.evaluate("() => document.activeElement.closest('.card').dataset.index") == "6"
    for shown in (18, 24, 30):
        page.click("#more")
        wait_results(page, f"{shown} results")
    page.wait_for_selector("#more", state="hidden")
    assert len({c["id"] for c in cards(page)}) == PICTURES + SOUNDS
    assert page.text_content("#depth") == "That is every match."

    def shallow(route) -> None:
        response = route.fetch()
        route.fulfill(response=response, json={**response.json(), "max_depth": 10})

    limited = open_page("about:blank")
    limited.route("**/health", shallow)
    limited.goto(f"{server}/?q=sky&k=6")
    wait_results(limited, "6 results")
    limited.click("#more")
    wait_results(limited, "10 results")
    assert limited.is_hidden("#more")
    assert limited.text_content("#depth") == "Showing the first 10 results, the most a query pages through."


def focused(page) -> dict:
    return page.evaluate("""() => {
        const e = document.activeElement, style = getComputedStyle(e);
        return {id: e.id, label: e.getAttribute('aria-label') || e.textContent.trim().slice(0, 40),
                tag: e.tagName.toLowerCase(),
                outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2};
    }""")


def test_every_action_by_keyboard_with_a_visible_focus(open_page, server: str) -> None:
    page = open_page(server)
    ready(page)
    order = []
    for _ in range(6):
        page.keyboard.press("Tab")
        order.append(focused(page))
    assert [f["id"] or f["label"] for f in order] == ["Skip to results", "query", "search-button", "choose-file",
                                                     "", "k"]
    assert order[4]["tag"] == "input" and all(f["outline"] for f in order)
    page.focus("#query")
    page.keyboard.type("a red circle")
    page.keyboard.press("Enter")
    wait_results(page, "for “a red circle”")
    shown = cards(page)
    page.focus("#k")
    steps = []
    for _ in range(4):
        page.keyboard.press("Tab")
        steps.append(focused(page))
    expected = [f"Open {shown[0]['name']}", f"More like this: {shown[0]['name']}"]
    if shown[0]["audio"]:
        expected.append(f"Play {shown[0]['name']}")
    expected.append(f"Open {shown[1]['name']}")
    assert [s["label"] for s in steps][: len(expected)] == expected and all(s["outline"] for s in steps)

    page.focus(".card a.open")
    columns = page.evaluate("getComputedStyle(document.querySelector('#results')).gridTemplateColumns.split(' ')"
                            ".length")
    assert columns >= 3
    for key, index in [("ArrowRight", 1), ("ArrowDown", 1 + columns), ("ArrowLeft", columns), ("End", len(shown) - 1),
                       ("Home", 0), ("ArrowRight", 1)]:
        page.keyboard.press(key)
        assert focused(page)["label"] == f"Open {shown[index]['name']}"
    page.keyboard.press("Enter")
    assert viewer(page)["title"] == shown[1]["name"] and focused(page)["id"] == "viewer-close"
    page.keyboard.press("ArrowRight")
    page.wait_for_function("name => document.querySelector('#viewer-title').textContent === name",
                           arg=shown[2]["name"])
    assert params(page)["item"] == str(shown[2]["id"])
    inside = []
    for _ in range(5):
        page.keyboard.press("Tab")
        inside.append(focused(page))
    assert [f["id"] for f in inside][:4] == ["viewer-prev", "viewer-like", "viewer-download", "viewer-next"]
    assert all(f["outline"] for f in inside[:4])
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.querySelector('#viewer').open")
    assert focused(page)["label"] == f"Open {shown[2]['name']}"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # "More like this" on the focused card
    wait_results(page, f"like {shown[2]['name']}")


def axe_violations(page) -> list[str]:
    axe = pytest.importorskip("axe_playwright_python.sync_playwright")
    results = axe.Axe().run(page)
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes: {v['nodes'][0]['target']})"
            for v in results.response["violations"]]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_violations(open_page, server: str, scheme: str) -> None:
    page = open_page(server, scheme=scheme)
    ready(page)
    assert axe_violations(page) == []
    search(page, "a red circle")
    assert axe_violations(page) == []
    page.click(".card a.open")
    viewer(page)
    page.wait_for_function("() => document.querySelector('#viewer-media img').complete")
    assert axe_violations(page) == []
    phone = open_page(f"{server}/?q=a+red+circle", viewport=PHONE, scheme=scheme)
    wait_results(phone)
    assert axe_violations(phone) == []


def small_png(path: Path, into: Path) -> None:
    """A screenshot quantised to 128 colours, so the docs stay small."""
    Image.open(path).convert("RGB").quantize(128, method=Image.Quantize.MEDIANCUT).save(into, optimize=True)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_phone_and_dark_mode(open_page, server: str, scheme: str, tmp_path: Path) -> None:
    phone = open_page(f"{server}/?q=the+evening+sky", viewport=PHONE, scheme=scheme)
    wait_results(phone)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    layout = phone.eval_on_selector_all(".card", "cards => cards.map(c => c.getBoundingClientRect())"
                                                 ".map(b => [b.left, b.right, b.width])")
    assert all(left >= 0 and right <= PHONE["width"] and width >= 150 for left, right, width in layout)
    assert len({round(left) for left, _, _ in layout}) == 2  # two columns
    background = phone.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    level = sum(int(v) for v in re.findall(r"\d+", background)[:3]) / 3
    assert (level < 60) if scheme == "dark" else (level > 200)
    phone.screenshot(path=str(tmp_path / f"phone-{scheme}.png"))
    phone.click(".card a.open")
    viewer(phone)
    box = phone.eval_on_selector("#viewer", "v => v.getBoundingClientRect().toJSON()")
    assert box["left"] >= 0 and box["right"] <= PHONE["width"]
    assert phone.is_visible("#viewer-like") and phone.is_visible("#viewer-close")

    desktop = open_page(f"{server}/?q=the+evening+sky&k=24", scheme=scheme)
    wait_results(desktop)
    desktop.screenshot(path=str(tmp_path / f"desktop-{scheme}.png"))
    if os.environ.get("OMNIBIND_UPDATE_SCREENSHOT") == "1":
        for name in (f"phone-{scheme}", f"desktop-{scheme}"):
            small_png(tmp_path / f"{name}.png", DOCS / f"search-{name}.png")


def one_line(text: str) -> bool:
    return "\n" not in text.strip() and len(text) < 400


def test_errors_show_one_clear_line(open_page, server: str, tmp_path: Path, media: Path) -> None:
    down = open_page("about:blank")
    down.route("**/health", lambda route: route.abort())
    down.goto(server)
    assert message(down) == ("The search service cannot be reached: check that omnibind serve is running, "
                             "then try again.")
    assert down.text_content("#status") == "Service unreachable"

    page = open_page(server)
    search(page, "a red circle")
    page.route("**/search", lambda route: route.abort())
    page.fill("#query", "a blue square")
    page.press("#query", "Enter")
    assert message(page).startswith("The search service cannot be reached") and one_line(message(page))
    page.unroute("**/search")

    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)).save(big)
    page.set_input_files("#file-input", str(big))
    assert message(page) == f"Upload refused: big.png is {big.stat().st_size / 1e6:.1f} MB, over this service's " \
                            "limit of 0.3 MB."
    notes = tmp_path / "notes.txt"
    notes.write_text("not media")
    page.set_input_files("#file-input", str(notes))
    page.wait_for_function("() => document.querySelector('#message').textContent.includes('not accepted')")
    assert message(page).startswith("Upload refused: ") and one_line(message(page))

    def generous(route) -> None:  # the page believes a bigger limit: the service's own refusal is shown
        response = route.fetch()
        route.fulfill(response=response, json={**response.json(), "max_upload_bytes": 10 * UPLOAD_LIMIT})

    trusting = open_page("about:blank")
    trusting.route("**/health", generous)
    trusting.goto(server)
    ready(trusting)
    trusting.set_input_files("#file-input", str(big))
    assert message(trusting).startswith("Upload refused: ") and one_line(message(trusting))
    assert trusting.locator(".card").count() == 0

    missing = open_page(f"{server}/?like=999999")
    assert message(missing) == "The search failed: item 999999: not in the index"
    busy = open_page("about:blank")
    busy.route("**/search", lambda route: route.fulfill(status=503, json={"detail": "decode queue: full"}))
    busy.goto(f"{server}/?q=anything")
    assert message(busy) == "The service is busy, try again in a moment: decode queue: full"
    broken = open_page("about:blank")
    broken.route("**/search", lambda route: route.fulfill(status=502, body="<html>Bad gateway</html>"))
    broken.goto(f"{server}/?q=anything")
    assert message(broken) == "The search failed on the service (HTTP 502): HTTP 502"


def test_a_query_by_an_uploaded_file_says_so(open_page, server: str, media: Path) -> None:
    page = open_page(server)
    ready(page)
    picture = media / "300x300-02.webp"
    page.set_input_files("#file-input", str(picture))
    wait_results(page, "for picture 300x300-02.webp (an uploaded file)")
    assert params(page) == {"file": "300x300-02.webp"}
    assert page.text_content("#again") == "Search again by 300x300-02.webp"
    ranking = [c["id"] for c in cards(page)]
    search(page, "a blue square")
    page.go_back()  # the file is still in this tab: its search runs again
    wait_results(page, "300x300-02.webp (an uploaded file)")
    assert [c["id"] for c in cards(page)] == ranking

    page.reload()  # a reload (or a shared link) cannot carry the file: the page says so and asks for it again
    assert "uploaded file, 300x300-02.webp" in message(page)
    assert page.text_content("#again") == "Choose 300x300-02.webp again" and page.locator(".card").count() == 0
    with page.expect_file_chooser() as chooser:
        page.click("#again")
    chooser.value.set_files(str(picture))
    wait_results(page, "an uploaded file")
    assert [c["id"] for c in cards(page)] == ranking and page.is_hidden("#message")


def test_screenshots_stay_small() -> None:
    shots = sorted(DOCS.glob("search-*-*.png"))
    if not shots:
        pytest.skip("no screenshots in docs/ yet (OMNIBIND_UPDATE_SCREENSHOT=1 writes them)")
    assert sum(path.stat().st_size for path in shots) < 600_000
    for path in shots:
        assert Image.open(io.BytesIO(path.read_bytes())).width in (DESKTOP["width"], PHONE["width"])
