"""The served app in a real browser: Playwright driving Debian's chromium.

Every tab loads with zero console errors and zero failed or external requests (the app must work
offline); the sparsity slider changes the graph; the flight animation advances; a tiny training
job started from the page finishes and its experiment appears in the explorer, while a second
browser session stays responsive. Screenshots of every tab go to assets/screenshots/.
"""

import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Debian's chromium is not installed at /usr/bin/chromium "
                              "(apt-get install -y chromium)"),
]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[2] / "assets" / "screenshots"
TABS = {"Flight": "flight", "Train & prune": "train", "Sparsity explorer": "explorer",
        "Motifs": "motifs"}


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


class Watched:
    """A page plus everything it asked the network for and every console error."""

    def __init__(self, browser, url):
        self.page = browser.new_page(viewport={"width": 1500, "height": 1100})
        self.host = urlparse(url).hostname
        self.requests, self.failed, self.errors = [], [], []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url)
        self.page.get_by_text("MothLab", exact=True).first.wait_for(timeout=90_000)

    def external(self):
        return [u for u in self.requests
                if urlparse(u).scheme not in ("data", "blob")
                and urlparse(u).hostname not in (self.host, "localhost", "127.0.0.1")]

    def tab(self, name):
        self.page.get_by_text(name, exact=True).first.click()
        time.sleep(1.0)

    def check_clean(self):
        assert self.external() == [], f"requests left the machine: {self.external()}"
        assert self.failed == [], f"failed requests: {self.failed}"
        assert self.errors == [], f"console errors: {self.errors}"

    def close(self):
        self.page.close()


def wait_until(fn, timeout=60.0, every=0.25):
    end = time.time() + timeout
    while time.time() < end:
        value = fn()
        if value:
            return value
        time.sleep(every)
    return fn()


def test_every_tab_loads_offline_and_screenshots(browser, served_app):
    w = Watched(browser, served_app)
    try:
        # the flight appears once the simulator is compiled (cached on disk after first use)
        w.page.get_by_text("State versus time").first.wait_for(timeout=30_000)
        wait_until(lambda: not w.page.get_by_text("Compiling the simulator").is_visible(), 240)
        SHOTS.mkdir(parents=True, exist_ok=True)
        w.page.get_by_role("button", name="pitch-up").click()  # a manoeuvre that shows trails
        time.sleep(0.5)
        w.page.locator("button.last").first.click()
        for name, slug in TABS.items():
            w.tab(name)
            time.sleep(1.5)
            w.page.screenshot(path=str(SHOTS / f"{slug}.png"), full_page=True)
        w.check_clean()
    finally:
        w.close()


def test_flight_animation_advances(browser, served_app):
    w = Watched(browser, served_app)
    try:
        wait_until(lambda: not w.page.get_by_text("Compiling the simulator").is_visible(), 240)
        w.page.get_by_role("button", name="free-fall").click()
        frame = w.page.locator("input[type=range]").first
        moth = w.page.locator(".mothlab-moth").first
        before = moth.screenshot()
        assert frame.input_value() == "0"
        w.page.locator("button.play").first.click()
        assert wait_until(lambda: int(frame.input_value()) >= 5, 30), "animation did not advance"
        w.page.locator("button.pause").first.click()
        time.sleep(0.5)
        assert moth.screenshot() != before  # the moth moved on screen
        w.check_clean()
    finally:
        w.close()


def test_sparsity_slider_changes_graph(browser, served_app):
    w = Watched(browser, served_app)
    try:
        w.tab("Sparsity explorer")
        summary = w.page.locator(".graph-summary").first
        summary.wait_for(timeout=30_000)
        first = summary.inner_text()
        graph = w.page.locator(".mothlab-graph").first
        before = graph.screenshot()
        track = w.page.locator(".noUi-target:visible").first  # the explorer's sparsity slider
        box = track.bounding_box()
        handle = track.locator(".noUi-handle").first.bounding_box()
        y = handle["y"] + handle["height"] / 2
        w.page.mouse.move(handle["x"] + handle["width"] / 2, y)
        w.page.mouse.down()  # drag to the sparsest level
        w.page.mouse.move(box["x"] + box["width"] + 20, y, steps=8)
        w.page.mouse.up()
        assert wait_until(lambda: summary.inner_text() != first, 20), "graph did not change"
        last = w.page.locator(".noUi-target:visible").first.locator(".noUi-handle").first
        assert wait_until(lambda: last.get_attribute("aria-valuenow")
                          == last.get_attribute("aria-valuemax"), 10)
        time.sleep(0.5)
        assert graph.screenshot() != before
        w.check_clean()
    finally:
        w.close()


def test_training_from_page_while_another_session_stays_responsive(browser, served_app):
    a = Watched(browser, served_app)
    b = None
    try:
        a.tab("Train & prune")
        a.page.get_by_role("button", name="tiny", exact=True).click()
        name = a.page.get_by_label("experiment name").first
        name.fill("from-browser")
        name.press("Enter")
        time.sleep(0.5)
        a.page.get_by_role("button", name="Start training").click()
        a.page.get_by_text("from-browser").first.wait_for(timeout=30_000)

        # a second session while the job runs: it sees the job and its page still reacts
        b = Watched(browser, served_app)
        b.tab("Train & prune")
        b.page.get_by_text("from-browser").first.wait_for(timeout=30_000)
        b.tab("Flight")
        wait_until(lambda: not b.page.get_by_text("Compiling the simulator").is_visible(), 240)
        frame = b.page.locator("input[type=range]").first
        b.page.locator("button.next").first.click()
        assert wait_until(lambda: frame.input_value() == "1", 15), "second session froze"
        b.page.get_by_role("button", name="climb").click()
        t0 = time.time()
        b.page.get_by_role("button", name="hover").click()
        assert time.time() - t0 < 30

        done = wait_until(lambda: a.page.get_by_text("Saved to").count() > 0
                          or a.page.get_by_text("The run failed").count() > 0, 400, 1.0)
        assert done and a.page.get_by_text("Saved to").count() > 0, \
            a.page.locator("body").inner_text()[:2000]
        time.sleep(1.0)
        a.page.screenshot(path=str(SHOTS / "train.png"), full_page=True)
        # the finished experiment appears in the explorer of the other session
        b.tab("Sparsity explorer")
        select = b.page.locator("select").first
        assert wait_until(lambda: "from-browser" in select.inner_text(), 30)
        for w in (a, b):
            w.check_clean()
    finally:
        a.close()
        if b is not None:
            b.close()
