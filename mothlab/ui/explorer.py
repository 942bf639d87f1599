"""Sparsity explorer: scrub through the pruning levels of an experiment.

Views: the layered network graph of one network (or the edges kept by any network, shaded by how
many keep them), the connectivity of each input to the first hidden layer across networks
(θ̇₀ being pruned out shows as an empty column), the remaining weights per layer (Table 1), and the
loss against sparsity with the threshold and the histogram of optimal sparsity (Fig 4).

Speed: each (network, level) graph is computed once into flat segment arrays and cached; drawing is
one ``segment`` glyph whose data is replaced, so a slider step is a dictionary lookup and a data
push. Layers with more than :data:`MAX_EDGES_PER_LAYER` remaining edges show their strongest edges
only, and the page says so.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource, LabelSet, Span
from bokeh.plotting import figure

from .common import BLUE, GREY, ORANGE, PURPLE, RED, add_periodic, catalog, escape, show

MAX_EDGES_PER_LAYER = 6000  # drawn per layer; denser layers show their strongest edges
ALL = "all networks"
INPUT_LABELS = ("ẋ₀", "ẏ₀", "φ₀", "θ₀", "φ̇₀", "θ̇₀", "x_f", "y_f", "φ_f", "θ_f")
OUTPUT_LABELS = ("Fx", "Fy", "τ", "ẋ_f", "ẏ_f", "φ̇_f", "θ̇_f")
NODE_COLORS = {"live": "#222222", "ghost": PURPLE, "dead": ORANGE, "removed": "#bbbbbb",
               "input": "#009E73", "output": "#009E73"}


def _labels():
    try:
        from mothlab.data import INPUT_LABELS as IN
        from mothlab.data import OUTPUT_LABELS as OUT
        return tuple(IN), tuple(OUT)
    except Exception:  # noqa: BLE001 - the same labels, in case the data layer is unavailable
        return INPUT_LABELS, OUTPUT_LABELS


class LevelCache:
    """Masks and weights of an experiment's levels (LRU, a few levels), shared by sessions."""

    def __init__(self, size: int = 6):
        self.size = size
        self._d: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, exp, level: int):
        key = (str(exp.path), exp.levels_done, int(level))
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
        val = (exp.masks(level), exp.weights(level))
        with self._lock:
            self._d[key] = val
            while len(self._d) > self.size:
                self._d.popitem(last=False)
        return val


_LEVELS = LevelCache()


def node_states(masks: list[np.ndarray]) -> list[np.ndarray]:
    """Per layer of nodes, a string array: input/output, live, ghost (no input), dead (no output)
    or removed (cut off only once ghosts and dead nodes are gone), for one network's masks
    ``[(n_0, n_1), (n_1, n_2), ...]``. Uses :func:`mothlab.analysis.motifs.prune_ghost_dead`."""
    from mothlab.analysis.motifs import prune_ghost_dead

    live_masks, _ = prune_ghost_dead([m.astype(bool) for m in masks])
    sizes = [masks[0].shape[0]] + [m.shape[1] for m in masks]
    out = [np.full(sizes[0], "input", dtype=object)]
    for l in range(1, len(sizes) - 1):
        n_in = masks[l - 1].sum(0)
        n_out = masks[l].sum(1)
        live = (live_masks[l - 1].sum(0) > 0) & (live_masks[l].sum(1) > 0)
        st = np.full(sizes[l], "removed", dtype=object)
        st[live] = "live"
        st[(n_out == 0) & ~live] = "dead"
        st[(n_in == 0) & ~live] = "ghost"
        out.append(st)
    out.append(np.full(sizes[-1], "output", dtype=object))
    return out


