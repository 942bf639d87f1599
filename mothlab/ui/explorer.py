"""Sparsity explorer: scrub through the pruning levels of an experiment.

Three views with one job each, composed by :class:`ExplorerView`:

- :class:`GraphView` — the layered network of one network (or the edges kept by any network),
  node states from :meth:`SparsityResult.node_states`, the connections of inputs pruned away
  (θ̇₀) drawn faintly from the dense level, inputs and outputs labelled;
- :class:`InputsView` — connections from each input to hidden layer 1, one row per network, and
  the share of networks that lost each input (HoloViews, :mod:`mothlab.plots`);
- :class:`LossesView` — loss against sparsity with the experiment's threshold, and the optimal
  sparsity histogram under the chosen selection rule, plus Table 1.

Every view draws from one :class:`Shown` — experiment, result, level, network, rule — that the
explorer replaces in one assignment, so no view can mix two experiments: caches are keyed by the
experiment's identity (path, creation stamp of its header, levels done), never by level alone.
The science (node states, connectivity, Table 1, which level to open on, the caption) comes from
:mod:`mothlab.analysis`; this module only lays it out.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource, LabelSet, LinearColorMapper, Span
from bokeh.plotting import figure
from bokeh.transform import dodge

import mothlab.analysis as A
from mothlab import plots
from mothlab.data import INPUT_LABELS, OUTPUT_LABELS

from .common import (
    LevelSlider,
    add_periodic,
    catalog,
    escape,
    held,
    inline,
    on_canvas,
    set_columns,
    show,
)

MAX_EDGES_PER_LAYER = 6000  # drawn per layer; denser layers show their strongest edges
ALL = "all networks"
C = plots.COLORS
#: node colour per state code (index of :data:`mothlab.analysis.NODE_STATES`)
NODE_COLORS = {
    "live": "#222222",
    "ghost": C["purple"],
    "dead": C["orange"],
    "removed": C["light"],
    "input": C["green"],
    "output": C["green"],
}
_STATE_COLORS = np.array([NODE_COLORS[s] for s in A.NODE_STATES], dtype=object)
_STATE_NAMES = np.array(A.NODE_STATES, dtype=object)
#: what an edge's colour says (its ``kind`` code in :func:`graph_data`), and that colour
EDGE_KINDS = ("positive weight", "negative weight", "edge of a removed node")
EDGE_COLORS = (C["blue"], C["vermillion"], C["grey"])
_LIVE = A.NODE_STATES.index("live")
_INPUT, _OUTPUT = A.NODE_STATES.index("input"), A.NODE_STATES.index("output")


# -- what is shown -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Opened:
    """An experiment as opened for viewing: its store, its :class:`SparsityResult` (at a
    threshold), and ``key`` — what makes it this experiment and no other (path, the header's
    creation stamp, levels done, threshold)."""

    label: str
    exp: object
    result: object
    key: tuple

    @classmethod
    def open(cls, label: str, exp, threshold: float | None = None) -> Opened:
        result = A.sparsity_result(exp, threshold=threshold)
        key = (
            str(Path(exp.path).resolve()),
            str(exp.header.get("created")),
            int(exp.levels_done),
            float(result.threshold),
        )
        return cls(label, exp, result, key)


@dataclasses.dataclass(frozen=True)
class Shown:
    """Everything one frame of the explorer shows; replaced whole, never edited."""

    opened: Opened
    level: int
    network: int | None  # None: all networks
    rule: str

    @property
    def sparsity(self) -> float:
        return float(self.opened.result.sparsity[self.level])


class LevelCache:
    """Masks and weights of an experiment's levels (LRU, a few levels), shared by sessions and
    keyed by the experiment's identity (:attr:`Opened.key`) and the level."""

    def __init__(self, size: int = 6):
        self.size = size
        self._d: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, opened: Opened, level: int):
        key = (opened.key[:3], int(level))
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
        val = (opened.exp.masks(level), opened.exp.weights(level))
        with self._lock:
            self._d[key] = val
            while len(self._d) > self.size:
                self._d.popitem(last=False)
        return val


_LEVELS = LevelCache()


class _Memo:
    """A small LRU of computed values keyed by whatever identifies them."""

    def __init__(self, size: int):
        self.size, self._d, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, key, make):
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
        val = make()
        with self._lock:
            self._d[key] = val
            while len(self._d) > self.size:
                self._d.popitem(last=False)
        return val


