"""Shared pieces of the app: offline resources, the experiment catalog, messages, colours.

The catalog lists experiment stores (``*.zarr``) found in the embedded ``assets/`` folder and in the
experiments folder (``$MOTHLAB_EXPERIMENTS``, default ``~/mothlab-experiments``), loading each through the
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
import param

from mothlab import store
from mothlab.palette import COLORS

#: the shipped assets folder (the embedded default experiment lives there; read-only): found by
#: mothlab.store from a checkout, an installed wheel or $MOTHLAB_ASSETS
ASSETS = store.assets_path()
DEFAULT_EXPERIMENT = ASSETS / "default_experiment.zarr"

#: colours used across tabs: the one palette of mothlab (Okabe–Ito, colour-blind safe), from
#: mothlab.palette, which imports nothing (mothlab.plots would import HoloViews)
BLUE, ORANGE, GREEN, RED, PURPLE, GREY = (
    COLORS[k] for k in ("blue", "orange", "green", "vermillion", "purple", "grey")
)

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
        # the IDE signatures of Panel's classes are of no use to a server, and applying them
        # costs the first page 34 ms (pn.extension._apply_signatures timed alone, 2026-12-02
        # 04:27 UTC, load 1.2)
        pn.config.apply_signatures = False
        pn.extension(design="native", notifications=False)
    else:
        pn.config.inline = True
        pn.extension(design="native", notifications=False, inline=True)
    # The native design uses the system font stack; make sure nothing asks for a web font.
    pn.config.raw_css = list(pn.config.raw_css) + [
        "body, .bk-root { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, "
        "'Helvetica Neue', Arial, sans-serif; }"
    ]
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


def notebook_dist_url() -> str:
    """Where Panel's own CSS is served in a Jupyter server: Panel's server extension (installed
    with panel, enabled in the server that runs beside it) serves it under ``panel-preview/``.
    ``$MOTHLAB_PANEL_DIST`` overrides it; behind JupyterHub the user's prefix comes first."""
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    return (
        os.environ.get("MOTHLAB_PANEL_DIST")
        or f"{prefix.rstrip('/')}/panel-preview/static/extensions/panel/"
    )


def pin_notebook_dist(view) -> None:
    """In a notebook, point the styles of components created or restyled after the first render
    at the Jupyter server instead of Panel's CDN. The first render inlines every stylesheet
    (``inline=True``), but Panel restyles later models (a new pane, an Alert changing type, a
    loading spinner) with ImportedStyleSheets whose URL comes from the document's ``dist_url``,
    and a notebook document has none, so they pointed at cdn.holoviz.org: requests that fail
    offline (loading.css, default.css, native.css in the explorer)."""
    if served():
        return
    from panel.io.resources import patch_model_css

    dist = notebook_dist_url()
    for root, _ in list(getattr(view, "_models", {}).values()):
        doc = root.document
        if doc is not None:
            doc._template_variables.setdefault("dist_url", dist)
            patch_model_css(root, dist_url=dist)


#: arrays up to this many numbers are sent as JSON by :func:`inline`; longer ones stay binary (a
#: node column of a paper-width network, 1,233 numbers, took the server ~5 ms more as JSON)
INLINE_MAX = 512


def inline(data: dict) -> dict:
    """``data`` with its small numpy arrays (also inside lists) as plain lists: Bokeh sends a numpy
    column as a binary buffer, i.e. two more WebSocket frames each, and every frame is one
    ``send`` through the loopback, which cost ~1.5 ms each on this 2-core CPU (cProfile of
    ``panel serve app`` during flight-slider steps, 2026-12-02 04:12 UTC, load 3: 2,035 sends,
    3.0 s). For a few hundred numbers JSON is the cheaper way."""

    def plain(v):
        if hasattr(v, "tolist") and getattr(v, "size", 0) <= INLINE_MAX:
            return v.tolist()
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return {k: plain(v) for k, v in data.items()}


def set_columns(src, data: dict) -> None:
    """Give the Bokeh ColumnDataSource ``src`` the columns ``data``, sending the browser only the
    columns that changed (all of them when the columns or their length changed)."""
    import numpy as np

    old = src.data
    if set(old) != set(data) or any(len(old[k]) != len(v) for k, v in data.items()):
        src.data = data
        return

    def same(a, b) -> bool:
        try:
            return bool(np.array_equal(np.asarray(a), np.asarray(b)))
        except ValueError:  # ragged lists of arrays: compare them one by one
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))

    changed = {k: v for k, v in data.items() if not same(old[k], v)}
    if changed:
        src.data.update(changed)


# -- widgets the server answers at once --------------------------------------------------------
#: Panel holds every property change that comes from the browser for 50 ms
#: (``Syncable._debounce``) before it handles it; a change named in ``_priority_changes`` (Panel's
#: own way, used by its Tabulator for edits) is handled on the next tick instead. A force step's
#: redrawn data then left the server ~35 ms sooner (WebSocket frames timed in chromium, 12 steps,
#: 2026-12-02 05:30 UTC, load 1.5-2: data 78 ms after the key press, 40-46 ms with this).
#: Dragging cannot queue up work: Bokeh's document lock handles one change at a time, and
#: changes that arrive meanwhile are merged into one.
PROMPT_CHANGES = ["value", "value_throttled"]


