"""MothLab: the whole app, one tab per part of the story."""

from __future__ import annotations

import threading
from importlib import import_module

import panel as pn
import param

from mothlab.runtime import enable_compile_cache

from .common import (
    configure_panel,
    escape,
    experiments_dir,
    is_teacher,
    pin_local_dist,
    pin_notebook_dist,
    shown_path,
)

#: tabs built when first shown: title -> (module of mothlab.ui, Viewer class)
LAZY = {
    "Train & prune": ("train", "TrainView"),
    "Sparsity explorer": ("explorer", "ExplorerView"),
    "Motifs": ("motifs", "MotifsView"),
    "Fly": ("fly", "FlyView"),
}  # Fly: closed-loop flight (issue 11)


#: set when ``panel serve`` creates the first session (``app/app_hooks.py``)
PAGE_ASKED = threading.Event()


def prepare_server(idle_s: float = 3.0) -> None:
    """Called once when ``panel serve app`` starts (``app/app_hooks.py``); returns at once.

    In a background thread: import the first page's modules (Panel's models and the Flight tab:
    neither JAX nor HoloViews), then, unless a page is asked for within ``idle_s`` seconds,
    import JAX and compile the simulator (loaded from the persistent compile cache after the
    first run). A page asked for meanwhile starts that compile itself once it is drawn
    (:class:`~mothlab.ui.flight.FlightView`), so its HTML is not built while JAX imports and
    traces (both need Python's one interpreter lock)."""
    enable_compile_cache()

    def work():
        from .flight import warm_up

        if not PAGE_ASKED.wait(idle_s):
            warm_up()

    threading.Thread(target=work, name="mothlab-prepare", daemon=True).start()


class MothLab(pn.viewable.Viewer):
    """Flight, Train & prune, Sparsity explorer and Motifs in one page.

    >>> lab = MothLab()   # doctest: +SKIP
    """

    active = param.Integer(default=0, bounds=(0, 3), doc="Index of the tab shown.")

    def __init__(self, **params):
        configure_panel()
        pin_local_dist()
        enable_compile_cache()
        super().__init__(**params)
        from .flight import FlightView

        self.flight = FlightView()
        self._views: dict[str, pn.viewable.Viewer] = {}
        self._slots = {
            title: pn.Column(pn.pane.HTML(f"<i>Opening {title}…</i>"), sizing_mode="stretch_width")
            for title in LAZY
        }
        self._tabs = pn.Tabs(
            ("Flight", self.flight),
            *self._slots.items(),
            # every tab stays in the document: Panel restyles detached
            # (dynamic-tab) models with CDN stylesheets, which fails offline
            dynamic=False,
            sizing_mode="stretch_width",
        )
        self.param.active.bounds = (0, len(self._tabs) - 1)
        self._tabs.link(self, active="active", bidirectional=True)
        self._tabs.param.watch(self._opened, "active")

    # the other tabs are built the first time they are shown: the first page then costs only
    # the Flight tab (the Train form alone is ~200 Bokeh models; the explorer reads an experiment
    # and lays out its graph)
    def _opened(self, event) -> None:
        title = self._tabs._names[event.new]
        if title in LAZY:
            self._view(title)

    def _view(self, title: str) -> pn.viewable.Viewer:
        if title not in self._views:
            module, cls = LAZY[title]
            # the Fly tab opens on a flight of the selected network (flown in a worker thread)
            kw = {"fly_on_open": True} if title == "Fly" else {}
            view = getattr(import_module(f"{__package__}.{module}"), cls)(**kw)
            self._views[title] = view
            self._slots[title].objects = [view]
        return self._views[title]

    @property
    def train(self):
        return self._view("Train & prune")

    @property
    def explorer(self):
        return self._view("Sparsity explorer")

    @property
    def motifs(self):
        return self._view("Motifs")

    @property
    def fly(self):
        return self._view("Fly")

    def _repr_mimebundle_(self, include=None, exclude=None):
        """Display in a notebook: as Panel does, then keep later restyles off the CDN."""
        view = self._create_view()
        bundle = view._repr_mimebundle_(include, exclude)
        pin_notebook_dist(view)
        return bundle

    def __panel__(self):
        teacher = " · <b>teacher mode</b>" if is_teacher() else ""
        folder = experiments_dir()
        header = pn.pane.HTML(
            "<h1 style='margin:4px 0'>MothLab</h1><div>A hawkmoth's flight controller, learned by "
            "neural networks, pruned until sparse, and read for its wiring motifs. "
            f"<span style='color:#555'>Experiments folder: <code title='{escape(folder)}'>"
            f"{escape(shown_path(folder))}</code> (set MOTHLAB_EXPERIMENTS to change it)"
            f"{teacher}</span></div>",
            sizing_mode="stretch_width",
        )
        return pn.Column(header, self._tabs, sizing_mode="stretch_width")