# -- the graph -------------------------------------------------------------------------------


def graph_data(masks, weights, states=None, max_edges: int = MAX_EDGES_PER_LAYER) -> dict:
    """Flat drawing data of a layered network (geometry only; the states come from
    :meth:`mothlab.analysis.SparsityResult.node_states`).

    masks, weights: per layer ``(n_in, n_out)`` bool and float (one network), or for an ensemble
    the fraction of networks keeping each edge (float in [0, 1]) and the mean weight.
    states: per node layer int codes of :data:`mothlab.analysis.NODE_STATES`, or None (all
    networks: hidden nodes drawn live). Edges touching a ghost, dead or removed node are grey.
    Returns dict with ``edges`` (columns x0, y0, x1, y1, kind — an index of :data:`EDGE_KINDS`
    —, alpha, width), ``nodes`` (x, y, code — an index of :data:`mothlab.analysis.NODE_STATES` —,
    state), ``n_edges`` (remaining per layer), ``n_shown`` (drawn per layer) and ``states``.
    """
    sizes = [masks[0].shape[0]] + [m.shape[1] for m in masks]
    ys = [(np.arange(n) + 0.5) / n for n in sizes]
    if states is None:
        states = (
            [np.full(sizes[0], _INPUT, np.int8)]
            + [np.full(n, _LIVE, np.int8) for n in sizes[1:-1]]
            + [np.full(sizes[-1], _OUTPUT, np.int8)]
        )
    ok = [np.isin(s, (_LIVE, _INPUT, _OUTPUT)) for s in states]
    cols = {k: [] for k in ("x0", "y0", "x1", "y1", "kind", "alpha", "width")}
    n_edges, n_shown = [], []
    for l, (m, w) in enumerate(zip(masks, weights)):
        m = np.asarray(m)
        i, j = np.nonzero(m)
        n_edges.append(len(i))
        wv = np.asarray(w)[i, j]
        if len(i) > max_edges:
            keep = np.argpartition(-np.abs(wv), max_edges - 1)[:max_edges]
            i, j, wv = i[keep], j[keep], wv[keep]
        n_shown.append(len(i))
        scale = np.abs(wv).max() if len(wv) else 1.0
        strength = np.abs(wv) / (scale or 1.0)
        frac = m[i, j].astype(float) if m.dtype != bool else np.ones(len(i))
        alive = ok[l][i] & ok[l + 1][j]
        cols["x0"].append(np.full(len(i), float(l)))
        cols["x1"].append(np.full(len(i), float(l + 1)))
        cols["y0"].append(ys[l][i])
        cols["y1"].append(ys[l + 1][j])
        cols["kind"].append(np.where(alive, np.where(wv >= 0, 0, 1), 2))
        cols["alpha"].append(np.where(alive, 0.15 + 0.75 * strength * frac, 0.15))
        cols["width"].append(0.5 + 2.0 * strength)
    # numbers only, float32 / uint8: sent to the browser as binary arrays (colour strings were
    # sent as JSON, one per edge)
    edges = {
        k: (np.concatenate(v) if v else np.array([])).astype(
            np.uint8 if k == "kind" else np.float32
        )
        for k, v in cols.items()
    }
    st = np.concatenate(states)
    nodes = dict(
        x=np.concatenate([np.full(n, float(l)) for l, n in enumerate(sizes)]).astype(np.float32),
        y=np.concatenate(ys).astype(np.float32),
        code=st.astype(np.uint8),
        state=_STATE_NAMES[st],
    )
    return dict(edges=edges, nodes=nodes, n_edges=n_edges, n_shown=n_shown, states=states)


def _code_colors(colors) -> LinearColorMapper:
    """A colour mapper from integer codes 0 … n-1 to ``colors`` (code k → colors[k])."""
    return LinearColorMapper(palette=list(colors), low=-0.5, high=len(colors) - 0.5)


