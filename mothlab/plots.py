"""The plots of mothlab: HoloViews elements, one definition for the app and the report.

Each builder takes a result object of :mod:`mothlab.analysis` and returns a HoloViews element
that knows nothing of a backend. :func:`styled` gives it the looks of a backend (Bokeh in the app,
matplotlib in ``mothlab report``) from the one style table below, and :func:`render` turns it into
a Bokeh figure or a matplotlib Figure:

>>> import numpy as np
>>> from types import SimpleNamespace
>>> r = SimpleNamespace(sparsity=np.array([0, .5]), levels_done=2, threshold=1e-3,
...                     loss=np.array([[5e-4, 6e-4], [2e-3, 9e-4]]), n_networks=2)
>>> el = loss_vs_sparsity(r)
>>> el.label
'Test loss versus sparsity: 2 networks, threshold 0.001 (the experiment’s)'
>>> fig = render(el, "bokeh")      # a bokeh figure; render(el, "matplotlib") a Figure

How the parts of a plot look is decided by their role (the element's ``group``: ``Network``,
``Median``, ``IQR``, ``Threshold``, ``Level``, ...) and, for motifs, by their label, through
:data:`STYLE`; colours come from :data:`PALETTE` only (Okabe & Ito's colour-blind-safe set).
Titles are the elements' labels, axis names their dimensions' labels, so both backends show the
same words.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np

from mothlab.palette import COLORS, PALETTE, SEQUENTIAL  # re-exported: the palette lives there

__all__ = [
    "PALETTE",
    "COLORS",
    "MOTIF_STYLES",
    "STYLE",
    "motif_style",
    "loss_vs_sparsity",
    "level_marker",
    "optimal_histogram",
    "input_heatmap",
    "inputs_cut",
    "heatmap_title",
    "cut_title",
    "zscore_distributions",
    "zscore_vs_sparsity",
    "METHOD_STYLES",
    "method_colors",
    "compare_distribution",
    "compare_flops",
    "compare_zscores",
    "styled",
    "render",
]


SPARSITY = hv.Dimension("sparsity", label="sparsity (% of weights pruned)", unit=None)


_FAMILY_COLORS = {
    "diverging": COLORS["blue"],
    "converging": COLORS["orange"],
    "chain": COLORS["green"],
    "bifan": COLORS["vermillion"],
    "biparallel": COLORS["purple"],
}


def motif_style(name: str) -> dict:
    """Colour and dash of a motif: the colour says its shape (diverging, converging, chain,
    bi-fan, bi-parallel), the dash its order (solid 2nd, dashed 3rd), so eight motifs stay
    apart with five colour-blind-safe colours."""
    family = name.rstrip("0123456789")
    return {
        "color": _FAMILY_COLORS.get(family, COLORS["grey"]),
        "dash": "dashed" if name.endswith("3") else "solid",
    }


#: label → style of each motif series (filled from the analysis layer's MOTIFS and
#: MOTIF_LABELS by the motif builders), so both backends and both plots agree
MOTIF_STYLES: dict[str, dict] = {}

#: role (element group) → backend-neutral style. Keys: color, alpha, line_width, dash, size,
#: marker, cmap, colorbar, logy, xrotation, legend, height, aspect, plus "xticks".
STYLE: dict[str, dict] = {
    "Network": dict(color=COLORS["blue"], alpha=0.25, line_width=1),
    "Median": dict(color=COLORS["black"], line_width=3),
    "MedianPoint": dict(color=COLORS["black"], size=6),
    "IQR": dict(color=COLORS["black"], alpha=0.15, line_width=0),
    "Threshold": dict(color=COLORS["vermillion"], dash="dashed", line_width=2),
    "Breakdown": dict(color=COLORS["vermillion"], dash="dotted", line_width=1.5),
    "Level": dict(color=COLORS["grey"], dash="dotted", line_width=2),
    "Zero": dict(color=COLORS["grey"], line_width=1),
    "Optimal": dict(color=COLORS["blue"], alpha=0.9),
    "None": dict(color=COLORS["grey"], alpha=0.9),
    "Cut": dict(color=COLORS["purple"], alpha=0.9),
    "Connectivity": dict(height=330),
    "Motif": dict(alpha=0.55, size=5),
    "MotifMedian": dict(color=COLORS["black"], marker="dash", size=24, line_width=3),
    "MotifCurve": dict(line_width=2),
    "MotifBand": dict(alpha=0.12, line_width=0),
    # whole plots (the top element's group)
    "LossPlot": dict(logy=True, legend="right", height=300),
    "HistogramPlot": dict(xrotation=60, height=260),
    "CutPlot": dict(height=200),
    "MotifPlot": dict(legend=None, height=320, xrotation=35),
    "MotifTrendPlot": dict(legend="right", height=320),
    # the comparison study (issue 12): one colour per method, from METHOD_STYLES
    "Method": dict(alpha=0.7, size=5),
    "MethodMedian": dict(color=COLORS["black"], marker="dash", size=22, line_width=3),
    "MethodPoint": dict(size=8),
    "MethodRange": dict(line_width=1.5),
    "MethodCurve": dict(line_width=2, size=5),
    "ComparePlot": dict(legend=None, height=300, xrotation=35),
    "CompareLossPlot": dict(legend=None, height=300, xrotation=35, logy=True),
    "CompareFlopsPlot": dict(logy=True, legend="right", height=300),
    "CompareZPlot": dict(legend="right", height=320, xrotation=35),
}

# backend-neutral names → each backend's option names
_NAMES = {
    "bokeh": {"line_width": "line_width", "dash": "line_dash", "size": "size"},
    "matplotlib": {"line_width": "linewidth", "dash": "linestyle", "size": "s"},
}
_MARKERS = {"bokeh": {"dash": "dash"}, "matplotlib": {"dash": "_"}}


def _no_nan_log(a):
    """A loss array fit for a log axis: non-finite and non-positive values become NaN (gaps)."""
    a = np.asarray(a, float)
    return np.where(np.isfinite(a) & (a > 0), a, np.nan)


def _wrap(text: str, width: int = 52) -> str:
    """Break a long phrase into lines (Bokeh titles do not wrap by themselves)."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def _pct(s) -> str:
    return f"{100 * float(s):g}%"


