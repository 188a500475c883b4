"""The demo in a real browser: headless Debian Chromium driven by Playwright.

Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it) and the Python package
playwright (no `playwright install`: the system browser is used). Skipped, with the reason, without them.

    ARASFSR_SCREENSHOT=docs/screenshot.png python -m pytest tests/test_browser.py   # also refresh the README's
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from _demo_support import demo_weights, launched_app, one_thread

pytestmark = pytest.mark.slow  # a browser and a server: minutes

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (see requirements-dev.txt)")

from PIL import Image  # noqa: E402

from demo.examples import prepare_examples  # noqa: E402

BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
PHONE = (390, 844)
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


def open_page(browser, app_url, width: int, height: int):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(60_000)
    page.goto(app_url)
    page.wait_for_selector("#face-input input[type=file]", state="attached")
    return page


@pytest.fixture
def page(browser, app_url):
    page = open_page(browser, app_url, 1280, 900)
    yield page
    page.close()


@pytest.fixture
def phone(browser, app_url):
    """A phone's viewport: 390 x 844 CSS px (iPhone 12-15)."""
    page = open_page(browser, app_url, PHONE[0], PHONE[1])
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


def test_a_large_output_shows_the_fast_preview_then_the_full_result(page):
    import arasfsr
    if not arasfsr.weights.default_weights_path("arasfsr-fast").is_file():
        pytest.skip("arasfsr-fast weights not installed")
    assert "Large outputs" in page.locator("#fast-note").inner_text()
    page.set_input_files("#face-input input[type=file]", str(prepare_examples()["grace_hopper_64"]))
    # the upload first (its handler sets the size line; a scale typed before it lands can be lost)
    page.wait_for_function("document.querySelector('#output-size').innerText.includes('Output: 256 x 256')")
    scale = page.locator("#scale input[type=number]")
    scale.fill("9")
    scale.press("Enter")
    page.wait_for_function("document.querySelector('#output-size').innerText.includes('Output: 576 x 576')")
    page.click("#run")
    page.wait_for_function("document.querySelector('#info').innerText.includes('Preview by')")  # the student first
    page.wait_for_function("document.querySelector('#info').innerText.includes('576 x 576 px in')", timeout=120_000)
    assert "Preview" not in page.locator("#info").inner_text()
    page.wait_for_function(LOADED, arg="#result img")
    assert page.evaluate("document.querySelector('#result img').naturalWidth") == 576
    assert "ARASFSR x9" in page.locator("#info").inner_text()  # Auto chose ARASFSR for this clean face
    page.click("#run-full")  # the full model, whatever the Model box says: again preview, then ARASFSR
    page.wait_for_function("document.querySelector('#info').innerText.includes('Preview by')")
    page.wait_for_function("document.querySelector('#info').innerText.includes('ARASFSR x9')", timeout=120_000)
    assert page.locator(ERROR_TOAST).count() == 0


def test_bad_upload_shows_the_error(page, tmp_path):
    fake = tmp_path / "holiday.png"
    fake.write_bytes(b"this is a text file, not a PNG")
    page.set_input_files("#face-input input[type=file]", str(fake))
    toast = page.locator(ERROR_TOAST)
    toast.wait_for()
    assert "'holiday.png' is not an image" in toast.inner_text()


def test_a_typed_scale_out_of_range_is_refused_not_clamped(page):
    face = prepare_examples()["grace_hopper_64"]
    page.set_input_files("#face-input input[type=file]", str(face))
    page.wait_for_function("document.querySelector('#output-size').innerText.includes('Output: 256 x 256')")
    scale = page.locator("#scale input[type=number]")
    for typed, shown in (("100", "got 100"), ("0.5", "got 0.5")):
        scale.fill(typed)
        scale.press("Enter")
        page.wait_for_function(f"document.querySelector('#output-size').innerText.includes('{shown}')")
        assert "from 1 to 32" in page.locator("#output-size").inner_text()
        assert scale.input_value() == typed  # the page kept what was typed
        page.click("#run")
        toast = page.locator(ERROR_TOAST).last
        toast.wait_for()
        assert "from 1 to 32" in toast.inner_text() and shown in toast.inner_text()
        page.locator('[data-testid="toast-close"]').last.click()


def test_examples_show_results_without_running(page):
    page.locator("#face-examples button, #face-examples td, #face-examples .gallery-item").first.click()
    page.wait_for_function(LOADED, arg="#compare img")
    assert "x4.00" in page.locator("#info").inner_text()