class GraphView(pn.viewable.Viewer):
    """The pruned network of one network (or of all) at one level, drawn with raw Bokeh.

    Why raw Bokeh here (DESIGN.md: only where measured): at paper width (10-400-400-400-16-7;
    22,112 segments drawn at the dense level, 6,000 per layer at most) swapping this figure's
    data and serialising it takes 37 ms a step; the same edges as an ``hv.Segments`` in a
    DynamicMap take 1,261 ms a step without serialising (median of 12 steps over 6 random
    levels of that width, in a bokeh Document; 2 cores at load 15, 2026-12-01).
    """

    shown = param.ClassSelector(class_=Shown, default=None, allow_None=True)

    def __init__(self, **params):
        super().__init__(**params)
        self._cache = _Memo(64)
        self.n_updates = 0
        self.src_edges = ColumnDataSource(dict(x0=[], y0=[], y1=[], kind=[], alpha=[], width=[]))
        self.src_vanished = ColumnDataSource(dict(x0=[], y0=[], y1=[]))
        self.src_nodes = ColumnDataSource(dict(x=[], y=[], code=[]))
        self.src_in = ColumnDataSource(dict(x=[], y=[], text=[]))
        self.src_out = ColumnDataSource(dict(x=[], y=[], text=[]))
        # no title: the caption above the graph says which network, level and how many weights
        # are left, and rewriting a title made chromium lay out the figure again on every step
        # (in-page timing, 10 changes each, 2026-12-02 06:10 UTC, load 3.5: a new title 82 ms,
        # a new caption or heatmap title 33 ms, i.e. within the two frames waited)
        g = figure(
            title=None,
            height=480,
            sizing_mode="stretch_width",
            min_width=360,
            x_range=(-0.9, 5.9),
            y_range=(-0.02, 1.02),
            tools="pan,wheel_zoom,reset,save",
            output_backend="webgl",
            toolbar_location="above",
            css_classes=["mothlab-graph"],
        )
        # x1 = x0 + 1 (every edge joins a layer to the next), made in the browser: one buffer
        # fewer to send per step
        g.segment(
            "x0",
            "y0",
            dodge("x0", 1.0),
            "y1",
            source=self.src_vanished,
            line_color=C["grey"],
            line_alpha=0.35,
            line_dash="dotted",
            line_width=1,
        )
        g.segment(
            "x0",
            "y0",
            dodge("x0", 1.0),
            "y1",
            source=self.src_edges,
            # colours mapped in the browser from small integer codes (see graph_data)
            line_color={"field": "kind", "transform": _code_colors(EDGE_COLORS)},
            line_alpha="alpha",
            line_width="width",
        )
        g.scatter(
            "x",
            "y",
            source=self.src_nodes,
            color={"field": "code", "transform": _code_colors(_STATE_COLORS)},
            size=5,
        )
        g.add_layout(
            LabelSet(
                x="x",
                y="y",
                text="text",
                source=self.src_in,
                x_offset=-8,
                y_offset=-6,
                text_font_size="9pt",
                text_align="right",
            )
        )
        g.add_layout(
            LabelSet(
                x="x",
                y="y",
                text="text",
                source=self.src_out,
                x_offset=8,
                y_offset=-6,
                text_font_size="9pt",
                text_align="left",
            )
        )
        g.axis.visible = False
        g.grid.visible = False
        self.fig = g
        self.note = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["graph-note"])
        self.legend = pn.pane.HTML(
            "".join(
                f"<span style='color:{c}'>■</span> {k} " for k, c in zip(EDGE_KINDS, EDGE_COLORS)
            )
            + f"<span style='color:{C['grey']}'>┈</span> connection of a cut input, pruned away; "
            f"nodes: <span style='color:{NODE_COLORS['ghost']}'>●</span> ghost (no input) "
            f"<span style='color:{NODE_COLORS['dead']}'>●</span> dead (no output) "
            f"<span style='color:{NODE_COLORS['removed']}'>●</span> removed with them. "
            "Opacity and width ∝ |w|.",
            sizing_mode="stretch_width",
        )

    def data(self, shown: Shown) -> dict:
        """Cached :func:`graph_data` of ``shown`` (keyed by experiment, level and network), plus
        the dense connections of inputs that this network (or every network) lost."""
        op, lv, net = shown.opened, shown.level, shown.network

        def make():
            masks, weights = _LEVELS.get(op, lv)
            if net is None:
                m = [mk.mean(0) for mk in masks]
                w = [wt.sum(0) / np.maximum(mk.sum(0), 1) for mk, wt in zip(masks, weights)]
                states = None
            else:
                m = [mk[net] for mk in masks]
                w = [wt[net] for wt in weights]
                states = op.result.node_states(lv, net)
            g = graph_data(m, w, states)
            cut = np.flatnonzero(np.asarray(m[0]).sum(axis=1) == 0)
            dense = _LEVELS.get(op, 0)[0][0]
            dense = dense.any(0) if net is None else dense[net]
            i, j = np.nonzero(dense[cut])
            n_in, n_h = dense.shape
            g["vanished"] = dict(
                x0=np.zeros(len(i)),
                x1=np.ones(len(i)),
                y0=(cut[i] + 0.5) / n_in,
                y1=(j + 0.5) / n_h,
            )
            g["cut"] = cut
            return g

        return self._cache.get((op.key[:3], lv, net), make)

    @param.depends("shown", watch=True)
    def _draw(self):
        s = self.shown
        if s is None:
            for src in (
                self.src_edges,
                self.src_nodes,
                self.src_vanished,
                self.src_in,
                self.src_out,
            ):
                src.data = {k: [] for k in src.data}
            self.note.object = ""
            return
        g = self.data(s)
        sizes = s.opened.result.layer_sizes
        n_in, n_out = sizes[0], sizes[-1]
        cut = set(int(c) for c in g["cut"])
        # only what changed goes to the browser: a step sends the new edges and the node states
        # (the positions, labels and the cut inputs' dotted edges stay, mostly)
        # the edges as binary float32/uint8 buffers (thousands of numbers); the rest inline
        self.src_edges.data = {k: v for k, v in g["edges"].items() if k != "x1"}
        nodes = g["nodes"]
        set_columns(self.src_nodes, inline({k: nodes[k] for k in ("x", "y", "code")}))
        set_columns(self.src_vanished, inline({k: g["vanished"][k] for k in ("x0", "y0", "y1")}))
        set_columns(
            self.src_in,
            dict(
                x=[0.0] * n_in,
                y=list((np.arange(n_in) + 0.5) / n_in),
                text=[
                    f"{lab} (cut)" if k in cut else lab for k, lab in enumerate(INPUT_LABELS[:n_in])
                ],
            ),
        )
        set_columns(
            self.src_out,
            dict(
                x=[float(len(sizes) - 1)] * n_out,
                y=list((np.arange(n_out) + 0.5) / n_out),
                text=list(OUTPUT_LABELS[:n_out]),
            ),
        )
        self.fig.x_range.end = len(sizes) - 1 + 0.9
        notes = []
        if any(n > k for n, k in zip(g["n_edges"], g["n_shown"])):
            notes.append(
                f"Dense layers show their {MAX_EDGES_PER_LAYER:,} strongest edges only "
                f"(drawn {sum(g['n_shown']):,} of {sum(g['n_edges']):,})."
            )
        if s.network is None:
            notes.append(
                "All networks: an edge is drawn when any network keeps it, its opacity "
                "the fraction of networks that keep it, its colour the sign of the mean "
                "weight. Node states are per network: pick one to see them."
            )
        else:
            codes = np.concatenate(g["states"][1:-1]) if len(g["states"]) > 2 else np.array([])
            cnt = {
                k: int((codes == A.NODE_STATES.index(k)).sum())
                for k in ("ghost", "dead", "removed")
            }
            notes.append(
                f"Hidden nodes: {cnt['ghost']} ghost (no input), {cnt['dead']} dead "
                f"(no output), {cnt['removed']} removed with them."
            )
        if cut:
            names = ", ".join(INPUT_LABELS[c] for c in sorted(cut))
            notes.append(
                f"Inputs cut from hidden layer 1: {names} (their dense connections dotted)."
            )
        self.note.object = " ".join(escape(n) for n in notes)
        self.n_updates += 1

    def __panel__(self):
        return pn.Column(
            pn.pane.Bokeh(self.fig, sizing_mode="stretch_width"),
            self.legend,
            self.note,
            sizing_mode="stretch_width",
        )


