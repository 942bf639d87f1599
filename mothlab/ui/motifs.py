"""Motifs tab: motif z-scores of pruned networks, at one level or at each network's optimal level,
and across sparsity — two experiments (or two nulls) side by side.

Results are :func:`mothlab.analysis.motif_result`; the null models and what they keep are
:data:`mothlab.analysis.NULLS`; the level opened on is :meth:`SparsityResult.level_to_show`; the
summary at the optimal level is :func:`mothlab.analysis.motif_summary` (which refuses to summarise
too few networks — the page shows why). When an experiment has no analysis under the chosen null,
a button starts :func:`mothlab.analysis.analyse_experiment` as a job in the ``"analysis"`` pool of
:func:`mothlab.jobs.runner` (progress, cancel by its owner, never blocking training). A shipped
or read-only experiment is never written: the analysis runs on a copy in the user's experiments
folder, which then appears in the lists.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import panel as pn
import param

import mothlab.analysis as A
from mothlab import jobs, plots, store
from mothlab.progress import report

from . import common
from .common import add_periodic, catalog, escape, experiments_dir, show
from .explorer import first_usable

#: bounds of the random networks drawn per real one by the sampled nulls: below 50 a z-score's
#: sd is too noisy to read; 2,000 on the embedded experiment already takes minutes on 2 cores
N_RANDOM_BOUNDS = (50, 2000)
AT_LEVEL, AT_OPTIMAL = "the level shown", "each network's optimal level"


def session_owner() -> str:
    """Who owns the jobs this page starts: the served session's id (or "local" outside one)."""
    doc = pn.state.curdoc
    ctx = getattr(doc, "session_context", None) if doc is not None else None
    return f"session {ctx.id}" if ctx is not None else "local"


def read_only(path) -> bool:
    """Whether the store at ``path`` must not be written: a shipped asset or a read-only folder."""
    is_shipped = getattr(store, "is_shipped", None)  # mothlab.store's own test, once it has one
    shipped = (
        is_shipped(path)
        if is_shipped
        else Path(path).resolve().is_relative_to(common.ASSETS.resolve())
    )
    return shipped or not os.access(path, os.W_OK)


def writable_copy(path) -> Path:
    """Where a motif analysis of ``path`` is written: ``path`` itself when writable, else a copy
    of it in the user's experiments folder (made once; an existing copy is reused)."""
    path = Path(path)
    if not read_only(path):
        return path
    dest = experiments_dir() / path.name
    if dest.resolve() == path.resolve():
        raise ValueError(
            f"{path} is read-only and is the experiments folder's own copy; make "
            "the experiments folder writable (MOTHLAB_EXPERIMENTS)."
        )
    return dest