def graph_data(masks, weights, max_edges: int = MAX_EDGES_PER_LAYER) -> dict:
    """Flat drawing data of a layered network.

    masks, weights: per layer ``(n_in, n_out)`` bool and float (one network), or for an ensemble
    the fraction of networks keeping each edge (float in [0, 1]) and the mean weight.
    Returns dict with ``edges`` (columns x0, y0, x1, y1, color, alpha, width), ``nodes`` (x, y,
    color, state), ``n_edges`` (remaining per layer), ``n_shown`` (drawn per layer) and
    ``states`` (node states per layer).
    """
    sizes = [masks[0].shape[0]] + [m.shape[1] for m in masks]
    ys = [(np.arange(n) + 0.5) / n for n in sizes]
    binary = [np.asarray(m) > 0 for m in masks]
    states = node_states(binary)
    live_nodes = [s != "removed" for s in states]
    cols = {k: [] for k in ("x0", "y0", "x1", "y1", "color", "alpha", "width")}
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
        alive = (states[l][i] != "ghost") & (states[l][i] != "dead") & \
            (states[l][i] != "removed") & (states[l + 1][j] != "ghost") & \
            (states[l + 1][j] != "dead") & (states[l + 1][j] != "removed")
        color = np.where(wv >= 0, BLUE, RED).astype(object)
        color[~alive] = GREY
        cols["x0"].append(np.full(len(i), float(l)))
        cols["x1"].append(np.full(len(i), float(l + 1)))
        cols["y0"].append(ys[l][i])
        cols["y1"].append(ys[l + 1][j])
        cols["color"].append(color)
        cols["alpha"].append(np.where(alive, 0.15 + 0.75 * strength * frac, 0.15))
        cols["width"].append(0.5 + 2.0 * strength)
    edges = {k: np.concatenate(v) if v else np.array([]) for k, v in cols.items()}
    nx = np.concatenate([np.full(n, float(l)) for l, n in enumerate(sizes)])
    ny = np.concatenate(ys)
    st = np.concatenate(states)
    nodes = dict(x=nx, y=ny, state=st, color=np.array([NODE_COLORS[s] for s in st], dtype=object))
    del live_nodes
    return dict(edges=edges, nodes=nodes, n_edges=n_edges, n_shown=n_shown, states=states)


