"""The page of ``fmnist-edge serve`` in a real headless browser: Debian's chromium, driven by
Playwright (which is never allowed to download a browser of its own).

``make test`` installs chromium (``make tools-test``); without it these tests fail, they do not
skip. The live-camera test saves a screenshot of the page to ``artifacts/serve.png`` for the
report.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_runtime.atomic import atomic_path
from edge_runtime.vocab import ARTIFACTS
from tests.helpers import ROOT, TINY_INT8, live_server, scene, write_video

INT8 = TINY_INT8
TOKEN = "a-browser-token"

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a root, offline, headless machine: no sandbox (root), no GPU, and none of the
# background connections a closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LABEL_WAIT_MS = 15_000


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no chromium at {CHROMIUM}: run `make tools-test` (apt-get install chromium)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A catalogue-style photo: a dark trouser-like shape on white."""
    shot = np.full((400, 300, 3), 250, np.uint8)
    shot[40:360, 90:145] = (40, 40, 60)
    shot[40:360, 155:210] = (40, 40, 60)
    shot[40:80, 90:210] = (40, 40, 60)
    path = tmp_path_factory.mktemp("photo") / "trousers.png"
    Image.fromarray(shot).save(path)
    return path


def wait_until(page, expression: str, timeout_s: float = LABEL_WAIT_MS / 1000) -> None:
    """Poll a JavaScript expression until it is true. (Playwright's wait_for_function evaluates
    strings with eval, which the page's Content-Security-Policy rightly forbids.)"""
    deadline = time.time() + timeout_s
    while not page.evaluate(expression):
        assert time.time() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.1)


def labels_from(page, selector: str) -> str:
    return page.locator(selector).first.inner_text(timeout=LABEL_WAIT_MS)


def test_upload_a_photo_through_the_form_and_by_drop(page, photo: Path):
    with live_server("--model", str(INT8)) as (url, _):
        page.goto(url)
        page.locator("#main").wait_for(state="visible")
        assert page.locator("#live").is_hidden(), "no camera, no live panel"
        page.set_input_files("#files", str(photo))
        label = labels_from(page, ".result .label")
        classes = page.evaluate("fetch('/api/info').then(r => r.json()).then(i => i.model.labels)")
        assert label.rsplit(" ", 1)[0] in classes and label.endswith("%")
        seen = page.locator(".result img.seen").first
        seen.wait_for(state="visible")
        assert page.evaluate("(img) => img.naturalWidth", seen.element_handle()) == 28
        # Drag and drop: a DataTransfer holding the same file, dropped on the zone.
        drop = page.evaluate_handle(
            """(bytes) => {
                const transfer = new DataTransfer();
                transfer.items.add(new File([new Uint8Array(bytes)], "dropped.png", {type: "image/png"}));
                return transfer;
            }""",
            list(photo.read_bytes()),
        )
        page.dispatch_event("#drop", "drop", {"dataTransfer": drop})
        page.locator(".result", has_text="dropped.png").wait_for(timeout=LABEL_WAIT_MS)
        assert labels_from(page, ".result .label") == label


def test_live_stream_and_changing_label(page, photo: Path, tmp_path: Path, two_classes):
    """A video alternating two items: the stream shows, and the live label follows it."""
    frames = [scene(two_classes[0])] * 20 + [scene(two_classes[1])] * 20  # 1 s each at 20 FPS
    clip = write_video(tmp_path / "two.avi", frames, fps=20)
    captures = ("--capture", str(tmp_path / "captures"), "--capture-below", "1")
    with live_server("--model", str(INT8), "--source", str(clip), "--loop", *captures) as (url, _):
        page.goto(url)
        page.locator("#live").wait_for(state="visible")
        wait_until(page, "document.getElementById('stream').naturalWidth === 640")
        seen, deadline = [], time.time() + 12
        while time.time() < deadline and len(set(seen) - {"–"}) < 2:
            seen.append(page.locator("#live-label").inner_text())
            time.sleep(0.2)
        assert len(set(seen) - {"–"}) >= 2, f"the label never changed: {seen}"
        assert page.locator("#camera-state").inner_text() == "up"
        assert float(page.locator("#live-fps").inner_text()) > 5
        page.set_input_files("#files", str(photo))
        labels_from(page, ".result .label")
        page.locator(".capture").nth(1).wait_for(timeout=LABEL_WAIT_MS)  # the captured panel
        with atomic_path(ROOT / ARTIFACTS / "serve.png") as shot:
            page.screenshot(path=str(shot), full_page=True)


def test_label_a_capture_by_clicking(page, tmp_path: Path, two_classes):
    """The camera captures what it is unsure of; a click files a capture for training."""
    frames = [scene(two_classes[0])] * 20 + [scene(two_classes[1])] * 20
    clip = write_video(tmp_path / "two.avi", frames, fps=20)
    folder = tmp_path / "captures"
    args = ("--source", str(clip), "--loop", "--capture", str(folder), "--capture-below", "1")
    with live_server("--model", str(INT8), "--token", TOKEN, *args) as (url, _):
        page.goto(url)
        page.fill("#token", TOKEN)
        page.click("#login-form button")
        card = page.locator(".capture").first
        card.wait_for(timeout=LABEL_WAIT_MS)
        capture = card.get_attribute("data-id")
        assert (folder / capture / "frame.jpg").is_file()
        wait_until(page, "document.querySelector('.capture img.frame').naturalWidth === 640")
        card.get_by_role("button", name="Trouser", exact=True).click()
        deadline = time.time() + 10
        while not (folder / "labelled" / "pants" / capture / "capture.json").is_file():
            assert time.time() < deadline, "the click did not file the capture"
            time.sleep(0.1)
        assert not (folder / capture).exists()
        page.locator(f".capture[data-id='{capture}']").wait_for(state="detached")
        second = page.locator(".capture").first
        second.wait_for(timeout=LABEL_WAIT_MS)
        other = second.get_attribute("data-id")
        second.get_by_role("button", name="delete").click()
        page.locator(f".capture[data-id='{other}']").wait_for(state="detached")
        assert not (folder / other).exists()
        assert "labelled" in page.locator("#capture-state").inner_text()


def test_token_prompt_then_cookie_for_the_stream(page, tmp_path: Path, two_classes):
    clip = write_video(tmp_path / "one.avi", [scene(two_classes[0])] * 20, fps=20)
    with live_server("--model", str(INT8), "--source", str(clip), "--loop", "--token", TOKEN) as (
        url,
        _,
    ):
        page.goto(url)
        page.locator("#login").wait_for(state="visible")
        assert page.locator("#main").is_hidden()
        page.fill("#token", "not-the-token")
        page.click("#login-form button")
        page.locator("#login-error", has_text="not this server's").wait_for()
        page.fill("#token", TOKEN)
        page.click("#login-form button")
        page.locator("#main").wait_for(state="visible")
        # The <img> cannot send a header: the stream arrives through the HttpOnly cookie.
        wait_until(page, "document.getElementById('stream').naturalWidth > 0")
        cookies = page.context.cookies()
        assert [c["httpOnly"] for c in cookies] == [True]
        assert page.evaluate("document.cookie") == "", "scripts cannot read the session"
