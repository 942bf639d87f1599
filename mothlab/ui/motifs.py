"""Motifs tab: motif z-scores of pruned networks, at one level and across sparsity.

Two panels side by side (two experiments, e.g. two architectures), each with its own null model.
Results come from :func:`mothlab.analysis.motifs.load_motif_results`; when an experiment has none
for the chosen null, a button starts :func:`mothlab.analysis.motifs.analyse_experiment` as a
background job (shared by every session, like training).
"""

from __future__ import annotations

import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource, Span
from bokeh.plotting import figure

from mothlab import jobs

from .common import GREY, PALETTE, add_periodic, catalog, show

MOTIFS = ("diverging2", "converging2", "chain2", "diverging3", "converging3", "chain3", "bifan",
          "biparallel")
MOTIF_LABELS = {"diverging2": "2nd diverging", "converging2": "2nd converging",
                "chain2": "2nd chain", "diverging3": "3rd diverging",
                "converging3": "3rd converging", "chain3": "3rd chain", "bifan": "bi-fan",
                "biparallel": "bi-parallel", "edges": "edges"}
NULLS = ("edges", "live_nodes", "degrees", "as_published")


def _motif_api():
    """(analyse_experiment, load_motif_results) from the analysis layer."""
    try:
        from mothlab.analysis.motifs import analyse_experiment, load_motif_results
    except ImportError:
        from mothlab.analysis.experiment_motifs import analyse_experiment, load_motif_results
    return analyse_experiment, load_motif_results


def _get(obj, *names):
    for n in names:
        if isinstance(obj, dict) and n in obj:
            return obj[n]
        if not isinstance(obj, dict) and hasattr(obj, n):
            return getattr(obj, n)
    return None


def z_by_motif(results) -> dict[str, np.ndarray]:
    """``{motif: (L, n_networks) z}`` from :func:`load_motif_results`'s answer (NaN = undefined).

    Accepts a mapping or an object with ``z``/``zscores`` (a mapping motif → (L, n) array, or an
    (L, n, n_motifs) array with ``motifs`` naming the last axis).
    """
    z = _get(results, "z", "zscores", "z_scores")
    if z is None:
        raise ValueError("motif results hold no z-scores (expected a 'z' field).")
    if isinstance(z, dict):
        out = {k: np.array(v, float) for k, v in z.items()}
    else:
        z = np.asarray(z, float)
        names = _get(results, "motifs") or MOTIFS
        out = {m: z[..., i].copy() for i, m in enumerate(names)}
    undefined = _get(results, "undefined")
    done = _get(results, "done")
    for k, v in out.items():
        if isinstance(undefined, dict) and k in undefined:
            v[np.asarray(undefined[k], bool)] = np.nan
        if done is not None:
            v[~np.asarray(done, bool)[: len(v)]] = np.nan  # levels not analysed yet
    return out


def analysis_job(path: str, null: str, n_random: int):
    def fn(progress, cancel):
        analyse_experiment, _ = _motif_api()
        analyse_experiment(path, null=null, n_random=n_random, progress=progress, cancel=cancel)
        return path
    return fn


