"""The demo in a real browser: headless Debian Chromium driven by Playwright.

Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it) and the Python package
playwright (no `playwright install`: the system browser is used). Skipped, with the reason, without them.

    ARASFSR_SCREENSHOT=docs/screenshot.png python -m pytest tests/test_browser.py   # also refresh the README's
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from _demo_support import demo_weights, launched_app, one_thread

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (see requirements-dev.txt)")

from PIL import Image  # noqa: E402

from demo.examples import prepare_examples  # noqa: E402

BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ERROR_TOAST = '[data-testid="toast-body"].error'
LOADED = "(selector) => { const i = document.querySelector(selector); return i && i.complete && i.naturalWidth > 0; }"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    with demo_weights(tmp_path_factory.mktemp("weights")), one_thread(), launched_app() as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=BROWSER_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, app_url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(60_000)
    page.goto(app_url)
    page.wait_for_selector("#face-input input[type=file]", state="attached")
    yield page
    page.close()


def save_screenshot(page, path: Path) -> None:
    """Full-page PNG, reduced to 256 colours so it stays small enough for the README."""
    page.screenshot(path=str(path), full_page=True)
    Image.open(path).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def test_upload_scale_run_shows_the_output(page, tmp_path):
    face = prepare_examples()["grace_hopper_64"]
    page.set_input_files("#face-input input[type=file]", str(face))
    page.wait_for_function("document.querySelector('#output-size').innerText.includes('Output: 256 x 256')")
    scale = page.locator("#scale input[type=number]")
    scale.fill("2.5")
    scale.press("Enter")
    page.wait_for_function("document.querySelector('#output-size').innerText.includes('Output: 160 x 160')")
    page.click("#run")
    page.wait_for_function(LOADED, arg="#result img")
    assert page.evaluate("document.querySelector('#result img').naturalWidth") == 160
    page.wait_for_function(LOADED, arg="#zoom img")
    page.wait_for_function("document.querySelector('#info').innerText.includes('160 x 160 px')")
    assert page.locator("#download").inner_text().count(".png") >= 1
    assert page.locator(ERROR_TOAST).count() == 0
    save_screenshot(page, tmp_path / "demo.png")
    if os.environ.get("ARASFSR_SCREENSHOT"):
        save_screenshot(page, Path(os.environ["ARASFSR_SCREENSHOT"]))


def test_bad_upload_shows_the_error(page, tmp_path):
    fake = tmp_path / "holiday.png"
    fake.write_bytes(b"this is a text file, not a PNG")
    page.set_input_files("#face-input input[type=file]", str(fake))
    toast = page.locator(ERROR_TOAST)
    toast.wait_for()
    assert "'holiday.png' is not an image" in toast.inner_text()