# -- inputs ----------------------------------------------------------------------------------


class InputsView(pn.viewable.Viewer):
    """Connections from each input to hidden layer 1 at the shown level (heatmap with a colour
    bar, one row per network) and the share of networks from which each input is cut.

    Both plots are :mod:`mothlab.plots` elements rendered once per experiment; a slider step
    then swaps only the values of the rendered figures (the cells and bars stay where they are):
    under 1 ms against 130 ms + 55 ms for HoloViews to update the two plots in place through a
    DynamicMap (server-side in a bokeh Document, the embedded experiment, median of 6 steps;
    2 cores at load 10, 2026-12-01).
    ``tests/test_explorer.py`` checks the swapped values against a fresh render.
    """

    shown = param.ClassSelector(class_=Shown, default=None, allow_None=True)

    def __init__(self, **params):
        super().__init__(**params)
        self._conn = _Memo(32)
        self._drawn = None  # experiment key of the rendered figures
        self.heat = pn.pane.Bokeh(None, sizing_mode="stretch_width", min_height=330)
        self.cut = pn.pane.Bokeh(None, sizing_mode="stretch_width", min_height=200)

    def connectivity(self, shown: Shown):
        """The level's :meth:`SparsityResult.input_connectivity`, read once per experiment."""
        op = shown.opened
        return self._conn.get(
            (op.key[:3], shown.level), lambda: op.result.input_connectivity(shown.level)
        )

    def elements(self, shown: Shown):
        """The heatmap and the cut bars of ``shown`` as HoloViews elements."""
        conn, r = self.connectivity(shown), shown.opened.result
        return (
            plots.input_heatmap(r, shown.level, INPUT_LABELS, conn),
            plots.inputs_cut(r, shown.level, INPUT_LABELS, conn),
        )

    @param.depends("shown", watch=True)
    def _draw(self):
        s = self.shown
        if s is None:
            self.heat.object = self.cut.object = None
            self._drawn = None
            return
        r, conn = s.opened.result, self.connectivity(s)
        if self._drawn != s.opened.key:
            heat, cut = self.elements(s)
            self.heat.object = on_canvas(plots.render(heat))
            self.cut.object = on_canvas(plots.render(cut))
            self._sources = (glyph_source(self.heat.object), glyph_source(self.cut.object))
            self._drawn = s.opened.key
            return
        heat, cut = self._sources
        set_columns(
            heat,
            inline(dict(heat.data, zvalues=conn.ravel(), connections=conn.ravel().astype(str))),
        )
        set_columns(cut, inline(dict(cut.data, cut=heat_cut_values(conn))))
        self.heat.object.title.text = plots.heatmap_title(r, s.level)
        self.cut.object.title.text = plots.cut_title(r, s.level)

    def __panel__(self):
        return pn.Column(self.heat, self.cut, sizing_mode="stretch_width")


