"""Shared pieces of the app: offline resources, the experiment catalog, messages, colours.

The catalog lists experiment stores (``*.zarr``) found in the embedded ``assets/`` folder and in the
experiments folder (``$MOTHLAB_EXPERIMENTS``, default ``./experiments``), loading each through the
library (:func:`mothlab.nets.load_experiment`). It is process-wide: every session sees the
experiments a training job wrote, and a broken store becomes a message, never a crash.
"""

from __future__ import annotations

import html
import os
import threading
import time
from pathlib import Path

import panel as pn

from mothlab import store
from mothlab.plots import COLORS

#: the shipped assets folder (the embedded default experiment lives there; read-only): found by
#: mothlab.store from a checkout, an installed wheel or $MOTHLAB_ASSETS
ASSETS = store.assets_path()
DEFAULT_EXPERIMENT = ASSETS / "default_experiment.zarr"

#: colours used across tabs: the one palette of mothlab.plots (Okabe–Ito, colour-blind safe)
BLUE, ORANGE, GREEN, RED, PURPLE, GREY = (COLORS[k] for k in ("blue", "orange", "green",
                                                              "vermillion", "purple", "grey"))

_CONFIGURED = False


def configure_panel() -> None:
    """Make Panel and Bokeh load every script and style from this machine (classrooms are often
    offline): no CDN, no web fonts. Idempotent.

    Served (``panel serve``): resources come from the server's own /static routes. In a notebook:
    they are inlined into the page. (Inline mode must not be used under a server: Panel then
    points lazily rendered components at its CDN.)
    """
    global _CONFIGURED
    if _CONFIGURED:
        return
    served = bool(pn.state.curdoc is not None and pn.state.curdoc.session_context is not None)
    if served:
        os.environ.setdefault("BOKEH_RESOURCES", "server")
        pn.extension(design="native", notifications=False)
    else:
        pn.config.inline = True
        pn.extension(design="native", notifications=False, inline=True)
    # The native design uses the system font stack; make sure nothing asks for a web font.
    pn.config.raw_css = list(pn.config.raw_css) + [
        "body, .bk-root { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, "
        "'Helvetica Neue', Arial, sans-serif; }"]
    _CONFIGURED = True


def pin_local_dist() -> None:
    """In a served session, tell Panel where its own CSS lives. Without a template the document
    has no ``dist_url``, and Panel then points restyled components (e.g. an Alert changing its
    type) at its CDN: a request that fails offline."""
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        return
    from panel.io.resources import get_dist_path

    doc._template_variables.setdefault("dist_url", get_dist_path(cdn=False))


def enable_compile_cache() -> None:
    """Keep JAX's compiled simulator on disk so a restarted server draws its first flight at once
    (``$MOTHLAB_JAX_CACHE``, default ``~/.cache/mothlab/jax``)."""
    import jax

    path = os.environ.get("MOTHLAB_JAX_CACHE") or str(Path.home() / ".cache" / "mothlab" / "jax")
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    except Exception:  # noqa: BLE001 - a cache is an optimisation, never a reason to fail
        pass


def show(alert: pn.pane.Alert, text: str | None, kind: str = "warning") -> None:
    """Show ``text`` in ``alert`` (escaped), or hide it; the type only changes when shown."""
    if text:
        alert.param.update(object=escape(text), alert_type=kind, visible=True)
    else:
        alert.visible = False


def message(text: str, kind: str = "warning") -> pn.pane.Alert:
    """A clear message shown in the page (kind: info, warning, danger, success)."""
    return pn.pane.Alert(text, alert_type=kind, sizing_mode="stretch_width")


def escape(text) -> str:
    return html.escape(str(text))


def experiments_dir() -> Path:
    """Where training jobs started from the app write their experiments."""
    return Path(os.environ.get("MOTHLAB_EXPERIMENTS") or "experiments").resolve()


