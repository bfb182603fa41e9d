"""The page with a captioning index, in headless Chromium: the item view shows the caption the service generates for
the item (GET /items/{id}/caption), says so while it is being written, shows a failure as one line, stays clean under
axe-core, and shows no caption at all for an index whose model has no decoder."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from search_live_server import LiveServer
from test_search_page_browser import (
    CHROMIUM,
    PHONE,
    axe_violations,
    browser,
    one_line,
    open_page,
    viewer,
    wait_results,
)

import omnibind
from omnibind.search import Searcher, SearchIndex
from omnibind.search.service import create_app

__all__ = ["browser", "open_page"]  # fixtures shared with the page's own tests

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def captioning_server(caption_index) -> Iterator[str]:
    searcher = Searcher(SearchIndex(caption_index.index), omnibind.load(caption_index.model, kind="embedding"))
    app = create_app(searcher, generator=omnibind.load(caption_index.model, kind="generator"))
    with LiveServer(app) as url:
        yield url


@pytest.fixture(scope="module")
def plain_server(built_index) -> Iterator[str]:
    with LiveServer(create_app(Searcher(SearchIndex(built_index.index), omnibind.load(built_index.model)))) as url:
        yield url


def caption_state(page, state: str) -> str:
    page.wait_for_selector(f"#viewer-caption[data-state='{state}']:not([hidden])")
    return page.inner_text("#viewer-caption-text")


def test_the_item_view_shows_a_generated_caption(open_page, captioning_server: str) -> None:
    page = open_page(f"{captioning_server}/?q=a+red+circle")
    wait_results(page)
    first = page.locator(".card").first
    item = int(first.get_attribute("data-id"))
    first.locator("a.open").click()
    viewer(page)
    shown = caption_state(page, "done")
    answer = page.request.get(f"{captioning_server}/items/{item}/caption").json()
    assert shown == answer["caption"].strip() and shown
    assert page.inner_text("#viewer-caption-label") == "Generated caption"
    sound = page.locator(".card[data-modality='audio']").first
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.querySelector('#viewer').open")
    sound.locator("a.open").click()
    viewer(page)
    other = caption_state(page, "done")
    assert other == page.request.get(f"{captioning_server}/items/{sound.get_attribute('data-id')}/caption"
                                     ).json()["caption"].strip()


def test_the_caption_says_when_it_is_being_written_and_when_it_fails(open_page, captioning_server: str) -> None:
    page = open_page(f"{captioning_server}/?q=a+blue+square")
    wait_results(page)
    held: list = []
    page.route("**/items/*/caption", lambda route: held.append(route))
    page.locator(".card a.open").first.click()
    viewer(page)
    assert caption_state(page, "loading") == "Writing a caption…"
    page.wait_for_function("() => document.querySelector('#viewer-caption').getAttribute('aria-busy') === 'true'")
    detail = "item 1: the service is busy generating other captions (retry in 1 s)"
    held[0].fulfill(status=503, content_type="application/json", headers={"retry-after": "1"},
                    body=json.dumps({"detail": detail}))
    shown = caption_state(page, "error")
    assert shown == f"The service is busy, try again in a moment: {detail}" and one_line(shown)
    page.unroute("**/items/*/caption")
    page.route("**/items/*/caption", lambda route: route.abort())
    page.keyboard.press("ArrowRight")
    assert "cannot be reached" in caption_state(page, "error")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_violations_with_a_caption(open_page, captioning_server: str, scheme: str) -> None:
    for viewport in ({"width": 1280, "height": 860}, PHONE):
        page = open_page(f"{captioning_server}/?q=a+red+circle", viewport=viewport, scheme=scheme)
        wait_results(page)
        page.locator(".card a.open").first.click()
        viewer(page)
        caption_state(page, "done")
        page.wait_for_function("() => document.querySelector('#viewer-media img').complete")
        assert axe_violations(page) == []


def test_no_caption_without_a_decoder(open_page, plain_server: str) -> None:
    page = open_page(f"{plain_server}/?q=a+red+circle")
    wait_results(page)
    page.locator(".card a.open").first.click()
    viewer(page)
    page.wait_for_timeout(300)
    assert page.eval_on_selector("#viewer-caption", "box => box.hidden") is True
    assert page.evaluate("() => performance.getEntriesByType('resource').filter(r => r.name.includes('/caption'))"
                         ".length") == 0