# ----------------------------------------------------------------------------- phone width
def test_phone_every_tab_is_reachable_and_no_header_is_clipped(phone):
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE[0]  # no sideways scrolling
    for heading in phone.locator("#intro h1, #intro h2").all():
        box = heading.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE[0]
        assert heading.evaluate("h => h.scrollWidth <= h.clientWidth")  # nothing cut off inside it
    for label, content in ((("Whole photo", "#photo-input"), ("Video", "#video-input"), ("Robustness", "#rob-input"),
                            ("Face", "#face-input"))):
        tab = phone.get_by_role("tab", name=label)
        assert tab.is_visible(), f"the {label} tab is hidden at {PHONE[0]} px"
        box = tab.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE[0]
        tab.click()
        phone.locator(content).wait_for(state="visible")
        assert phone.locator(content).bounding_box()["width"] <= PHONE[0]


def test_phone_result_is_scrolled_into_view_after_a_run(phone, tmp_path):
    face = prepare_examples()["grace_hopper_64"]
    phone.set_input_files("#face-input input[type=file]", str(face))
    phone.wait_for_function("document.querySelector('#output-size').innerText.includes('Output: 256 x 256')")
    phone.evaluate("document.querySelector('#run').scrollIntoView({block: 'end'})")  # Run at the bottom edge
    assert phone.locator("#compare").evaluate("e => e.getBoundingClientRect().top") > PHONE[1]  # below the fold
    phone.click("#run")
    phone.wait_for_function(LOADED, arg="#compare img")
    phone.wait_for_function("(() => { const r = document.querySelector('#compare').getBoundingClientRect(); "
                            "return r.top >= -1 && r.top < 60; })()", timeout=10_000)  # at the top of the screen
    save_screenshot(phone, tmp_path / "phone.png")
    if os.environ.get("ARASFSR_SCREENSHOT_PHONE"):
        save_screenshot(phone, Path(os.environ["ARASFSR_SCREENSHOT_PHONE"]))


def test_stop_ends_a_long_run_and_frees_the_server(page):
    """Stop during a 1 MP run: the page stops waiting, the run itself ends (the server, in this
    process, goes idle: Gradio's cancel alone leaves the thread computing), and the next run goes through."""
    big = prepare_examples()["grace_hopper_256"]
    page.set_input_files("#face-input input[type=file]", str(big))
    page.wait_for_function("document.querySelector('#output-size').innerText.includes('Output: 1024 x 1024')")
    page.click("#run")
    page.wait_for_function("document.body.innerText.includes('s left)')")  # the progress estimate is shown
    page.click("#stop")
    # the run ends at its next chunk of queries: poll the server's CPU use in 1 s windows; a busy
    # machine makes a chunk slower, so allow 15 s (the whole 1 MP run takes longer than that here)
    deadline, busy = time.perf_counter() + 15, 1.0
    while busy >= 0.3 and time.perf_counter() < deadline:
        cpu, wall = time.process_time(), time.perf_counter()
        time.sleep(1)
        busy = (time.process_time() - cpu) / (time.perf_counter() - wall)
    assert busy < 0.3, f"the server still computes 15 s after Stop ({busy:.0%} of a core)"
    small = prepare_examples()["grace_hopper_64"]
    page.set_input_files("#face-input input[type=file]", str(small))
    page.wait_for_function("document.querySelector('#output-size').innerText.includes('Output: 256 x 256')")
    page.click("#run")
    page.wait_for_function("document.querySelector('#info').innerText.includes('256 x 256 px')", timeout=15_000)


def test_a_clip_plays_before_and_after_and_a_non_video_is_refused(page, tmp_path):
    from test_video import moving_face, write_clip

    clip = write_clip(tmp_path / "clip.mp4", frames=3, size=(96, 128), frame_fn=moving_face)
    page.locator("#tab-video-button").click()
    page.locator("#video-input").wait_for(state="visible")
    page.set_input_files("#video-input input[type=file]", str(clip))
    page.locator("#video-input video").wait_for(state="attached")
    page.click("#video-run")
    playable = ("(selector) => { const v = document.querySelector(selector); "
                "return v && v.readyState >= 1 && v.videoWidth > 0; }")
    for side in ("#video-before video", "#video-after video"):
        page.wait_for_function(playable, arg=side)  # the browser decoded the H.264 it was sent
        assert page.evaluate(f"document.querySelector('{side}').videoWidth") == 256
    page.wait_for_function("document.querySelector('#video-report').innerText.includes('3 frames')")
    assert page.locator("#video-download").inner_text().count(".mp4") >= 1
    assert page.locator(ERROR_TOAST).count() == 0
    fake = tmp_path / "holiday.mp4"
    fake.write_text("not a video\n" * 20)
    page.reload()  # a fresh Video tab: once a clip is in, the upload field gives way to the player
    page.locator("#tab-video-button").click()
    page.locator("#video-input").wait_for(state="visible")
    page.set_input_files("#video-input input[type=file]", str(fake))
    page.click("#video-run")
    # the browser may say first that it cannot play the file; the server's reason follows
    page.locator(ERROR_TOAST, has_text="not a video").wait_for()