def heat_cut_values(conn) -> np.ndarray:
    """The bars of :func:`mothlab.plots.inputs_cut` from connectivity (n_inputs, n_networks)."""
    return 100 * (np.asarray(conn) == 0).mean(axis=1)


def glyph_source(fig):
    """The data source of the one glyph a HoloViews plot of one element draws."""
    from bokeh.models import GlyphRenderer

    return next(r for r in fig.select(GlyphRenderer)).data_source


# -- losses ----------------------------------------------------------------------------------


class LossesView(pn.viewable.Viewer):
    """Loss against sparsity (the experiment's threshold; the shown level marked), the optimal
    sparsity histogram under the chosen rule, and Table 1 under that rule.

    The plots are rendered once per experiment and rule; the level marker is a Bokeh ``Span``
    on the rendered figure, moved by a slider step (< 1 ms; a DynamicMap overlay took 118 ms,
    same measurement as :class:`InputsView`).
    """

    shown = param.ClassSelector(class_=Shown, default=None, allow_None=True)

    def __init__(self, **params):
        super().__init__(**params)
        self._drawn = None  # (key, rule) of the figures drawn
        self.loss = pn.pane.Bokeh(None, sizing_mode="stretch_width", min_height=300)
        self.hist = pn.pane.Bokeh(None, sizing_mode="stretch_width", min_height=260)
        self.table = pn.pane.DataFrame(None, sizing_mode="stretch_width", index=False)
        self.summary = pn.pane.HTML("", sizing_mode="stretch_width")
        # on the overlay layer: moving it repaints only that layer, not the plot under it
        self.marker = Span(
            location=0,
            dimension="height",
            line_color=C["grey"],
            line_dash="dotted",
            line_width=2,
            level="overlay",
        )

    @param.depends("shown", watch=True)
    def _draw(self):
        s = self.shown
        if s is None:
            self.loss.object = self.hist.object = None
            self.table.object = None
            self.summary.object = ""
            self._drawn = None
            return
        r = s.opened.result
        if self._drawn != (s.opened.key, s.rule):
            fig = on_canvas(plots.render(plots.loss_vs_sparsity(r)))
            fig.add_layout(self.marker)
            self.marker.location = plots.level_x(r, s.level)
            self.loss.object = fig
            self.hist.object = on_canvas(plots.render(plots.optimal_histogram(r, s.rule)))
            self._table(s)
            self._drawn = (s.opened.key, s.rule)
        self.marker.location = plots.level_x(r, s.level)  # x: sparsity, or a sparse run's step

    def _table(self, s: Shown):
        r = s.opened.result
        t1 = r.table1(s.rule)
        n_opt = len(t1["networks"])
        rule = f"{s.rule} rule ({A.SELECTION_RULES[s.rule]})"
        if n_opt:
            self.table.object = pd.DataFrame(
                {
                    "layer": t1["layers"],
                    "weights": [f"{int(v):,}" for v in t1["total"]],
                    "mean left": [f"{v:,.0f}" for v in t1["mean"]],
                    "sd": [f"{np.sqrt(v):,.0f}" for v in t1["var"]],
                    "min": [f"{v:,.0f}" for v in t1["min"]],
                    "max": [f"{v:,.0f}" for v in t1["max"]],
                }
            )
        else:
            self.table.object = None
        text = (
            f"weights left per layer at each network's optimal level, {rule}: "
            + (
                f"{n_opt} of {r.n_networks} networks."
                if n_opt
                else f"no network has an optimal level under this rule (threshold {r.threshold:g})."
            )
            + f" {r.n_reaching()} of {r.n_networks} networks are under the threshold at "
            "some level."
        )
        self.summary.object = f"<b>Table 1</b>: {escape(text)}"

    def __panel__(self):
        return pn.Column(
            self.loss, self.hist, self.summary, self.table, sizing_mode="stretch_width"
        )