# -- sparsity --------------------------------------------------------------------------------


def _sparse_run(result) -> bool:
    """Whether ``result`` is of a sparse-from-the-start run (every level at one density)."""
    return getattr(result, "method", "prune") != "prune"


def level_axis(result) -> tuple[np.ndarray, hv.Dimension]:
    """Where each level sits on a plot's x axis, and that axis: the sparsity (%) of a pruning
    run; the training step at the level's end for a sparse-from-the-start run (its levels are
    topology updates at one density, see :meth:`SparsityResult.level_label`)."""
    if not _sparse_run(result):
        return 100 * np.asarray(result.sparsity, float), SPARSITY
    from mothlab.nets.sparse import level_plan

    cfg = result.experiment.config
    steps = np.array([p["step"] for p in level_plan(cfg)], float)
    return steps, hv.Dimension(
        "step", label=f"training step ({cfg.method}, density {100 * float(cfg.density):.4g} %)"
    )


def level_x(result, level: int) -> float:
    """The x position of ``level`` on :func:`loss_vs_sparsity` (for a marker that moves)."""
    return float(level_axis(result)[0][int(level)])


def loss_vs_sparsity(result, *, level: int | None = None, which: str = "test") -> hv.Overlay:
    """Fig 2–3: loss against sparsity, one thin line per network, the median and interquartile
    band, the experiment's threshold (``result.threshold``, never a constant), and ``level``
    marked when given. A sparse-from-the-start run (all levels at one density) is drawn against
    the training step instead (:func:`level_axis`).

    result: a :class:`mothlab.analysis.SparsityResult` (``sparsity`` (L,), ``levels_done``,
    ``threshold``, ``loss`` (L, n)).
    """
    done = int(result.levels_done)
    xs, xdim = level_axis(result)
    sp = xs[:done]
    loss = _no_nan_log(np.asarray(result.loss)[:done])
    ydim = hv.Dimension("loss", label=f"{which} loss (scaled MSE)")
    with np.errstate(all="ignore"), _quiet():
        med = np.nanmedian(loss, axis=1)
        q25, q75 = np.nanpercentile(loss, 25, axis=1), np.nanpercentile(loss, 75, axis=1)
    t = float(result.threshold)
    nets = hv.Path(
        [np.column_stack([sp, loss[:, j]]) for j in range(loss.shape[1])],
        kdims=[xdim, ydim],
        group="Network",
        label="one line per network",
    )
    band = hv.Area((sp, q25, q75), xdim, [ydim, "q75"], group="IQR", label="interquartile range")
    median = hv.Curve((sp, med), xdim, ydim, group="Median", label="median")
    points = hv.Scatter((sp, med), xdim, ydim, group="MedianPoint")
    span = (
        (sp[0], sp[-1])
        if len(sp) > 1
        else (0.0, float(sp[0]) or 1.0)
        if _sparse_run(result)
        else (0.0, 100.0)
    )
    thr = hv.Curve(
        [(span[0], t), (span[1], t)], xdim, ydim, group="Threshold", label=f"threshold {t:g}"
    )
    parts = [nets, band, median, points, thr]
    if level is not None and 0 <= int(level) < done:
        parts.append(hv.VLine(float(sp[int(level)]), group="Level"))
    n = loss.shape[1]
    return hv.Overlay(
        parts,
        group="LossPlot",
        label=f"Test loss {'during training' if _sparse_run(result) else 'versus sparsity'}\n"
        f"{n} networks; threshold {t:g} (the experiment’s)",
    )