def analysis_job(path, null: str, n_random: int):
    """``fn(progress, cancel)`` analysing ``path`` under ``null`` — into a copy in the
    experiments folder when ``path`` is shipped or read-only (copied first, reported)."""
    path = Path(path)

    def fn(progress, cancel):
        target = writable_copy(path)
        if target != path and not target.exists():
            report(
                progress,
                0.0,
                f"{path.name} is read-only (shipped): copying it to "
                f"{target.parent} to store the analysis beside it",
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(path, target)
        catalog().add(target)
        A.analyse_experiment(
            str(target), null=null, n_random=int(n_random), progress=progress, cancel=cancel
        )
        return str(target)

    return fn


def method_line(exp) -> str:
    """How an experiment's masks were made, in one line (so two panels side by side say which
    method each shows): ``"prune: train dense, then prune in 9 levels (20 % … 85 %)"`` or
    ``"set, sparse from the start at density 10 %: 40 levels, one per topology update"``."""
    cfg = exp.config
    method = getattr(cfg, "method", "prune")
    n = len(exp.sparsity_levels)
    if method == "prune":
        sp = [f"{100 * float(s):g} %" for s in exp.sparsity_levels]
        rng = f" ({sp[0]} … {sp[-1]})" if n > 1 else ""
        return f"prune: train dense, then prune in {n} levels{rng}"
    what = "one per topology update" if method in ("set", "rigl") else "one per training stretch"
    return (
        f"{method}, sparse from the start at density {100 * float(cfg.density):.4g} %: "
        f"{n} levels of {int(min(cfg.update_every, cfg.sparse_steps)):,} steps, {what}"
    )


class MotifPanel(pn.viewable.Viewer):
    """Motif z-scores of one experiment under one null."""

    experiment = param.Selector(default=None, objects=[], doc="An experiment store.")
    null = param.Selector(
        default="edges_live_nodes",
        objects={A.NULL_LABELS.get(k, k): k for k in A.NULLS},
        doc="The random layered networks z is measured against: "
        + "; ".join(f"{k}: {v}" for k, v in A.NULLS.items()),
    )
    at = param.Selector(
        default=AT_LEVEL,
        objects=[AT_LEVEL, AT_OPTIMAL],
        label="z-scores at",
        doc="One level for all networks, or each network at its own optimal "
        "level (under the selection rule).",
    )
    rule = param.Selector(
        default="paper",
        objects=list(A.SELECTION_RULES),
        label="selection rule",
        doc="; ".join(f"{k}: {v}" for k, v in A.SELECTION_RULES.items()),
    )
    level = param.Integer(default=0, bounds=(0, None))
    n_random = param.Integer(
        default=200,
        bounds=N_RANDOM_BOUNDS,
        label="random networks",
        doc="Random networks per real one (sampled nulls only; the edge "
        "nulls' moments are exact). Bounds: " + str(N_RANDOM_BOUNDS),
    )

    def __init__(
        self, title: str, runner: jobs.JobRunner | None = None, owner: str | None = None, **params
    ):
        super().__init__(**params)
        self.title = title
        self.runner = runner or jobs.runner()
        self.owner = owner or session_owner()
        self.result = None  # MotifResult
        self.sparsity = None  # SparsityResult
        self.job: jobs.Job | None = None
        self._entries: dict = {}
        self._version = -1
        self._message = pn.pane.Alert(
            "", alert_type="info", visible=False, sizing_mode="stretch_width"
        )
        self.null_doc = pn.pane.HTML("", sizing_mode="stretch_width")
        self.run_button = pn.widgets.Button(
            label="Run motif analysis", color="primary", visible=False
        )
        self.run_button.on_click(lambda e: self.start_analysis())
        self.cancel_button = pn.widgets.Button(label="Cancel analysis", visible=False)
        self.cancel_button.on_click(lambda e: self.cancel_analysis())
        self.progress = pn.indicators.Progress(
            value=0, max=1000, visible=False, sizing_mode="stretch_width"
        )
        self.level_slider = pn.widgets.DiscreteSlider(
            label="sparsity", options={"0%": 0}, value=0, sizing_mode="stretch_width"
        )
        self.level_slider.param.watch(lambda e: setattr(self, "level", int(e.new)), "value")
        self.fig_level = pn.pane.Bokeh(None, sizing_mode="stretch_width", min_height=320)
        self.fig_sparsity = pn.pane.Bokeh(None, sizing_mode="stretch_width", min_height=320)
        self.summary = pn.pane.HTML("", sizing_mode="stretch_width")
        self.table = pn.pane.DataFrame(None, index=False, sizing_mode="stretch_width")
        self.about = pn.pane.HTML("", sizing_mode="stretch_width")
        self._null_doc()
        self.refresh()
        self._cb = add_periodic(self, self.refresh, 1000)

    def _say(self, text, kind="info"):
        show(self._message, text, kind)

    @param.depends("null", watch=True)
    def _null_doc(self):
        self.null_doc.object = (
            f"<i>{escape(A.NULL_LABELS.get(self.null, self.null))}</i>: "
            f"{escape(A.NULLS[self.null])}"
        )

    # -- catalog, jobs --------------------------------------------------------------------
    def refresh(self):
        """Follow the catalog and the running analysis (periodic callback)."""
        cat = catalog()
        entries = cat.scan()
        if cat.version != self._version:
            self._version = cat.version
            self._entries = entries
            self.param.experiment.objects = list(entries)
            if self.experiment not in entries:
                self.experiment = first_usable(entries)
        job = self.job
        if job is None:
            return
        snap = job.snapshot()
        self.progress.visible = self.cancel_button.visible = job.active
        self.progress.value = int(1000 * min(1.0, max(0.0, snap.get("fraction") or 0)))
        if job.active:
            self._say(
                f"Motif analysis {snap['state']} (job {snap['id']}, "
                f"{snap['owner']}): {snap.get('message') or ''}",
                "info",
            )
            return
        self.job = None
        if snap["state"] == jobs.FAILED:
            self._say(f"The motif analysis failed: {snap['error']}", "danger")
        elif snap["state"] == jobs.CANCELLED:
            self._load()
            self._say(
                "The motif analysis was cancelled; the levels it finished are stored and "
                "running it again resumes.",
                "warning",
            )
        else:
            target = job.result
            self.refresh_entries()
            label = next(
                (
                    k
                    for k, v in self._entries.items()
                    if Path(v).resolve() == Path(target).resolve()
                ),
                None,
            )
            if label is not None and label != self.experiment:
                self.experiment = label  # the copy made beside a shipped store
            else:
                self._load()

    def refresh_entries(self):
        self._version = -1
        catalog().scan(max_age=0)
        self.refresh()

    def start_analysis(self):
        """Queue the analysis of the selected experiment under the selected null."""
        path = self._entries.get(self.experiment)
        if path is None:
            return None
        try:
            target = writable_copy(path)
        except ValueError as err:
            self._say(str(err), "danger")
            return None
        self.job = self.runner.submit(
            analysis_job(path, self.null, int(self.n_random)),
            name=f"motifs {self.experiment} ({self.null})",
            kind="motifs",
            owner=self.owner,
            pool="analysis",
            meta={"path": str(path), "target": str(target), "null": self.null},
        )
        self.run_button.visible = False
        if Path(target) != Path(path):
            self._say(
                f"{self.experiment!r} is shipped with mothlab and read-only: the analysis "
                f"runs on a copy in {target.parent}.",
                "info",
            )
        self.refresh()
        return self.job

    def cancel_analysis(self):
        """Ask the running analysis to stop (only its owner may, unless teacher mode)."""
        if self.job is None:
            return
        try:
            self.runner.cancel(self.job.id, by=self.owner)
        except PermissionError as err:
            self._say(str(err), "warning")

    # -- results --------------------------------------------------------------------------
    @param.depends("experiment", "null", watch=True)
    def _load(self):
        self.result = self.sparsity = None
        self.run_button.visible = False
        path = self._entries.get(self.experiment)
        if path is None:
            self._say("No experiment to show yet.", "info")
            self._clear()
            return
        try:
            exp = catalog().load(path)
            self.sparsity = A.sparsity_result(exp)
            self.about.object = escape(method_line(exp))
            res = A.motif_result(exp, self.null)
        except (ValueError, FileNotFoundError, KeyError, OSError) as err:
            self._say(f"Cannot read motif results of {self.experiment!r}: {err}", "danger")
            self._clear()
            return
        if res is None or not np.asarray(res.done).any():
            running = [
                j
                for j in self.runner.active("motifs")
                if j.meta.get("path") == str(path) and j.meta.get("null") == self.null
            ]
            if running:
                self.job = running[0]
            else:
                self._say(
                    f"{self.experiment!r} has no motif analysis under the null "
                    f"{A.NULL_LABELS.get(self.null, self.null)!r} yet: run it here (in the "
                    "background; you can keep working).",
                    "info",
                )
                self.run_button.visible = True
            self._clear()
            return
        self._say(None)
        self.result = res
        self.level_slider.visible = True
        done = np.flatnonzero(res.done)
        opts = {self.sparsity.level_label(int(i)): int(i) for i in done}  # unique per level
        level = int(self.sparsity.level_to_show(self.rule)[0])
        level = int(done[np.argmin(np.abs(done - level))])  # nearest analysed level
        self.level_slider.param.update(
            options=opts,
            value=level,
            name="sparsity" if self.sparsity.method == "prune" else "level",
        )
        self.level = level
        self.fig_sparsity.object = plots.render(
            plots.zscore_vs_sparsity(res, sparsity_result=self.sparsity)
        )
        self._update()

    def _clear(self):
        self.level_slider.visible = False
        self.fig_level.object = self.fig_sparsity.object = None
        self.table.object = None
        self.summary.object = ""

    @param.depends("level", "at", "rule", watch=True)
    def _update(self):
        res = self.result
        if res is None:
            return
        if self.at == AT_OPTIMAL:
            el = plots.zscore_distributions(
                res, None, sparsity_result=self.sparsity, rule=self.rule
            )
        else:
            el = plots.zscore_distributions(res, self.level, sparsity_result=self.sparsity)
        self.fig_level.object = plots.render(el)
        self._summary()

    def _summary(self):
        """:func:`mothlab.analysis.motif_summary` at the optimal levels, or why there is none."""
        try:
            rows = A.motif_summary(self.sparsity.experiment, self.null, rule=self.rule)
        except ValueError as err:
            self.summary.object = f"<b>At the optimal level</b>: {escape(err)}"
            self.table.object = None
            return
        rows = [r for r in rows if r["n_defined"]]  # an edge null leaves the edge z undefined
        self.summary.object = (
            f"<b>At the optimal level</b> ({escape(rows[0]['basis'])})" if rows else ""
        )
        self.table.object = (
            pd.DataFrame(
                {
                    "motif": [A.MOTIF_LABELS.get(r["motif"], r["motif"]) for r in rows],
                    "networks": [r["n_defined"] for r in rows],
                    "median z": [f"{r['median_z']:+.1f}" for r in rows],
                    "z > 0": [f"{100 * r['frac_positive']:.0f}%" for r in rows],
                    "z < 0": [f"{100 * r['frac_negative']:.0f}%" for r in rows],
                }
            )
            if rows
            else None
        )

    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown(f"### {self.title}"),
            pn.FlexBox(
                pn.widgets.Select.from_param(self.param.experiment, width=200),
                pn.widgets.Select.from_param(self.param.null, width=230),
                pn.widgets.IntInput.from_param(self.param.n_random, width=120),
            ),
            self.about,
            self.null_doc,
            self._message,
            pn.Row(self.run_button, self.cancel_button),
            self.progress,
            pn.FlexBox(
                pn.widgets.Select.from_param(self.param.at, width=200),
                pn.widgets.Select.from_param(self.param.rule, width=120),
            ),
            self.level_slider,
            self.fig_level,
            self.fig_sparsity,
            self.summary,
            self.table,
            sizing_mode="stretch_width",
            min_width=360,
            styles={"flex": "1 1 480px"},
        )