# -- the explorer ----------------------------------------------------------------------------


class ExplorerView(pn.viewable.Viewer):
    """Scrub an experiment's sparsity levels. Opens on the level and network that
    :meth:`SparsityResult.level_to_show` names (the union of all networks is a choice), with a
    one-line caption from :meth:`SparsityResult.caption`."""

    experiment = param.Selector(default=None, objects=[], doc="An experiment store.")
    network = param.Selector(default=ALL, objects=[ALL], doc="One network, or all of them.")
    level = param.Integer(default=0, bounds=(0, None), doc="Index of the sparsity level.")
    rule = param.Selector(
        default="paper",
        objects=list(A.SELECTION_RULES),
        doc="How a network's optimally sparse level is chosen: "
        + "; ".join(f"{k}: {v}" for k, v in A.SELECTION_RULES.items()),
    )
    threshold = param.Number(
        default=1e-3,
        bounds=(0, None),
        inclusive_bounds=(False, True),
        doc="Loss threshold defining the optimally sparse level (default: the experiment's own).",
    )

    def __init__(self, prefetch: bool = True, **params):
        super().__init__(**params)
        self.opened: Opened | None = None
        self.shown: Shown | None = None
        #: read and lay out every level of the shown network in a background thread once an
        #: experiment or network is chosen, so that scrubbing never waits on the store
        self.prefetch = prefetch
        self._generation = 0  # bumped by every swap: a stale prefetch stops
        self.prefetched = threading.Event()
        self._entries: dict = {}
        self._catalog_version = -1
        self._busy = False  # set while a swap is in progress: watchers stand still
        self.graph = GraphView()
        self.inputs = InputsView()
        self.losses = LossesView()
        self._message = pn.pane.Alert(
            "", alert_type="warning", visible=False, sizing_mode="stretch_width"
        )
        self.caption = pn.pane.HTML(
            "", sizing_mode="stretch_width", css_classes=["explorer-caption"]
        )
        self.why = pn.pane.HTML("", sizing_mode="stretch_width")
        self.level_slider = LevelSlider(
            label="sparsity", options={"0%": 0}, value=0, sizing_mode="stretch_width", min_width=200
        )
        self.level_slider.param.watch(self._slider_moved, "value")
        self._captions = _Memo(256)
        self.refresh_catalog()
        self._cb = add_periodic(self, self.refresh_catalog, 2000)

    # -- compatibility handles (bench, tests) ---------------------------------------------
    @property
    def exp(self):
        return None if self.opened is None else self.opened.exp

    @property
    def result(self):
        return None if self.opened is None else self.opened.result

    @property
    def src_edges(self):
        return self.graph.src_edges

    @property
    def src_nodes(self):
        return self.graph.src_nodes

    @property
    def fig_graph(self):
        return self.graph.fig

    @property
    def n_updates(self) -> int:
        return self.graph.n_updates

    def sources(self) -> list:
        """The Bokeh data sources a slider step replaces (what ``mothlab bench app`` times)."""
        return [
            self.graph.src_edges,
            self.graph.src_nodes,
            self.graph.src_vanished,
            *getattr(self.inputs, "_sources", ()),
        ]

    # -- catalog & experiment -------------------------------------------------------------
    def refresh_catalog(self) -> None:
        """Pick up new experiments (from jobs or other sessions) without disturbing the view."""
        cat = catalog()
        entries = cat.scan()
        if cat.version == self._catalog_version and self.opened is not None:
            self._maybe_grow()
            return
        self._catalog_version = cat.version
        self._entries = entries
        labels = list(entries)
        self.param.experiment.objects = labels
        if self.experiment not in labels:
            self.experiment = first_usable(entries)
        if not labels:
            self._say(
                "No experiment found. Train one in the Train & prune tab, or put an "
                "experiment store (*.zarr) in the experiments folder.",
                "info",
            )
        self._maybe_grow()

    def _maybe_grow(self):
        """A running experiment gains levels: extend the slider when its header says so."""
        op = self.opened
        if op is None or op.exp.complete:
            return
        try:
            fresh = catalog().load(op.exp.path)
        except (ValueError, FileNotFoundError, KeyError, OSError):
            return
        if fresh.levels_done != op.exp.levels_done:
            self._open(fresh, keep_view=True)

    def select(self, label_or_path) -> None:
        """Select an experiment by catalog label or by path (registering the path)."""
        if label_or_path not in self._entries:
            catalog().add(label_or_path)
            self._catalog_version = -1
            self.refresh_catalog()
            want = str(Path(label_or_path).resolve())
            label_or_path = next((k for k, v in self._entries.items() if v == want), label_or_path)
        self.experiment = label_or_path

    def _say(self, text, kind="warning"):
        show(self._message, text, kind)

    @param.depends("experiment", watch=True)
    def _experiment_changed(self):
        path = self._entries.get(self.experiment)
        if path is None:
            if self.experiment is not None:
                self._say(f"No experiment {self.experiment!r} in the experiments folders.")
            self._set(None)
            return
        try:
            exp = catalog().load(path)
            if exp.levels_done == 0:
                raise ValueError(
                    f"{Path(exp.path).name} has no finished level yet; it is still "
                    "training (or was cancelled before its first level)."
                )
        except (ValueError, FileNotFoundError, KeyError, OSError) as err:
            self._say(f"Cannot open experiment {self.experiment!r}: {err}", "danger")
            self._set(None)
            return
        self._open(exp)

    def _open(self, exp, keep_view: bool = False, threshold: float | None = None):
        """Swap to ``exp``: everything new is computed first, then set in one go."""
        try:
            op = Opened.open(self.experiment, exp, threshold)
        except ValueError as err:
            self._say(f"Cannot open experiment {self.experiment!r}: {err}", "danger")
            self._set(None)
            return
        r = op.result
        if keep_view and self.shown is not None:
            level = min(self.level, r.levels_done - 1)
            network = self._network_index()
        else:
            level, network = r.level_to_show(self.rule)
            self.why.object = escape(
                f"Opened at {r.level_label(level)}, network "
                f"{network}: {r.level_to_show(self.rule).reason}."
            )
        self._say(None)
        self._set(op, level, network)

    def _set(self, opened: Opened | None, level: int = 0, network: int | None = None):
        """The one place where the shown experiment, level and network change together."""
        self._busy = True
        try:
            self.opened = opened
            if opened is None:
                self.level_slider.options = {"0%": 0}
                self._publish(None)
                return
            r = opened.result
            nets = [ALL] + [f"network {i}" for i in range(r.n_networks)]
            opts = {r.level_label(i): i for i in range(r.levels_done)}  # unique per level
            self.param.network.objects = nets
            self.param.level.bounds = (0, r.levels_done - 1)
            self.param.update(
                level=int(level),
                threshold=float(r.threshold),
                network=ALL if network is None else f"network {int(network)}",
            )
            self.level_slider.param.update(
                options=opts, value=int(level), label="sparsity" if r.method == "prune" else "level"
            )
        finally:
            self._busy = False
        self._update()
        self._start_prefetch()

    def _network_index(self):
        return None if self.network == ALL else int(self.network.split()[-1])

    def _slider_moved(self, event):
        if not self._busy:
            self.level = int(event.new)

    @param.depends("level", "network", "rule", watch=True)
    def _update(self):
        if self._busy or self.opened is None:
            return
        level = int(np.clip(self.level, 0, self.opened.result.levels_done - 1))
        if self.level_slider.value != level:
            self._busy = True
            self.level_slider.value = level
            self._busy = False
        self._publish(Shown(self.opened, level, self._network_index(), self.rule))

    @param.depends("network", "rule", watch=True)
    def _prefetch_network(self):
        if not self._busy and self.opened is not None:
            self._start_prefetch()

    @param.depends("threshold", watch=True)
    def _threshold_changed(self):
        if self._busy or self.opened is None:
            return
        if float(self.threshold) != self.opened.result.threshold:
            self._open(self.opened.exp, keep_view=True, threshold=float(self.threshold))

    def _publish(self, shown: Shown | None):
        """Hand one frame to every view (each reads only from it), then caption it."""
        self.shown = shown
        # one message to the browser for the whole frame (it redraws once), not one per change
        with held():
            for view in (self.graph, self.inputs, self.losses):
                view.shown = shown
            self.caption.object = (
                "" if shown is None else f"<b>{escape(self.caption_of(shown))}</b>"
            )

    def caption_of(self, shown: Shown) -> str:
        """:meth:`SparsityResult.caption` of the shown network (cached), or a line about all
        networks."""
        op = shown.opened
        if shown.network is None:
            g = self.graph.data(shown)
            return (
                f"all {op.result.n_networks} networks at {op.result.level_label(shown.level)}: "
                f"{sum(g['n_edges']):,} edges kept by at least one network"
            )
        return self._captions.get(
            (op.key, shown.level, shown.network, shown.rule),
            lambda: op.result.caption(shown.level, shown.network, shown.rule),
        )

    def precompute(self, generation: int | None = None) -> None:
        """Fill the caches for every level of the current network, the shown level's neighbours
        first (bench, warm scrubbing); stops early when another swap happened meanwhile."""
        shown = self.shown
        if shown is None:
            return
        here, n = shown.level, shown.opened.result.levels_done
        for lv in sorted(range(n), key=lambda k: (abs(k - here), k)):
            if generation is not None and generation != self._generation:
                return
            s = dataclasses.replace(shown, level=lv)
            self.graph.data(s)
            self.inputs.connectivity(s)
            self.caption_of(s)

    def _start_prefetch(self) -> None:
        self._generation += 1
        self.prefetched.clear()
        if not self.prefetch or self.shown is None:
            return
        generation = self._generation

        def work():
            try:
                self.precompute(generation)
            except Exception:  # noqa: BLE001 - an optimisation: the step computes it itself
                pass
            finally:
                if generation == self._generation:
                    self.prefetched.set()

        threading.Thread(target=work, name="mothlab-explorer-prefetch", daemon=True).start()

    def __panel__(self):
        controls = pn.FlexBox(
            pn.widgets.Select.from_param(self.param.experiment, width=240),
            pn.widgets.Select.from_param(self.param.network, width=150),
            pn.widgets.Select.from_param(self.param.rule, width=110, label="selection rule"),
            pn.widgets.FloatInput.from_param(self.param.threshold, width=110, step=1e-4),
            self.level_slider,
            sizing_mode="stretch_width",
        )
        left = pn.Column(
            self.caption,
            self.graph,
            self.why,
            sizing_mode="stretch_width",
            min_width=380,
            styles={"flex": "3 1 560px"},
        )
        right = pn.Column(
            self.inputs,
            self.losses,
            sizing_mode="stretch_width",
            min_width=340,
            styles={"flex": "2 1 400px"},
        )
        return pn.Column(
            self._message,
            controls,
            pn.FlexBox(left, right, flex_wrap="wrap", sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )


def first_usable(entries: dict) -> str | None:
    """The embedded default if present, else the first experiment with a finished level."""
    for label, path in entries.items():
        try:
            if catalog().load(path).levels_done > 0:
                return label
        except (ValueError, FileNotFoundError, KeyError, OSError):
            continue
    return next(iter(entries), None)