def level_marker(result, level: int) -> hv.VLine:
    """The dotted vertical line at ``level`` (for overlays that move it without redrawing)."""
    return hv.VLine(level_x(result, level), group="Level")


def optimal_histogram(result, rule: str, rules: dict | None = None) -> hv.Overlay:
    """Fig 4: how many networks are optimally sparse at each level under selection ``rule``,
    plus those with no such level; the title names the rule and says what it means.

    result: a SparsityResult (``optimal_counts(rule)`` (L,), ``optimal_level(rule)`` (n,)).
    rules: the rule descriptions (default :data:`mothlab.analysis.SELECTION_RULES`).
    """
    if rules is None:
        from mothlab.analysis import SELECTION_RULES as rules
    done = int(result.levels_done)
    counts = np.asarray(result.optimal_counts(rule))[:done]
    n_none = int((np.asarray(result.optimal_level(rule)) < 0).sum())
    labels = [_level_name(result, i) for i in range(done)]
    x = hv.Dimension("level", label="optimal sparsity")
    y = hv.Dimension("networks", label="networks")
    bars = hv.Bars(
        list(zip(labels, counts.astype(int))), x, y, group="Optimal", label="optimally sparse"
    )
    none = hv.Bars([("none", n_none)], x, y, group="None", label="no level")
    n = int(counts.sum()) + n_none
    return hv.Overlay(
        [bars, none],
        group="HistogramPlot",
        label=f"Optimal sparsity, {rule} rule: {int(counts.sum())} of {n} "
        f"networks have a level\n" + _wrap(rules[rule]),
    )


