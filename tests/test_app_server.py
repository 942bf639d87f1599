"""The app as served by ``panel serve app``, fetched over HTTP and WebSocket (no browser): the
page carries the app itself (its tabs, the flight figure), only local resources, and the server
refuses a session to a page of another origin."""

import re
import urllib.request

import pytest


def _get(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.status, r.read().decode("utf-8", "replace")


def test_page_uses_local_resources_only(served_app):
    status, html = _get(served_app)
    assert status == 200 and "<title>MothLab</title>" in html
    assert "could not start" not in html
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("bokeh" in u for u in urls)
    external = [u for u in urls if u.startswith(("http:", "https:", "//"))]
    assert external == [], f"resources fetched from elsewhere: {external}"
    assert "fonts.googleapis" not in html and "cdn.jsdelivr" not in html


def _in_own_loop(fn):
    """Run ``fn`` in a thread with an event loop of its own: the browser tests' Playwright (sync
    API) keeps an asyncio loop on the main thread for the whole session."""
    import asyncio
    import concurrent.futures

    def run():
        asyncio.set_event_loop(asyncio.new_event_loop())
        return fn()

    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        return ex.submit(run).result()


def test_session_document_is_the_app_with_local_styles(served_app):
    _in_own_loop(lambda: _check_session_document(served_app))


def _check_session_document(served_app):
    """A session pulled over the WebSocket holds the app itself: every tab, the Flight figure
    (the other tabs are built when first shown); and every stylesheet it links is served by this server (offline)."""
    import panel.models  # noqa: F401 - Panel's Bokeh models, to read the document
    from bokeh.client import pull_session
    from bokeh.models import ImportedStyleSheet, TabPanel

    import mothlab.ui.app  # noqa: F401 - the app's own components (SessionOwner)

    with pull_session(url=served_app) as session:
        doc = session.document
        titles = [t.title for t in doc.select({"type": TabPanel})]
        for title in ("Flight", "Train & prune", "Sparsity explorer", "Motifs"):
            assert title in titles, titles
        classes = {
            c
            for m in doc.roots
            for sub in m.references()
            for c in (getattr(sub, "css_classes", None) or [])
        }
        # the first page is the Flight tab; the others are built when first shown
        assert "mothlab-moth" in classes and "mothlab-loss" not in classes
        sheets = [
            s.url for m in doc.roots for s in m.references() if isinstance(s, ImportedStyleSheet)
        ]
        assert sheets and not [u for u in sheets if u.startswith(("http:", "https:", "//"))]


def test_static_resources_are_served(served_app):
    status, html = _get(served_app)
    base = served_app.rsplit("/", 1)[0]
    for path in re.findall(r'src="(static/[^"]+)"', html)[:3]:
        code, body = _get(f"{base}/{path}")
        assert code == 200 and len(body) > 1000


def test_every_session_gets_its_own_page(served_app):
    # two sessions in a row: both rendered (the server keeps serving after the first)
    for _ in range(2):
        status, html = _get(served_app)
        assert status == 200 and "MothLab" in html


@pytest.mark.parametrize("origin", ["http://evil.example", "http://localhost:1"])
def test_websocket_from_another_origin_is_refused(served_app, origin):
    from tornado import httpclient, websocket
    from tornado.ioloop import IOLoop

    ws_url = served_app.replace("http://", "ws://") + "/ws"

    async def connect():
        req = httpclient.HTTPRequest(ws_url, headers={"Origin": origin})
        return await websocket.websocket_connect(req)

    with pytest.raises(httpclient.HTTPClientError) as err:
        _in_own_loop(lambda: IOLoop.current().run_sync(connect, timeout=30))
    assert err.value.code == 403


def test_bench_readme_renders_the_app_record_with_its_goals(tmp_path):
    """``mothlab bench readme`` shows the app record: its table, the first page's steps and the
    goals of issue 8, each met or not met."""
    import json

    from mothlab.bench import read_records
    from mothlab.bench.readme import section

    stat = lambda m: {"median_ms": m, "p95_ms": m * 1.5, "n": 30}  # noqa: E731
    rec = {
        "bench": "app",
        "command": "mothlab bench app",
        "date": "2026-12-02 04:00 UTC",
        "device": "cpu (cpu)",
        "cpu": "x",
        "cores": 2,
        "memory_gib": 8,
        "load_start": [0.5],
        "load_end": [1.0],
        "versions": {"jax": "0"},
        "table": [dict(measurement="flight parameter change", median_ms=9.5, p95_ms=12.0, n=30)],
        "summary": "summary: app ok",
        "figures": {
            "server": {"explorer_step": stat(20.0), "flight_change": stat(9.5)},
            "first_page_s": 4.2,
            "first_page_how": "rendered page (chromium)",
            "listen_s": 2.0,
            "html_s": 2.9,
            "flight_drawn_s": 8.0,
            "browser": {
                "flight_frame": stat(90.0),
                "flight_slider": stat(140.0),
                "explorer_slider": stat(180.0),
            },
        },
    }
    (tmp_path / "app.json").write_text(json.dumps(rec))
    text = section(read_records(tmp_path))
    assert "### The app (`mothlab bench app`)" in text and "2026-12-02 04:00 UTC" in text
    assert "| flight parameter change | 9.5 | 12.0 | 30 |" in text
    assert "first page ≤ 5 s after `panel serve app` | 4.2 s | met |" in text
    assert "explorer sparsity slider | 180 ms (p95 270 ms) | not met |" in text
    assert "flight force slider | 140 ms (p95 210 ms) | met |" in text
    assert "server ≤ 50 ms: explorer step | 20.0 ms | met |" in text
    assert "listening 2.0 s; HTML received 2.9 s" in text and "> summary: app ok" in text


def test_served_app_uses_one_device_per_core_like_mothlab_train():
    """``panel serve app`` runs its hooks before JAX is imported: the Train tab then sees one CPU
    device per core, as ``mothlab train`` does, so either resumes the other's runs."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    hooks = Path(__file__).resolve().parents[1] / "app" / "app_hooks.py"
    code = (
        "import runpy, sys; hooks = runpy.run_path(sys.argv[1]); "
        "hooks['on_server_loaded'](None); import jax; print(jax.local_device_count())"
    )
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(hooks)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=300,
    ).stdout.split()
    assert int(out[-1]) == max(os.cpu_count() or 1, 1)
