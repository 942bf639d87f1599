"""The app as served by ``panel serve app``, fetched over HTTP (no browser)."""

import re
import urllib.request


def _get(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.status, r.read().decode("utf-8", "replace")


def test_page_is_served_with_local_resources_only(served_app):
    status, html = _get(served_app)
    assert status == 200
    assert "MothLab" in html
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("bokeh" in u for u in urls)
    external = [u for u in urls if u.startswith(("http:", "https:", "//"))]
    assert external == [], f"resources fetched from elsewhere: {external}"
    assert "fonts.googleapis" not in html and "cdn.jsdelivr" not in html
    assert "could not start" not in html


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