def input_heatmap(result, level: int, labels, connectivity=None) -> hv.HeatMap:
    """Fig 5 per network: connections from each input to hidden layer 1 at ``level``, one row per
    network, with a colour bar (white = the input is cut from that network).

    result: a SparsityResult (``input_connectivity(level)`` → (n_inputs, n_networks) int,
    ``sparsity``); labels: the input names (:data:`mothlab.data.INPUT_LABELS`); connectivity:
    that array when the caller has it already (a view's cache).
    """
    conn = np.asarray(
        result.input_connectivity(int(level)) if connectivity is None else connectivity
    )  # (n_inputs, n_networks)
    n_in, n_net = conn.shape
    xi, net = np.meshgrid(np.arange(n_in), np.arange(n_net), indexing="ij")
    data = {
        "input": np.asarray(labels, object)[:n_in][xi.ravel()],
        "network": net.ravel(),
        "connections": conn.ravel(),
    }
    width = _hidden_width(result)
    el = hv.HeatMap(
        data,
        [hv.Dimension("input", label="input"), hv.Dimension("network", label="network")],
        hv.Dimension("connections", label="connections to hidden layer 1", range=(0, width)),
        group="Connectivity",
        label=heatmap_title(result, level),
    )
    return el  # alone, not in an overlay: matplotlib then keeps the colour bar off the cells


def inputs_cut(result, level: int, labels, connectivity=None) -> hv.Overlay:
    """The share of networks from which each input is cut entirely at ``level`` (θ̇₀ vanishes);
    arguments as :func:`input_heatmap`."""
    conn = np.asarray(
        result.input_connectivity(int(level)) if connectivity is None else connectivity
    )
    gone = 100 * (conn == 0).mean(axis=1)
    bars = hv.Bars(
        list(zip(list(labels)[: len(gone)], gone)),
        hv.Dimension("input", label="input"),
        hv.Dimension("cut", label="networks (%)", range=(0, 100)),
        group="Cut",
    )
    return hv.Overlay([bars], group="CutPlot", label=cut_title(result, level))


def _level_name(result, level: int) -> str:
    """``result.level_label(level)`` for a sparse-from-the-start run, else ``"85%"``."""
    if _sparse_run(result):
        return result.level_label(int(level))
    return _pct(np.asarray(result.sparsity)[int(level)])


def heatmap_title(result, level: int) -> str:
    """The title of :func:`input_heatmap` (for views that move a rendered plot to a level)."""
    if _sparse_run(result):  # a longer level name: a shorter phrase, so the title fits
        head = f"Input connections to hidden layer 1 at {_level_name(result, level)}"
    else:
        head = f"Connections from each input to hidden layer 1 at {_level_name(result, level)}"
        head += " sparsity"
    return f"{head}\n(of {_hidden_width(result)} per input; one row per network; white: input cut)"


def cut_title(result, level: int) -> str:
    """The title of :func:`inputs_cut`."""
    sep = "\n" if _sparse_run(result) else " "  # a sparse run's level name is longer
    return (
        f"Networks with the input cut from hidden layer 1 (%){sep}at {_level_name(result, level)}"
    )


def _hidden_width(result) -> int:
    sizes = getattr(result, "layer_sizes", None)
    return int(sizes[1]) if sizes is not None and len(sizes) > 1 else 0


# -- motifs ----------------------------------------------------------------------------------


def _motif_labels():
    from mothlab.analysis import MOTIF_LABELS, NULL_LABELS

    for m, lab in MOTIF_LABELS.items():
        MOTIF_STYLES.setdefault(lab, motif_style(m))
    return MOTIF_LABELS, NULL_LABELS


def _defined(motif_result, z: dict) -> list[str]:
    """The motifs with at least one defined z-score (an edge null fixes the edge count: its z is
    undefined everywhere and it is left out)."""
    return [m for m in motif_result.motifs if np.isfinite(np.asarray(z[m], float)).any()]