class PromptFloatSlider(pn.widgets.FloatSlider):
    """A FloatSlider whose moves the server handles at once (see :data:`PROMPT_CHANGES`)."""

    _priority_changes = PROMPT_CHANGES


class PromptPlayer(pn.widgets.Player):
    """A Player whose frames the server handles at once (see :data:`PROMPT_CHANGES`)."""

    _priority_changes = PROMPT_CHANGES


class LevelSlider(pn.widgets.IntSlider):
    """A slider over named stops ``0 … n-1`` (``options``: label → index, as
    :class:`pn.widgets.DiscreteSlider` takes them) that shows the stop's label in its own title,
    e.g. "sparsity: 85 %", and that the server answers at once (:data:`PROMPT_CHANGES`).

    Why not DiscreteSlider: it draws its label as a separate Bokeh ``Div`` that both the browser
    (a jslink) and the server rewrite on every step, and each rewrite makes BokehJS lay out the
    page again (``MarkupView.rerender`` → ``compute_layout``: the largest item in a CPU profile of
    explorer steps in chromium, 2026-12-02 05:45 UTC); it also sends one more message per step.
    Here the label is formatted in the browser from the slider's value.
    """

    options = param.Dict(default={}, doc="Label → index (0 … n-1, in order) of each stop.")

    _priority_changes = PROMPT_CHANGES
    _rename = {**pn.widgets.IntSlider._rename, "options": None}

    def __init__(self, **params):
        super().__init__(**params)
        self._apply_options()
        self.param.watch(lambda event: self._apply_options(), "options")

    @property
    def labels(self) -> list[str]:
        return list(self.options)

    def _apply_options(self) -> None:
        from bokeh.models import CustomJSTickFormatter

        labels, values = list(self.options), list(self.options.values())
        if values != list(range(len(values))):
            raise ValueError(
                f"LevelSlider options must map labels to 0 … n-1 in order, got {values}; "
                "give each stop its index."
            )
        n = len(labels)
        self.param.update(
            start=0,
            end=max(n - 1, 1),  # Bokeh needs start < end: a single stop is shown disabled
            disabled=n < 2,
            format=CustomJSTickFormatter(
                args=dict(labels=labels), code="return labels[Math.round(tick)] ?? '';"
            ),
        )


def on_canvas(fig):
    """``fig`` (a Bokeh plot or a layout of plots) drawn on a 2D canvas rather than WebGL, which
    HoloViews turns on for every plot it renders (``BokehRenderer.webgl``). For plots of a few
    hundred glyphs WebGL buys nothing, and each repaint then copies the WebGL canvas into the
    page (``blit_webgl`` → ``drawImage``): the largest item of a CPU profile of explorer steps
    in chromium (2026-12-02 05:50 UTC). Returns ``fig``."""
    from bokeh.models import Plot

    for plot in {fig, *fig.select(Plot)} if isinstance(fig, Plot) else fig.select(Plot):
        plot.output_backend = "canvas"
    return fig


#: background, text and border colours of a :class:`Notice` (Bootstrap's alert colours, which
#: Panel's Alert uses too)
_NOTICE_COLORS = {
    "primary": ("#cfe2ff", "#084298", "#b6d4fe"),
    "secondary": ("#e2e3e5", "#41464b", "#d3d6d8"),
    "success": ("#d1e7dd", "#0f5132", "#badbcc"),
    "danger": ("#f8d7da", "#842029", "#f5c2c7"),
    "warning": ("#fff3cd", "#664d03", "#ffecb5"),
    "info": ("#cff4fc", "#055160", "#b6effb"),
    "light": ("#fefefe", "#636464", "#fdfdfe"),
    "dark": ("#d3d3d4", "#141619", "#bcbebf"),
}


class Notice(pn.pane.HTML):
    """An alert box (``object`` is HTML, ``alert_type`` its colour, as :class:`pn.pane.Alert`)
    drawn as plain HTML: Panel's Alert renders Markdown, and importing its parser (markdown_it)
    cost the first page 0.5 s (``panel serve app``, 2026-12-02 02:58 UTC, load 4.9)."""

    alert_type = param.Selector(default="info", objects=list(_NOTICE_COLORS))

    _rename = {**pn.pane.HTML._rename, "alert_type": None}  # a Python-side setting only

    def __init__(self, object="", **params):
        super().__init__(object, **params)
        self._restyle()
        self.param.watch(lambda e: self._restyle(), "alert_type")

    def _restyle(self):
        bg, fg, border = _NOTICE_COLORS[self.alert_type]
        self.styles = {
            "background-color": bg,
            "color": fg,
            "border": f"1px solid {border}",
            "border-radius": "0.25rem",
            "padding": "0.5rem 1rem",
        }


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


EXPERIMENTS_ENV = "MOTHLAB_EXPERIMENTS"