class MotifsView(pn.viewable.Viewer):
    """Two :class:`MotifPanel` side by side (two experiments, or one under two nulls)."""

    def __init__(self, runner: jobs.JobRunner | None = None, **params):
        super().__init__(**params)
        self.left = MotifPanel("Experiment A", runner=runner)
        self.right = MotifPanel("Experiment B", runner=runner, owner=self.left.owner)
        # B: another experiment with motif results, or else the same one under the whole-layer
        # null (the two edge nulls differ most: issue 10 measured +3.7 vs +14.0 for the 3rd chain)
        for label in self.right.param.experiment.objects:
            if label != self.left.experiment and self._has_results(label):
                self.right.experiment = label
                break
        else:
            self.right.param.update(experiment=self.left.experiment, null="edges_whole_layer")

    def _has_results(self, label) -> bool:
        try:
            res = A.motif_result(self.right._entries[label], self.right.null)
        except (ValueError, KeyError, OSError):
            return False
        return res is not None

    def __panel__(self):
        intro = pn.pane.Markdown(
            "z = (N_real − mean N_null) / sd N_null for each network and motif; positive means "
            "the pruned networks have more of the motif than random layered networks with the "
            "same constraints (the null). Undefined z-scores (a null with zero variance, e.g. the "
            "edge count under an edge null) are left out.",
            sizing_mode="stretch_width",
        )
        return pn.Column(
            intro,
            pn.FlexBox(self.left, self.right, flex_wrap="wrap", sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