def zscore_distributions(
    motif_result, level: int | None, *, sparsity_result=None, rule: str = "paper"
) -> hv.Overlay:
    """Fig 2 of the motif paper: each motif's z-score across networks (one dot per network,
    jittered the same way every time) with the median marked.

    motif_result: a :class:`mothlab.analysis.MotifResult`. level: an analysed level index, or
    None for each network at its own optimal level under ``rule`` (needs ``sparsity_result``);
    the title names the null, the level or the rule, and how many networks it rests on.
    """
    labels, null_labels = _motif_labels()
    mr = motif_result
    if level is None:
        if sparsity_result is None:
            raise ValueError(
                "level=None reads each network at its optimal level: pass "
                "sparsity_result=mothlab.analysis.sparsity_result(...)"
            )
        from mothlab.analysis import SELECTION_RULES

        z = mr.at_optimal(sparsity_result.optimal_level(rule))
        where = f"each network's optimal level, {rule} rule ({SELECTION_RULES[rule]})"
    else:
        level = int(level)
        if not (0 <= level < len(mr.done) and mr.done[level]):
            raise ValueError(
                f"level {level} has no motif analysis yet (analysed: "
                f"{np.flatnonzero(mr.done).tolist()}); run the analysis first"
            )
        z = {m: mr.z[m][level] for m in mr.motifs}
        where = (
            sparsity_result.level_label(level)
            if sparsity_result is not None and _sparse_run(sparsity_result)
            else f"{_pct(mr.sparsity_levels[level])} sparsity"
        )
    names = _defined(mr, z)
    rng = np.random.default_rng(0)
    xd = hv.Dimension("motif", label="motif")
    yd = hv.Dimension("z", label="z-score (one dot per network)")
    parts, med, n = [], [], 0
    for k, m in enumerate(names):
        v = np.asarray(z[m], float)
        v = v[np.isfinite(v)]
        n = max(n, v.size)
        parts.append(
            hv.Scatter(
                (k + rng.uniform(-0.25, 0.25, v.size), v),
                xd,
                yd,
                group="Motif",
                label=labels.get(m, m),
            )
        )
        if v.size:
            med.append((k, float(np.median(v))))
    parts.append(hv.Scatter(med, xd, yd, group="MotifMedian", label="median"))
    parts.append(hv.HLine(0.0, group="Zero"))
    return hv.Overlay(
        parts,
        group="MotifPlot",
        label=_wrap(f"Motif z-scores at {where}", 60)
        + f"\nnull: {null_labels.get(mr.null, mr.null)}; {n} networks",
    )


def zscore_vs_sparsity(motif_result, *, band: bool = True, sparsity_result=None) -> hv.Overlay:
    """Fig 3 of the motif paper: the median z-score of each motif against sparsity, with the
    interquartile band, over the analysed levels of ``motif_result`` (a MotifResult). With the
    ``sparsity_result`` of a sparse-from-the-start run, against the training step instead
    (:func:`level_axis`: its levels are topology updates at one density)."""
    labels, null_labels = _motif_labels()
    mr = motif_result
    done = np.asarray(mr.done, bool)
    if sparsity_result is not None and _sparse_run(sparsity_result):
        xs, xdim = level_axis(sparsity_result)
        sp = xs[: len(done)][done]
        what = "during training"
    else:
        sp, xdim, what = (
            100 * np.asarray(mr.sparsity_levels, float)[done],
            SPARSITY,
            "versus sparsity",
        )
    yd = hv.Dimension("z", label="median z-score")
    parts = []
    with np.errstate(all="ignore"), _quiet():
        for m in _defined(mr, {k: np.asarray(mr.z[k])[done] for k in mr.motifs}):
            z = np.asarray(mr.z[m], float)[done]
            lab = labels.get(m, m)
            if band:
                parts.append(
                    hv.Area(
                        (sp, np.nanpercentile(z, 25, axis=1), np.nanpercentile(z, 75, axis=1)),
                        xdim,
                        [yd, "q75"],
                        group="MotifBand",
                        label=lab,
                    )
                )
            parts.append(
                hv.Curve((sp, np.nanmedian(z, axis=1)), xdim, yd, group="MotifCurve", label=lab)
            )
    parts.append(hv.HLine(0.0, group="Zero"))
    return hv.Overlay(
        parts,
        group="MotifTrendPlot",
        label=f"Median motif z-score {what} (band: 25–75 %)\n"
        f"null: {null_labels.get(mr.null, mr.null)}; "
        f"{int(done.sum())} levels analysed",
    )