class ExplorerView(pn.viewable.Viewer):
    """Scrub an experiment's sparsity levels; see the pruned graph, input connectivity, Table 1,
    loss versus sparsity and the optimal-sparsity histogram."""

    experiment = param.Selector(default=None, objects=[], doc="An experiment store.")
    network = param.Selector(default=ALL, objects=[ALL], doc="One network, or all of them.")
    level = param.Integer(default=0, bounds=(0, None), doc="Index of the sparsity level.")
    threshold = param.Number(default=1e-3, bounds=(0, None), inclusive_bounds=(False, True),
                             doc="Loss threshold defining the optimally sparse level.")

    def __init__(self, **params):
        super().__init__(**params)
        self.exp = None
        self._graph_cache: OrderedDict = OrderedDict()
        self._catalog_version = -1
        self._message = pn.pane.Alert("", alert_type="warning", visible=False,
                                      sizing_mode="stretch_width")
        self.note = pn.pane.HTML("", sizing_mode="stretch_width")
        self.level_slider = pn.widgets.DiscreteSlider(name="sparsity", options={"0%": 0},
                                                      value=0, sizing_mode="stretch_width")
        self.level_slider.param.watch(lambda e: setattr(self, "level", int(e.new)), "value")
        self.table = pn.pane.HTML("", sizing_mode="stretch_width")
        self.n_updates = 0
        self._make_figures()
        self.refresh_catalog()
        self._cb = add_periodic(self, self.refresh_catalog, 2000)

    # -- catalog & experiment -------------------------------------------------------------------
    def refresh_catalog(self) -> None:
        """Pick up new experiments (from jobs or other sessions) without disturbing the view."""
        cat = catalog()
        entries = cat.scan()
        if cat.version == self._catalog_version and self.exp is not None:
            self._maybe_grow()
            return
        self._catalog_version = cat.version
        self._entries = entries
        labels = list(entries)
        self.param.experiment.objects = labels
        if self.experiment not in labels:
            self.experiment = _first_usable(entries)
        if not labels:
            self._say("No experiment found. Train one in the Train & prune tab, or put an "
                      "experiment store (*.zarr) in the experiments folder.", "info")
        self._maybe_grow()

    def _maybe_grow(self):
        """A running experiment gains levels: extend the slider when its header says so."""
        if self.exp is None or self.exp.complete:
            return
        try:
            fresh = catalog().load(self.exp.path)
        except (ValueError, FileNotFoundError, KeyError, OSError):
            return
        if fresh.levels_done != self.exp.levels_done:
            self._load(fresh)

    def select(self, label_or_path) -> None:
        """Select an experiment by catalog label or by path (registering the path)."""
        if label_or_path not in (self._entries if hasattr(self, "_entries") else {}):
            catalog().add(label_or_path)
            self._catalog_version = -1
            self.refresh_catalog()
            label_or_path = next((k for k, v in self._entries.items()
                                  if v == str(__import__("pathlib").Path(label_or_path)
                                              .resolve())), label_or_path)
        self.experiment = label_or_path

    def _say(self, text, kind="warning"):
        show(self._message, text, kind)

    @param.depends("experiment", watch=True)
    def _experiment_changed(self):
        path = getattr(self, "_entries", {}).get(self.experiment)
        if path is None:
            self.exp = None
            return
        try:
            exp = catalog().load(path)
            if exp.levels_done == 0:
                raise ValueError(f"{exp.path.name} has no finished level yet; it is still "
                                 "training (or was cancelled before its first level).")
        except (ValueError, FileNotFoundError, KeyError, OSError) as err:
            self.exp = None
            self._say(f"Cannot open experiment {self.experiment!r}: {err}", "danger")
            self._clear()
            return
        self._load(exp)

    def _load(self, exp):
        self._say(None)
        self._graph_cache.clear()
        nets = [ALL] + [f"network {i}" for i in range(exp.n_networks)]
        self.param.network.objects = nets
        if self.network not in nets:
            self.network = ALL
        done = exp.levels_done
        opts = {f"{100 * s:g}%": i for i, s in enumerate(exp.sparsity_levels[:done])}
        grown = self.exp is not None and str(getattr(self, "_loaded_path", "")) == str(exp.path)
        keep = min(self.level, done - 1) if grown else interesting_level(exp)
        self._loaded_path = exp.path
        self.level_slider.param.update(options=opts, value=keep)
        self.exp = exp
        self.threshold = float(getattr(exp.config, "threshold", self.threshold) or 1e-3)
        self.param.level.bounds = (0, done - 1)
        self.level = keep
        self._update_losses()
        self._update_level()

    def _clear(self):
        for src in (self.src_edges, self.src_nodes):
            src.data = {k: [] for k in src.data}
        self.table.object = ""
        self.note.object = ""

    # -- per level ----------------------------------------------------------------------------
    def _network_index(self):
        return None if self.network == ALL else int(self.network.split()[-1])

    def graph(self, level: int, network=None) -> dict:
        """Cached :func:`graph_data` of one network (index) or of all (None) at ``level``."""
        key = (level, network)
        if key in self._graph_cache:
            self._graph_cache.move_to_end(key)
            return self._graph_cache[key]
        masks, weights = _LEVELS.get(self.exp, level)
        if network is None:
            m = [mk.mean(0) for mk in masks]
            w = [wt.sum(0) / np.maximum(mk.sum(0), 1) for mk, wt in zip(masks, weights)]
        else:
            m = [mk[network] for mk in masks]
            w = [wt[network] for wt in weights]
        g = graph_data(m, w)
        self._graph_cache[key] = g
        while len(self._graph_cache) > 64:
            self._graph_cache.popitem(last=False)
        return g

    def precompute(self) -> None:
        """Fill the graph cache for every level of the current network (bench, warm scrubbing)."""
        if self.exp is None:
            return
        for lv in range(self.exp.levels_done):
            self.graph(lv, self._network_index())

    @param.depends("level", "network", watch=True)
    def _update_level(self):
        if self.exp is None:
            return
        level = int(np.clip(self.level, 0, self.exp.levels_done - 1))
        if self.level_slider.value != level:
            self.level_slider.value = level
        try:
            g = self.graph(level, self._network_index())
            masks, _ = _LEVELS.get(self.exp, level)
        except (ValueError, KeyError, OSError) as err:
            self._say(f"Cannot read level {level} of {self.experiment!r}: {err}", "danger")
            return
        self.src_edges.data = g["edges"]
        self.src_nodes.data = g["nodes"]
        s = self.exp.sparsity_levels[level]
        what = ("edges kept by at least one network" if self.network == ALL
                else "weights remain")
        self.fig_graph.title.text = (f"{self.network} at {100 * s:g}% sparsity: "
                                     f"{sum(g['n_edges']):,} {what}")
        sizes = self.exp.layer_sizes
        self.fig_graph.x_range.end = len(sizes) - 0.5
        notes = []
        if any(n > k for n, k in zip(g["n_edges"], g["n_shown"])):
            notes.append(f"Dense layers show their {MAX_EDGES_PER_LAYER:,} strongest edges only "
                         f"(drawn {sum(g['n_shown']):,} of {sum(g['n_edges']):,}).")
        counts = {k: int(sum((s == k).sum() for s in g["states"])) for k in
                  ("ghost", "dead", "removed")}
        notes.append(f"Hidden nodes: {counts['ghost']} ghost (no input), {counts['dead']} dead "
                     f"(no output), {counts['removed']} removed with them.")
        if self.network == ALL:
            notes.append("All networks: an edge is drawn when any network keeps it, its opacity "
                         "the fraction of networks that keep it, its colour the sign of the mean "
                         "weight.")
        self.note.object = (f"<b class='graph-summary'>{escape(self.fig_graph.title.text)}</b>. "
                            + " ".join(escape(n) for n in notes))
        self._update_inputs(masks)
        self._update_table(masks, level)
        self.level_span.location = 100 * float(s)
        self.n_updates += 1

    def _update_inputs(self, masks):
        # = mothlab.analysis.sparsity.input_connectivity(exp, level), from the cached masks so
        # that a slider step reads the store once
        conn = masks[0].sum(axis=2)
        n_net, n_in = conn.shape
        width = masks[0].shape[2]
        labels, _ = _labels()
        xs = np.tile(np.array(labels[:n_in], dtype=object), n_net)
        ys = np.repeat(np.arange(n_net), n_in).astype(float)
        frac = (conn / max(width, 1)).ravel()
        colors = [_blues(f) for f in frac]
        self.src_heat.data = dict(x=xs, y=ys, frac=frac, count=conn.ravel(), color=colors)
        self.fig_heat.y_range.end = n_net - 0.5
        gone = (conn == 0).mean(0)
        self.src_gone.data = dict(x=list(labels[:n_in]), top=100 * gone)

    def _update_table(self, masks, level):
        kept = np.stack([m.sum(axis=(1, 2)) for m in masks], 1)  # (n_networks, n_layers)
        total = [m.shape[1] * m.shape[2] for m in masks]
        opt = self.exp.optimal_level(self.threshold)
        rows = []
        names = [f"{a}→{b}" for a, b in zip(self.exp.layer_sizes[:-1], self.exp.layer_sizes[1:])]
        for l, name in enumerate(names):
            rows.append(f"<tr><td>{name}</td><td>{total[l]:,}</td>"
                        f"<td>{np.median(kept[:, l]):,.0f}</td>"
                        f"<td>{100 * np.median(kept[:, l]) / total[l]:.1f}%</td></tr>")
        n_opt = int((opt >= 0).sum())
        med_opt = ""
        if n_opt:
            levels = self.exp.sparsity_levels[opt[opt >= 0]]
            med_opt = f"; median optimal sparsity {100 * np.median(levels):g}%"
        optimal = ""
        if n_opt:
            try:
                from mothlab.analysis.sparsity import remaining_weights

                t1 = remaining_weights(self.exp, None, self.threshold)
                optimal = ("<b>Table 1</b>: weights left per layer at each network's optimal "
                           f"level (mean over {len(t1['networks'])} networks): " + ", ".join(
                               f"{name} {m:,.0f}" for name, m in zip(t1["layers"], t1["mean"])))
            except Exception as err:  # noqa: BLE001 - the table above still shows
                optimal = f"(Table 1 unavailable: {escape(err)})"
        self.table.object = optimal + (
            "<br><b>Remaining weights per layer</b>, median over networks at this level"
            "<table style='border-collapse:collapse' cellpadding=4 border=1>"
            "<tr><th>layer</th><th>dense</th><th>remaining</th><th>density</th></tr>"
            + "".join(rows) + "</table>"
            f"<div>{n_opt} of {self.exp.n_networks} networks reach the threshold "
            f"{self.threshold:g} at some level{med_opt}.</div>")

    @param.depends("threshold", watch=True)
    def _update_losses(self):
        if self.exp is None:
            return
        done = self.exp.levels_done
        sp = 100 * self.exp.sparsity_levels[:done]
        loss = self.exp.test_loss[:done]  # (L, n)
        finite = np.where(np.isfinite(loss) & (loss > 0), loss, np.nan)
        self.src_loss.data = dict(xs=[sp] * loss.shape[1], ys=list(finite.T))
        with np.errstate(all="ignore"):
            med = np.nanmedian(finite, axis=1) if np.isfinite(finite).any() else sp * np.nan
        self.src_loss_med.data = dict(x=sp, y=med)
        self.threshold_span.location = float(self.threshold)
        opt = self.exp.optimal_level(self.threshold)
        labels = [f"{v:g}%" for v in sp] + ["none"]
        counts = [int((opt == i).sum()) for i in range(done)] + [int((opt < 0).sum())]
        self.src_hist.data = dict(x=labels, top=counts)
        self.fig_hist.x_range.factors = labels
        if self.exp is not None and done:
            try:
                masks, _ = _LEVELS.get(self.exp, int(self.level))
                self._update_table(masks, int(self.level))
            except (ValueError, KeyError, OSError):
                pass

    # -- figures ------------------------------------------------------------------------------
    def _make_figures(self):
        self.src_edges = ColumnDataSource(dict(x0=[], y0=[], x1=[], y1=[], color=[], alpha=[],
                                               width=[]))
        self.src_nodes = ColumnDataSource(dict(x=[], y=[], color=[], state=[]))
        g = figure(title="pruned network", height=520, sizing_mode="stretch_width",
                   x_range=(-0.6, 5.5), y_range=(-0.02, 1.02), tools="pan,wheel_zoom,reset,save",
                   output_backend="webgl", toolbar_location="above",
                   css_classes=["mothlab-graph"])
        g.segment("x0", "y0", "x1", "y1", source=self.src_edges, line_color="color",
                  line_alpha="alpha", line_width="width")
        g.scatter("x", "y", source=self.src_nodes, color="color", size=5, legend_field="state")
        g.axis.visible = False
        g.grid.visible = False
        g.legend.location = "top_right"
        g.legend.orientation = "horizontal"
        g.legend.label_text_font_size = "8pt"
        labels, outs = _labels()
        self.src_io = ColumnDataSource(dict(
            x=[0.0] * len(labels) + [None] * 0, y=list((np.arange(len(labels)) + 0.5) / len(labels)),
            text=list(labels)))
        g.add_layout(LabelSet(x="x", y="y", text="text", source=self.src_io, x_offset=-30,
                              y_offset=-6, text_font_size="9pt"))
        self.fig_graph = g

        self.src_heat = ColumnDataSource(dict(x=[], y=[], frac=[], count=[], color=[]))
        h = figure(title="connections from each input to hidden layer 1 (one row per network)",
                   x_range=list(labels), y_range=(-0.5, 0.5), height=300, width=460,
                   tools="hover,save", tooltips=[("input", "@x"), ("network", "@y"),
                                                 ("connections", "@count")],
                   toolbar_location=None)
        h.rect("x", "y", width=1, height=1, source=self.src_heat, fill_color="color",
               line_color=None)
        h.yaxis.axis_label = "network"
        self.fig_heat = h
        self.src_gone = ColumnDataSource(dict(x=[], top=[]))
        b = figure(title="networks with the input pruned out entirely (%)", x_range=list(labels),
                   y_range=(0, 105), height=200, width=460, tools="save", toolbar_location=None)
        b.vbar(x="x", top="top", width=0.8, source=self.src_gone, color=PURPLE)
        self.fig_gone = b

        self.src_loss = ColumnDataSource(dict(xs=[], ys=[]))
        self.src_loss_med = ColumnDataSource(dict(x=[], y=[]))
        lf = figure(title="test loss versus sparsity", y_axis_type="log", height=300, width=460,
                    x_axis_label="sparsity (%)", y_axis_label="scaled MSE",
                    tools="pan,wheel_zoom,reset,save", toolbar_location="above")
        lf.multi_line("xs", "ys", source=self.src_loss, line_color=BLUE, line_alpha=0.3)
        lf.line("x", "y", source=self.src_loss_med, line_color=ORANGE, line_width=3,
                legend_label="median")
        lf.scatter("x", "y", source=self.src_loss_med, color=ORANGE, size=6)
        self.threshold_span = Span(location=1e-3, dimension="width", line_color=RED,
                                   line_dash="dashed", line_width=2)
        self.level_span = Span(location=0, dimension="height", line_color=GREY,
                               line_dash="dotted", line_width=2)
        lf.add_layout(self.threshold_span)
        lf.add_layout(self.level_span)
        lf.legend.location = "top_left"
        self.fig_loss = lf
        self.src_hist = ColumnDataSource(dict(x=[], top=[]))
        hf = figure(title="optimal sparsity (sparsest level under the threshold)",
                    x_range=["none"], height=260, width=460, x_axis_label="sparsity",
                    y_axis_label="networks", tools="save", toolbar_location=None)
        hf.vbar(x="x", top="top", width=0.8, source=self.src_hist, color=BLUE)
        hf.xaxis.major_label_orientation = 0.8
        self.fig_hist = hf

    def __panel__(self):
        controls = pn.Row(
            pn.widgets.Select.from_param(self.param.experiment, width=260),
            pn.widgets.Select.from_param(self.param.network, width=160),
            pn.widgets.FloatInput.from_param(self.param.threshold, width=120, step=1e-4),
            self.level_slider, sizing_mode="stretch_width")
        legend = pn.pane.HTML(
            f"<span style='color:{BLUE}'>■</span> positive weight "
            f"<span style='color:{RED}'>■</span> negative weight "
            f"<span style='color:{GREY}'>■</span> edge of a removed node; nodes: "
            f"<span style='color:{PURPLE}'>●</span> ghost (no input) "
            f"<span style='color:{ORANGE}'>●</span> dead (no output) "
            f"<span style='color:#bbbbbb'>●</span> removed with them. Opacity and width ∝ |w|.")
        left = pn.Column(pn.pane.Bokeh(self.fig_graph), legend, self.note, self.table,
                         sizing_mode="stretch_width")
        right = pn.Column(pn.pane.Bokeh(self.fig_heat), pn.pane.Bokeh(self.fig_gone),
                          pn.pane.Bokeh(self.fig_loss), pn.pane.Bokeh(self.fig_hist), width=480)
        return pn.Column(self._message, controls, pn.Row(left, right,
                                                         sizing_mode="stretch_width"),
                         sizing_mode="stretch_width")