def experiments_dir() -> Path:
    """Where the app lists experiments and where its training jobs write them:
    ``$MOTHLAB_EXPERIMENTS``, else ``~/mothlab-experiments``. Not relative to the working
    directory, so ``panel serve app`` (run from the checkout) and the notebook (run from app/)
    see the same runs. Shown in the page's header."""
    return (
        Path(os.environ.get(EXPERIMENTS_ENV) or Path.home() / "mothlab-experiments")
        .expanduser()
        .resolve()
    )


def shown_path(path) -> str:
    """``path`` as the page shows it: under the user's home as ``~/…`` (what they would type),
    anywhere else in full."""
    path = Path(path)
    try:
        return "~/" + path.relative_to(Path.home().resolve()).as_posix()
    except ValueError:
        return str(path)


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


def served() -> bool:
    """True inside a ``panel serve`` session (False in a notebook kernel or plain Python)."""
    doc = pn.state.curdoc
    return bool(doc is not None and doc.session_context is not None)


def held():
    """A context in which every change to the page is sent as one message when it ends (the
    browser then redraws once), under ``panel serve``; in a notebook, where Panel already
    collects the changes and pushes them itself, a no-op."""
    import contextlib

    return pn.io.hold() if served() else contextlib.nullcontext()


def push_to_notebook() -> None:
    """Send changes made outside a browser event to the notebook's page.

    Under ``panel serve`` Bokeh syncs every model change itself. In a notebook kernel Panel only
    pushes the document's pending changes after it handled a message from the page, so what a
    periodic callback draws (the first flight once the simulator has compiled, a job's progress)
    would wait, invisible, for the next click. This was the JupyterLab "blank Flight plots" bug.
    """
    if served():
        return
    from panel.io.notebook import push_on_root

    # Panel's registry of rendered roots (ref -> (viewable, root, doc, comm)); a notebook-only
    # need with no public equivalent that takes roots rather than Panel objects
    for ref in list(getattr(pn.state, "_views", {})):
        try:
            push_on_root(ref)
        except Exception:  # noqa: BLE001 - a closed comm must not stop the callback
            pass


def add_periodic(viewer, callback, period_ms: int):
    """Run ``callback`` every period, in a served session or a notebook kernel (whose changes are
    then pushed to the page, see :func:`push_to_notebook`). A no-op outside an event loop: tests
    call the callback directly."""

    def tick():
        try:
            callback()
        finally:
            push_to_notebook()

    try:
        return pn.state.add_periodic_callback(tick, period=period_ms, start=True)
    except Exception:  # noqa: BLE001 - no event loop (plain Python): nothing to schedule
        return None


# -- who is this session? (job owners, teacher mode) ----------------------------------------------
TEACHER_ENV = "MOTHLAB_TEACHER"


def is_teacher() -> bool:
    """Teacher mode: ``$MOTHLAB_TEACHER`` is ``1`` (every session may cancel any job: a server
    the teacher alone uses, e.g. on the projector) or a comma-separated list of user names (with
    ``--basic-auth`` or OAuth: those users may cancel any job, the others only their own)."""
    value = os.environ.get(TEACHER_ENV, "").strip()
    if not value or value.lower() in ("0", "no", "false", "off"):
        return False
    if value.lower() in ("1", "yes", "true", "on", "all"):
        return True
    user = pn.state.user if served() else None
    return bool(user) and user in {v.strip() for v in value.split(",") if v.strip()}


def owner_label(owner: str, me: str | None = None) -> str:
    """How a job's owner is shown: "you", a user name, or a short tag that cannot be used to
    impersonate the browser it stands for (a hash, not the id)."""
    import hashlib

    if me is not None and owner == me:
        return "you"
    if owner.startswith("user:"):
        return owner[5:]
    if owner in ("notebook", "cli"):
        return owner
    return "session " + hashlib.sha256(owner.encode()).hexdigest()[:4]


class SessionOwner(pn.reactive.ReactiveHTML):
    """The owner of the jobs a page starts: the signed-in user (``--basic-auth`` or OAuth), else
    a random id kept in the browser's localStorage, so a reload (or a second tab of the same
    browser) still owns its jobs; ``notebook`` in a notebook kernel. Invisible."""

    browser_id = param.String(default="", doc="Random id from the browser's localStorage.")

    _template = "<div id='owner' style='display:none'></div>"
    _scripts = {
        "render": """
      let id = null;
      try { id = window.localStorage.getItem('mothlab-owner'); } catch (e) {}
      if (!id) {
        id = 'b' + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
        try { window.localStorage.setItem('mothlab-owner', id); } catch (e) {}
      }
      data.browser_id = id;
    """
    }

    def __init__(self, fixed: str | None = None, **params):
        super().__init__(width=0, height=0, margin=0, **params)
        self._fixed = fixed
        doc = pn.state.curdoc
        self._session = doc.session_context.id if served() else None

    @property
    def owner(self) -> str:
        if self._fixed:
            return self._fixed
        if served():
            user = pn.state.user
            if user:
                return f"user:{user}"
            if self.browser_id:
                return f"browser:{self.browser_id}"
            return f"session:{self._session}"
        return "notebook"