# -- the comparison study (issue 12: sparse from the start versus pruning) -------------------

#: label (method name) → style of each method of the comparison study, filled by
#: :func:`method_colors` from the study's method order (one palette colour each)
METHOD_STYLES: dict[str, dict] = {}


def method_colors() -> dict:
    """Method → colour, one palette colour per method of the study in its fixed order
    (:func:`mothlab.analysis.sparse_study.study_methods`), so a method keeps its colour in every
    figure whatever subset is shown."""
    from mothlab.analysis.sparse_study import study_methods

    for i, m in enumerate(study_methods()):
        METHOD_STYLES.setdefault(m, {"color": PALETTE[i % len(PALETTE)]})
    return {m: v["color"] for m, v in METHOD_STYLES.items()}


def _compare_ticks(element) -> list:
    if element.group == "CompareZPlot":
        from mothlab.analysis import MOTIF_LABELS
        from mothlab.analysis.topology import MATCHED

        return [(k, MOTIF_LABELS.get(m, m)) for k, m in enumerate(MATCHED)]
    names = []
    for e in element:
        if e.group in ("Method", "MethodCurve") and e.label not in names:
            names.append(e.label)
    return list(enumerate(names))


def _methods_in(rows, task, density) -> list[str]:
    from mothlab.analysis.sparse_study import study_methods

    have = {r["method"] for r in rows if r["task"] == task and float(r["density"]) == density}
    return [m for m in study_methods() if m in have]


def _values(rows, task, density, method, field) -> np.ndarray:
    return np.array(
        [
            float(r[field])
            for r in rows
            if r["task"] == task
            and float(r["density"]) == density
            and r["method"] == method
            and r[field] not in ("", None)
        ],
        float,
    )


_COMPARE_FIELDS = {
    "test_loss": ("test loss", "test loss (one dot per network)"),
    "test_accuracy": ("test accuracy", "test accuracy (one dot per network)"),
}


def compare_distribution(rows, task: str, density: float, field: str = "test_loss") -> hv.Overlay:
    """The comparison study: ``field`` (test loss, or test accuracy for digits) of every
    network, one column of dots per method (jittered the same way every time) with its median
    marked, at one task and density. rows: the study's CSV rows
    (:func:`mothlab.analysis.sparse_study.read_rows`)."""
    if field not in _COMPARE_FIELDS:
        raise ValueError(f"field must be one of {list(_COMPARE_FIELDS)}, got {field!r}.")
    method_colors()
    what, ylabel = _COMPARE_FIELDS[field]
    xd = hv.Dimension("method", label="method")
    yd = hv.Dimension(field, label=ylabel)
    rng = np.random.default_rng(0)
    parts, med, n = [], [], 0
    methods = _methods_in(rows, task, density)
    for k, m in enumerate(methods):
        v = _values(rows, task, density, m, field)
        n = max(n, v.size)
        parts.append(
            hv.Scatter((k + rng.uniform(-0.22, 0.22, v.size), v), xd, yd, group="Method", label=m)
        )
        if v.size:
            med.append((k, float(np.median(v))))
    parts.append(hv.Scatter(med, xd, yd, group="MethodMedian", label="median"))
    return hv.Overlay(
        parts,
        group="CompareLossPlot" if field == "test_loss" else "ComparePlot",
        label=f"{task}, density {density:g}: {what} per method\n"
        f"{n} networks per method; bar: median",
    )