def interesting_level(exp) -> int:
    """The level to open an experiment on: the median optimally sparse level, or else the
    sparsest level whose median test loss is within 1.5× of the dense one (before breakdown)."""
    done = exp.levels_done
    opt = exp.optimal_level(float(getattr(exp.config, "threshold", 1e-3) or 1e-3))
    if (opt >= 0).any():
        return int(np.median(opt[opt >= 0]))
    with np.errstate(all="ignore"):
        med = np.nanmedian(exp.test_loss[:done], axis=1)
    if not np.isfinite(med[0]):
        return 0
    ok = np.flatnonzero(med <= 1.5 * med[0])
    return int(ok.max()) if len(ok) else 0


def _first_usable(entries: dict) -> str | None:
    """The embedded default if present, else the first experiment with a finished level."""
    for label, path in entries.items():
        try:
            if catalog().load(path).levels_done > 0:
                return label
        except (ValueError, FileNotFoundError, KeyError, OSError):
            continue
    return next(iter(entries), None)


def _blues(f: float) -> str:
    """White (0) to dark blue (1)."""
    f = float(np.clip(f, 0, 1))
    if f == 0:
        return "#ffffff"
    r, g, b = (int(255 - f * (255 - c)) for c in (8, 48, 107))
    return f"#{r:02x}{g:02x}{b:02x}"