class MotifPanel(pn.viewable.Viewer):
    """Z-scores of one experiment under one null model."""

    experiment = param.Selector(default=None, objects=[])
    null = param.Selector(default="edges", objects=list(NULLS),
                          doc="Random layered networks keeping per-layer edge counts (edges), "
                              "also the set of live nodes (live_nodes), or every degree "
                              "(degrees).")
    level = param.Integer(default=0, bounds=(0, None))
    n_random = param.Integer(default=200, bounds=(10, 100_000), label="random networks",
                             doc="Random networks per real one (sampled nulls).")

    def __init__(self, title: str, runner: jobs.JobRunner | None = None, **params):
        super().__init__(**params)
        self.title = title
        self.runner = runner or jobs.runner()
        self.exp = None
        self.z: dict | None = None
        self.job: jobs.Job | None = None
        self._version = -1
        self._message = pn.pane.Alert("", alert_type="info", visible=False,
                                      sizing_mode="stretch_width")
        self.run_button = pn.widgets.Button(name="Run motif analysis", button_type="primary",
                                            visible=False)
        self.run_button.on_click(lambda e: self.start_analysis())
        self.progress = pn.indicators.Progress(value=0, max=1000, visible=False,
                                               sizing_mode="stretch_width")
        self.level_slider = pn.widgets.DiscreteSlider(name="sparsity", options={"0%": 0},
                                                      value=0, sizing_mode="stretch_width")
        self.level_slider.param.watch(lambda e: setattr(self, "level", int(e.new)), "value")
        self._make_figures()
        self.refresh()
        self._cb = add_periodic(self, self.refresh, 1000)

    def _say(self, text, kind="info"):
        show(self._message, text, kind)

    def refresh(self):
        cat = catalog()
        entries = cat.scan()
        if cat.version != self._version:
            self._version = cat.version
            self._entries = entries
            self.param.experiment.objects = list(entries)
            if self.experiment not in entries:
                from .explorer import first_usable as _first_usable

                self.experiment = _first_usable(entries)
        job = self.job
        if job is not None:
            snap = job.snapshot()
            self.progress.visible = job.active
            self.progress.value = int(1000 * min(1.0, max(0.0, snap.get("fraction") or 0)))
            if job.active:
                self._say(f"Motif analysis running ({snap['state']}): "
                          f"{snap.get('message') or ''}", "info")
            elif job.state == jobs.FAILED:
                self._say(f"The motif analysis failed: {job.error}", "danger")
                self.job = None
            else:
                self.job = None
                self._load()

    @param.depends("experiment", "null", watch=True)
    def _load(self):
        self.z = None
        self.exp = None
        self.run_button.visible = False
        path = getattr(self, "_entries", {}).get(self.experiment)
        if path is None:
            self._say("No experiment to show yet.", "info")
            self._clear()
            return
        try:
            self.exp = catalog().load(path)
            _, load_motif_results = _motif_api()
            res = load_motif_results(self.exp, self.null)
        except (ValueError, FileNotFoundError, KeyError, OSError, ImportError) as err:
            self._say(f"Cannot read motif results of {self.experiment!r}: {err}", "danger")
            self._clear()
            return
        if res is None:
            active = [j for j in self.runner.active("motifs")
                      if j.meta.get("path") == str(path) and j.meta.get("null") == self.null]
            if active:
                self.job = active[0]
            else:
                self._say(f"{self.experiment!r} has no motif analysis under the "
                          f"{self.null!r} null yet: run it here (in the background).", "info")
                self.run_button.visible = True
            self._clear()
            return
        try:
            self.z = z_by_motif(res)
        except ValueError as err:
            self._say(f"Motif results of {self.experiment!r} are unreadable: {err}", "danger")
            return
        self._say(None)
        L = next(iter(self.z.values())).shape[0]
        sp = self.exp.sparsity_levels[:L]
        opts = {f"{100 * s:g}%": i for i, s in enumerate(sp)}
        opt = self.exp.optimal_level(float(getattr(self.exp.config, "threshold", 1e-3)))
        if (opt >= 0).any():
            default = int(np.median(opt[opt >= 0]))
        else:  # no network under the threshold: show the level where the motifs stand out most
            import warnings

            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                strength = np.nansum([np.abs(np.nanmedian(v, axis=1)) for v in self.z.values()
                                      if np.isfinite(v).any()], axis=0)
            default = int(np.nanargmax(strength)) if np.size(strength) > 1 else L - 1
        self.level_slider.param.update(options=opts, value=min(default, L - 1))
        self.level = min(default, L - 1)
        self._update_sparsity_plot()
        self._update_level()

    def start_analysis(self):
        path = self._entries.get(self.experiment)
        if path is None:
            return None
        self.job = self.runner.submit(analysis_job(path, self.null, int(self.n_random)),
                                      name=f"motifs {self.experiment} ({self.null})",
                                      kind="motifs", meta={"path": str(path), "null": self.null})
        self.run_button.visible = False
        self.refresh()
        return self.job

    def _clear(self):
        for s in (self.src_points, self.src_median, self.src_lines):
            s.data = {k: [] for k in s.data}

    @param.depends("level", watch=True)
    def _update_level(self):
        if not self.z:
            return
        names = [m for m in MOTIFS if m in self.z]
        xs, ys, colors, med_x, med_y = [], [], [], [], []
        rng = np.random.default_rng(0)
        for k, m in enumerate(names):
            z = self.z[m][min(self.level, self.z[m].shape[0] - 1)]
            z = z[np.isfinite(z)]
            xs.append(k + rng.uniform(-0.25, 0.25, len(z)))
            ys.append(z)
            colors += [PALETTE[k % len(PALETTE)]] * len(z)
            if len(z):
                med_x.append(float(k))
                med_y.append(float(np.median(z)))
        self.src_points.data = dict(x=np.concatenate(xs) if xs else [],
                                    y=np.concatenate(ys) if ys else [], color=colors)
        self.src_median.data = dict(x=med_x, y=med_y)
        sp = self.exp.sparsity_levels[self.level]
        self.fig_level.title.text = f"{self.title}: z-scores at {100 * sp:g}% sparsity"
        self.level_span.location = 100 * float(sp)

    def _update_sparsity_plot(self):
        names = [m for m in MOTIFS if m in self.z]
        L = next(iter(self.z.values())).shape[0]
        sp = 100 * self.exp.sparsity_levels[:L]
        xs, ys, colors, labels = [], [], [], []
        for k, m in enumerate(names):
            with np.errstate(all="ignore"):
                z = np.where(np.isfinite(self.z[m]), self.z[m], np.nan)
                med = np.array([np.nanmedian(r) if np.isfinite(r).any() else np.nan for r in z])
            xs.append(sp)
            ys.append(med)
            colors.append(PALETTE[k % len(PALETTE)])
            labels.append(MOTIF_LABELS.get(m, m))
        self.src_lines.data = dict(xs=xs, ys=ys, color=colors, label=labels)

    def _make_figures(self):
        ticks = {i: MOTIF_LABELS[m] for i, m in enumerate(MOTIFS)}
        self.src_points = ColumnDataSource(dict(x=[], y=[], color=[]))
        self.src_median = ColumnDataSource(dict(x=[], y=[]))
        f = figure(title="z-scores per motif", height=320, width=520, x_range=(-0.6, 7.6),
                   y_axis_label="z-score (one dot per network)", tools="pan,wheel_zoom,reset,save",
                   toolbar_location="above")
        f.scatter("x", "y", source=self.src_points, color="color", alpha=0.6, size=5)
        f.scatter("x", "y", source=self.src_median, marker="dash", size=30, color="black",
                  line_width=3)
        f.add_layout(Span(location=0, dimension="width", line_color=GREY))
        f.xaxis.ticker = list(ticks)
        f.xaxis.major_label_overrides = ticks
        f.xaxis.major_label_orientation = 0.7
        self.fig_level = f
        self.src_lines = ColumnDataSource(dict(xs=[], ys=[], color=[], label=[]))
        g = figure(title="median z-score versus sparsity", height=320, width=520,
                   x_axis_label="sparsity (%)", y_axis_label="median z-score",
                   tools="pan,wheel_zoom,reset,save", toolbar_location="above")
        g.multi_line("xs", "ys", source=self.src_lines, line_color="color", line_width=2,
                     legend_field="label")
        g.add_layout(Span(location=0, dimension="width", line_color=GREY))
        self.level_span = Span(location=0, dimension="height", line_color=GREY,
                               line_dash="dotted", line_width=2)
        g.add_layout(self.level_span)
        g.legend.location = "top_left"
        g.legend.label_text_font_size = "8pt"
        g.legend.background_fill_alpha = 0.6
        self.fig_sparsity = g

    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown(f"### {self.title}"),
            pn.Row(pn.widgets.Select.from_param(self.param.experiment, width=220),
                   pn.widgets.Select.from_param(self.param.null, width=130),
                   pn.widgets.IntInput.from_param(self.param.n_random, width=110)),
            self._message, pn.Row(self.run_button), self.progress, self.level_slider,
            pn.pane.Bokeh(self.fig_level), pn.pane.Bokeh(self.fig_sparsity), width=540)


class MotifsView(pn.viewable.Viewer):
    """Two :class:`MotifPanel` side by side (e.g. two architectures, or two null models)."""

    def __init__(self, runner: jobs.JobRunner | None = None, **params):
        super().__init__(**params)
        self.left = MotifPanel("Experiment A", runner=runner)
        self.right = MotifPanel("Experiment B", runner=runner)
        # B: another experiment with motif results, or else the same one under a stricter null
        for label in self.right.param.experiment.objects:
            if label != self.left.experiment and self._has_results(label):
                self.right.experiment = label
                break
        else:
            self.right.experiment = self.left.experiment
            self.right.null = "degrees"

    def _has_results(self, label) -> bool:
        try:
            _, load = _motif_api()
            return load(catalog().scan()[label], "edges") is not None
        except Exception:  # noqa: BLE001
            return False

    def __panel__(self):
        intro = pn.pane.Markdown(
            "z = (N_real − mean N_null) / sd N_null for each network and motif; positive means "
            "the pruned networks have more of the motif than random layered networks with the "
            "same constraints. Undefined z-scores (a null with zero variance) are left out.",
            sizing_mode="stretch_width")
        return pn.Column(intro, pn.Row(self.left, self.right), sizing_mode="stretch_width")