def compare_flops(rows, task: str, density: float) -> hv.Overlay:
    """The comparison study: median test loss (bars: 25–75 %) against training FLOPs per
    network (sparse arithmetic, :func:`mothlab.nets.sparse.training_flops`), one point per
    method, at one task and density."""
    method_colors()
    xd = hv.Dimension("gflops", label="training GFLOPs per network (sparse arithmetic)")
    yd = hv.Dimension("loss", label="test loss (median, 25–75 %)")
    parts = []
    for m in _methods_in(rows, task, density):
        loss = _values(rows, task, density, m, "test_loss")
        fl = _values(rows, task, density, m, "train_gflops")
        if not loss.size:
            continue
        x, y = float(np.median(fl)), float(np.median(loss))
        lo, hi = np.quantile(loss, [0.25, 0.75])
        parts.append(
            hv.ErrorBars(
                [(x, y, y - lo, hi - y)], xd, [yd, "neg", "pos"], group="MethodRange", label=m
            )
        )
        parts.append(hv.Scatter([(x, y)], xd, yd, group="MethodPoint", label=m))
    return hv.Overlay(
        parts,
        group="CompareFlopsPlot",
        label=f"{task}, density {density:g}: loss and training cost",
    )


def compare_zscores(rows, task: str, density: float) -> hv.Overlay:
    """The comparison study: the median motif z-score (null "edges", exact) of the masks each
    method ends with, one line per method across the motifs, at one task and density."""
    from mothlab.analysis.topology import MATCHED

    method_colors()
    # neither named nor labelled "motif": HoloViews' matplotlib backend reads a style string
    # that names a dimension as that column, and the "motif" method's label would be one
    xd = hv.Dimension("motif_index", label="motifs")
    yd = hv.Dimension("z", label="median z-score of the final masks")
    parts = []
    with np.errstate(all="ignore"), _quiet():
        for m in _methods_in(rows, task, density):
            z = [np.nanmedian(_values(rows, task, density, m, f"z_{k}")) for k in MATCHED]
            parts.append(
                hv.Curve((np.arange(len(MATCHED)), z), xd, yd, group="MethodCurve", label=m)
            )
    parts.append(hv.HLine(0.0, group="Zero"))
    return hv.Overlay(
        parts,
        group="CompareZPlot",
        label=f"{task}, density {density:g}: motif z-scores each method ends with\n"
        "null: same edge count per layer (exact moments)",
    )


# -- styles and rendering --------------------------------------------------------------------


def _load(backend: str) -> None:
    if backend not in ("bokeh", "matplotlib"):
        raise ValueError(f"backend must be 'bokeh' or 'matplotlib', got {backend!r}.")
    if backend not in hv.Store.renderers:
        if backend == "bokeh":
            import holoviews.plotting.bokeh  # noqa: F401
        else:
            import holoviews.plotting.mpl  # noqa: F401


def _translate(style: dict, backend: str, element) -> dict:
    out = {}
    for k, v in style.items():
        if k in ("height", "legend", "aspect"):
            continue
        if k == "marker":
            v = _MARKERS[backend].get(v, v)
        if k == "size" and backend == "matplotlib":
            v = v * v  # matplotlib sizes are areas (pt²)
        if k == "line_width" and isinstance(element, hv.Area):
            k = "line_width" if backend == "bokeh" else "linewidth"
        out[_NAMES[backend].get(k, k)] = v
    if isinstance(element, (hv.HLine, hv.VLine)):
        out = {k: v for k, v in out.items() if k not in ("alpha", "s", "size")}
    if isinstance(element, hv.Path) and backend == "bokeh":
        out.pop("size", None)
    if isinstance(element, hv.Bars):
        out = {k: v for k, v in out.items() if k in ("color", "alpha", "xrotation")}
    if isinstance(element, (hv.Area, hv.ErrorBars, hv.Curve)):
        out.pop("size", None)
        out.pop("s", None)
    if isinstance(element, hv.ErrorBars) and backend == "matplotlib" and "color" in out:
        out["edgecolor"] = out["color"]  # matplotlib draws error bars in their edge colour
    return out