def device_description() -> str:
    """The JAX device(s) in use, in words (shown in the Train tab)."""
    try:
        import jax

        devs = jax.devices()
        kind = devs[0].platform.upper()
        names = sorted({getattr(d, "device_kind", d.platform) for d in devs})
        return f"{kind}: {len(devs)} × {', '.join(names)}"
    except Exception as err:  # noqa: BLE001
        return f"unknown ({err})"


class ExperimentCatalog:
    """Process-wide list of experiment stores, refreshed on demand (cheap: directory listing,
    plus one load per new or changed store).

    ``entries()`` → dict label → path; ``load(path)`` → Experiment (cached by path and mtime) or
    raises ValueError/FileNotFoundError with a readable message; ``version`` changes whenever the
    list changes so that sessions know when to update their selectors.
    """

    def __init__(self):
        self._lock = threading.RLock()
        self._cache: dict[str, tuple[float, object]] = {}
        self._entries: dict[str, str] = {}
        self._extra: list[Path] = []
        self.version = 0
        self._scanned = 0.0

    def add_dir(self, path) -> None:
        with self._lock:
            p = Path(path).resolve()
            if p not in self._extra:
                self._extra.append(p)
                self._scanned = 0.0

    def dirs(self) -> list[Path]:
        return [ASSETS, experiments_dir(), *self._extra]

    def scan(self, max_age: float = 1.0) -> dict[str, str]:
        """Label → path of every ``*.zarr`` experiment found (re-listed at most every max_age s)."""
        with self._lock:
            if time.time() - self._scanned < max_age:
                return dict(self._entries)
            found: dict[str, str] = {}
            for d in self.dirs():
                if not d.is_dir():
                    continue
                for info in store.list_stores(d, kind="experiment"):  # the store knows its kind
                    p = info.path
                    label = "default (embedded)" if p == DEFAULT_EXPERIMENT else p.stem
                    if label in found and found[label] != str(p):
                        label = f"{p.stem} ({p.parent.name})"
                    found[label] = str(p)
            # the embedded default first: it is what a fresh machine should open on
            found = dict(sorted(found.items(), key=lambda kv: kv[0] != "default (embedded)"))
            if found != self._entries:
                self._entries = found
                self.version += 1
            self._scanned = time.time()
            return dict(found)

    def add(self, path) -> None:
        """Register a store outside the scanned folders (e.g. written by a job elsewhere)."""
        self.add_dir(Path(path).parent)
        self.scan(max_age=0)

    def load(self, path):
        """The experiment at ``path`` (cached while its header is unchanged)."""
        from mothlab.nets import load_experiment

        path = str(path)
        stamp = _stamp(path)
        with self._lock:
            hit = self._cache.get(path)
            if hit and hit[0] == stamp:
                return hit[1]
        exp = load_experiment(path)
        with self._lock:
            self._cache[path] = (stamp, exp)
        return exp


def _stamp(path: str) -> float:
    """Latest modification time of a store's metadata (changes as levels are written)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"No experiment at {path}; it may have been moved or deleted.")
    stamps = [p.stat().st_mtime]
    for name in ("zarr.json", ".zattrs", ".zgroup"):
        f = p / name
        if f.exists():
            stamps.append(f.stat().st_mtime)
    return max(stamps)


_CATALOG: ExperimentCatalog | None = None


def catalog() -> ExperimentCatalog:
    """The process-wide :class:`ExperimentCatalog`."""
    global _CATALOG
    if _CATALOG is None:
        _CATALOG = ExperimentCatalog()
    return _CATALOG


def add_periodic(viewer, callback, period_ms: int):
    """Run ``callback`` every period in a served session (no-op outside a server/notebook loop:
    tests call the callback directly)."""
    try:
        return pn.state.add_periodic_callback(callback, period=period_ms, start=True)
    except Exception:  # noqa: BLE001 - no event loop (plain Python): nothing to schedule
        return None
