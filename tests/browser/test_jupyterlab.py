"""The app in a real JupyterLab, driven by chromium: app/mothlab.ipynb runs top to bottom, every
tab renders and responds, and nothing leaves localhost (the notebook must work offline too).

What broke here before: the Flight plots stayed blank (what a periodic callback drew never reached
the page), and restyled components asked Panel's CDN for loading.css/default.css/native.css.
"""

import io

import pytest
from helpers import SIZES, TABS, Watched, click_tab, wait_until

pytestmark = pytest.mark.timeout(900)

# run code in the notebook's kernel and hand back repr(value) through a file (the kernel's stdout
# may be captured by Panel while it handles messages)
KERNEL_EXEC = """async (code) => {
  const kernel = window._mothlabNotebook.sessionContext.session.kernel;
  const future = kernel.requestExecute({code, silent: true, store_history: false});
  await future.done;
  return true; }"""


class Lab:
    def __init__(self, browser, jupyter_lab, size="1280x720"):
        base, token, self.root = jupyter_lab
        url = f"{base}/lab/tree/mothlab.ipynb?reset&token={token}"
        self.w = Watched(browser, url, size=size, wait_for=None)
        self.page = self.w.page
        self.page.wait_for_function(
            "window.jupyterapp && window.jupyterapp.shell.currentWidget"
            " && window.jupyterapp.shell.currentWidget.sessionContext"
            " && window.jupyterapp.shell.currentWidget.sessionContext.session"
            " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
            timeout=180_000,
        )
        self.page.evaluate("window._mothlabNotebook = window.jupyterapp.shell.currentWidget")
        assert wait_until(
            lambda: (
                self.page.evaluate("window._mothlabNotebook.sessionContext.session.kernel.status")
                == "idle"
            ),
            180,
            1,
        )

    def kernel(self, expr: str):
        """``repr(expr)`` evaluated in the kernel (a traceback text when it raised)."""
        out = self.root / "kernel-value.txt"
        out.unlink(missing_ok=True)
        code = (
            "import traceback as _tb\ntry:\n    _v = repr(" + expr + ")\nexcept Exception:\n"
            "    _v = _tb.format_exc()\nopen(" + repr(str(out)) + ", 'w').write(_v)"
        )
        self.page.evaluate(KERNEL_EXEC, code)
        return out.read_text()

    def run_all(self):
        self.page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        errors = self.page.locator(".jp-OutputArea-output[data-mime-type*='error']")
        assert wait_until(
            lambda: errors.count() > 0 or self.page.locator(".mothlab-moth").count() > 0, 300, 1
        )
        assert errors.count() == 0, errors.first.inner_text()
        assert wait_until(lambda: self.kernel("lab.flight.n_draws >= 1") == "True", 300, 1), (
            self.kernel("lab.flight._status.object")
        )


def colourful_pixels(png: bytes) -> int:
    """Pixels that are neither grey nor white: the moth's orange and blue bodies, the red arrow."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)
    return int(((rgb.max(axis=2) - rgb.min(axis=2)) > 60).sum())


def test_notebook_app_renders_and_responds_offline(browser, jupyter_lab, shots):
    lab = Lab(browser, jupyter_lab)
    page = lab.page
    try:
        lab.run_all()
        print("notebook ran", flush=True)
        # the Flight plot draws without any click (it is drawn by a periodic callback)
        moth = page.locator(".mothlab-moth").first
        moth.scroll_into_view_if_needed()
        assert wait_until(lambda: colourful_pixels(moth.screenshot()) > 2000, 60, 1), (
            "the Flight plot stayed blank"
        )
        print("flight drawn", flush=True)
        # a preset button reaches the kernel, which flies again and redraws the page
        n = int(lab.kernel("lab.flight.n_draws"))
        before = moth.screenshot()
        page.get_by_role("button", name="pitch-up").first.click()
        assert wait_until(lambda: lab.kernel("lab.flight.preset") == "'pitch-up'", 30)
        assert wait_until(lambda: int(lab.kernel("lab.flight.n_draws")) > n, 30)
        assert wait_until(lambda: moth.screenshot() != before, 30), "the plot did not redraw"
        # a slider moved with the keyboard reaches the kernel (ẋ₀ is the first slider)
        handle = page.locator(".noUi-handle:visible").first
        handle.scroll_into_view_if_needed()
        handle.focus()
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        assert wait_until(lambda: float(lab.kernel("lab.flight.setup.xd0")) > 0, 30), (
            "a slider change did not reach the kernel"
        )
        print("slider reached the kernel", flush=True)
        # the explorer scrubs: End moves its sparsity slider to the sparsest level
        click_tab(page, "Sparsity explorer")
        summary = page.locator(".explorer-caption b").first
        summary.wait_for(timeout=60_000)
        first = summary.inner_text()
        level0 = int(lab.kernel("lab.explorer.level"))
        slider = page.locator(".mothlab-level .noUi-handle").first
        if slider.count() == 0:
            slider = page.locator(".noUi-handle:visible").first
        slider.scroll_into_view_if_needed()
        slider.focus()
        page.keyboard.press("End")
        assert wait_until(lambda: int(lab.kernel("lab.explorer.level")) != level0, 30), (
            "the explorer's slider did not reach the kernel"
        )
        assert wait_until(lambda: summary.inner_text() != first, 30), "the graph did not change"
        print("explorer scrubbed", flush=True)
        # every tab renders; screenshots at both screen sizes
        for size, viewport in SIZES.items():
            page.set_viewport_size(viewport)
            for name, slug in TABS.items():
                click_tab(page, name, settle=2.0)
                page.locator(".bk-tab", has_text=name).first.scroll_into_view_if_needed()
                page.screenshot(path=str(shots / f"lab-{slug}-{size}.png"))
        assert lab.kernel("lab.train.job is None or lab.train.job.error is None") == "True"
        # JupyterLab's own workspace/settings calls may 404 in a private config: not ours
        lab.w.check_clean(ignore_failed=("/lab/api/", "/api/"))
    finally:
        lab.w.close()
