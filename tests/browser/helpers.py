"""Helpers of the browser tests: screen sizes, tabs, a page that records what it loads."""

import socket
import time
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
#: the two screens the app must fit: a classroom projector and a desktop monitor
SIZES = {"1280x720": {"width": 1280, "height": 720}, "1920x1080": {"width": 1920, "height": 1080}}
TABS = {
    "Flight": "flight",
    "Train & prune": "train",
    "Sparsity explorer": "explorer",
    "Motifs": "motifs",
    "Fly": "fly",
}


def wait_until(fn, timeout=60.0, every=0.25):
    end = time.time() + timeout
    while time.time() < end:
        value = fn()
        if value:
            return value
        time.sleep(every)
    return fn()


class Watched:
    """A page plus everything it asked the network for and every console error."""

    def __init__(self, browser, url, size="1280x720", wait_for="text=MothLab", context=None):
        self.context = context or browser.new_context(viewport=SIZES[size])
        self.page = self.context.new_page()
        self.host = urlparse(url).hostname
        self.requests, self.failed, self.errors = [], [], []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url)
        if wait_for:
            self.page.locator(wait_for).first.wait_for(timeout=120_000)

    def external(self):
        return [
            u
            for u in self.requests
            if urlparse(u).scheme not in ("data", "blob")
            and urlparse(u).hostname not in (self.host, "localhost", "127.0.0.1")
        ]

    def tab(self, name):
        click_tab(self.page, name)

    def check_clean(self, ignore_failed=()):
        assert self.external() == [], f"requests left the machine: {self.external()}"
        failed = [f for f in self.failed if not any(s in f for s in ignore_failed)]
        assert failed == [], f"failed requests: {failed}"
        assert self.errors == [], f"console errors: {self.errors}"

    def close(self):
        self.context.close()


def click_tab(page, name, settle=1.0):
    """Click the app's tab called ``name`` (a Bokeh tab header, not any text that says it)."""
    page.locator(".bk-tab", has_text=name).first.click()
    # tabs other than Flight are built when first shown: wait until the placeholder is replaced
    # (a screenshot of "Opening Sparsity explorer…" was taken under load)
    wait_until(lambda: not page.get_by_text(f"Opening {name}…").first.is_visible(), 120)
    time.sleep(settle)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