def _plot_opts(style: dict, backend: str, height: int | None, responsive: bool) -> dict:
    out = {}
    for k in ("logy", "logx", "xrotation"):
        if k in style:
            out[k] = style[k]
    legend = style.get("legend", "right")
    out["show_legend"] = legend is not None
    if legend is not None:
        out["legend_position"] = legend
    h = height or style.get("height", 300)
    if backend == "bokeh":
        out.update(
            height=h,
            toolbar=None,
            default_tools=[],
            fontsize={"title": "10.5pt"},
            **({"responsive": True, "min_width": 300} if responsive else {"width": 520}),
        )
    else:
        out.update(
            fig_inches=(7.5, max(2.6, h / 75)),
            aspect=7.5 / max(2.6, h / 75),
            fontsize={"title": 10},
        )
    return out


def styled(element, backend: str = "bokeh", *, height: int | None = None, responsive: bool = True):
    """``element`` with the looks of ``backend`` ("bokeh" or "matplotlib") from :data:`STYLE`.

    Bokeh plots stretch to their container's width (``responsive``) at ``height`` px (default: the
    plot's role height), legends outside the data; matplotlib figures are 7.5 in wide.
    """
    _load(backend)

    def one(el):
        st = dict(STYLE.get(el.group, {}))
        if el.group in ("Motif", "MotifCurve", "MotifBand") and el.label in MOTIF_STYLES:
            st["color"] = MOTIF_STYLES[el.label]["color"]
            if el.group == "MotifCurve":
                st["dash"] = MOTIF_STYLES[el.label]["dash"]
        if el.group.startswith("Method") and el.label in METHOD_STYLES:
            st.setdefault("color", METHOD_STYLES[el.label]["color"])
        plot = {}
        if isinstance(el, hv.HeatMap):
            plot.update(
                colorbar=True, cmap=SEQUENTIAL, tools=["hover"] if backend == "bokeh" else []
            )
            if backend == "bokeh":
                plot.update(line_color=None)
            else:
                plot.pop("tools")
                plot.update(show_values=False)
                n = len(el.dimension_values(1, expanded=False))
                if n > 20:  # a tick per network is unreadable in print: about ten of them
                    step = int(np.ceil(n / 10))
                    plot.update(yticks=[(k, str(k)) for k in range(0, n, step)])
            st = {}
        return el.opts(backend=backend, **_translate(st, backend, el), **plot)

    top = STYLE.get(element.group, {})
    out = element.map(one, [hv.Element]) if isinstance(element, hv.Overlay) else one(element)
    popts = _plot_opts(top, backend, height, responsive)
    popts["title"] = element.label  # not "{label} {group}": the title is the label alone
    if isinstance(element, hv.Overlay):
        if element.group == "MotifPlot":  # motif k sits at x = k: name the positions
            popts["xticks"] = [
                (k, el.label) for k, el in enumerate(e for e in element if e.group == "Motif")
            ]
            popts["xlim"] = (-0.6, len(popts["xticks"]) - 0.4)
        if element.group in ("ComparePlot", "CompareLossPlot", "CompareZPlot"):
            ticks = _compare_ticks(element)  # categories at x = 0, 1, ...: name them
            popts["xticks"] = ticks
            popts["xlim"] = (-0.6, len(ticks) - 0.4)
        return out.opts(backend=backend, **popts)
    return out.opts(
        backend=backend,
        **{k: v for k, v in popts.items() if k not in ("show_legend", "legend_position")},
    )


def render(element, backend: str = "bokeh", **kw):
    """A Bokeh figure (backend "bokeh") or a matplotlib Figure ("matplotlib") of ``element``,
    styled by :func:`styled` (keywords go to it)."""
    import warnings

    with warnings.catch_warnings():
        # matplotlib warns that the median's "_" marker has no edge to colour: it has none
        warnings.filterwarnings("ignore", message=".*unfilled marker.*")
        return hv.render(styled(element, backend, **kw), backend=backend)


class _quiet:
    """Silence numpy's all-NaN warnings (levels where every network failed are gaps)."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)
