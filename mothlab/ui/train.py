"""Train & prune tab: configure an experiment, run it in the background, watch any job, cancel
your own, resume a partial one.

The form is ``pn.Param`` over :class:`mothlab.nets.ExperimentConfig` itself: each parameter is
declared once (bounds, docs) in ``nets/config.py`` and appears here with its doc and allowed range
as the widget's tooltip; a parameter added there (e.g. the sparse ``method`` and ``density``)
appears here by itself. The run is :func:`mothlab.nets.run_experiment` as a :mod:`mothlab.jobs`
job owned by the server process: every session (a reload, a second tab, a second browser) lists
every job with its owner, and polls the chosen one's progress snapshot, so no page waits on the
training. A session may cancel only its own jobs unless the server runs in teacher mode
(:func:`mothlab.ui.common.is_teacher`).
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource, LabelSet, Span
from bokeh.plotting import figure

from mothlab import jobs, store
from mothlab.nets.config import PRESETS, ExperimentConfig

from .common import (
    BLUE,
    GREY,
    ORANGE,
    RED,
    SessionOwner,
    add_periodic,
    catalog,
    device_description,
    escape,
    experiments_dir,
    is_teacher,
    owner_label,
    show,
    shown_path,
)
from .estimate import estimate_run, warm_rates

MAX_CURVES = 24  # networks drawn individually in the live loss plot (the median is always drawn)
#: the form's first block (shown open); every other ExperimentConfig parameter is in "More"
MAIN = (
    "widths",
    "n_networks",
    "n_samples",
    "schedule",
    "threshold",
    "max_steps_per_level",
    "method",
    "density",
)
#: a job longer than this on this machine asks first (and says how long it would take)
CONFIRM_ABOVE_S = 2 * 3600


def _fmt_seconds(s) -> str:
    if s is None or not np.isfinite(s):
        return "–"
    s = int(round(s))
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600:02d}h"
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _range_text(p) -> str:
    if isinstance(p, param.Selector) and p.objects:
        return "one of " + ", ".join(str(o) for o in p.objects)
    bounds = getattr(p, "bounds", None)
    if not bounds or bounds == (None, None):
        return ""
    lo, hi = bounds
    if hi is None:
        return f"at least {lo:g}" if isinstance(lo, (int, float)) else ""
    if lo is None:
        return f"at most {hi:g}"
    return f"{lo:g} to {hi:g}"


def tooltips(form: pn.Param, cfg: ExperimentConfig) -> dict[str, str]:
    """Give each widget of ``form`` its parameter's doc and allowed range as its tooltip (Panel
    already shows the doc where the widget has a tooltip; a slider shows its range itself).
    Returns parameter name → tooltip text."""
    by_label = {p.label: name for name, p in cfg.param.objects("existing").items()}
    out = {}
    for w in form.select(pn.widgets.Widget):
        name = by_label.get(getattr(w, "label", None) or w.name)
        if name is None or "description" not in w.param:
            continue
        p = cfg.param[name]
        rng = _range_text(p)
        w.description = (p.doc or name) + (f" Allowed: {rng}." if rng else "")
        out[name] = w.description
    return out


def train_job(config, out: str):
    """The job function: run (or resume) ``config`` into ``out`` and register the result."""

    def fn(progress, cancel):
        from mothlab.nets import run_experiment

        run_experiment(config, out, progress=progress, cancel=cancel, resume=True)
        catalog().add(out)
        return out

    return fn


def partial_experiments() -> list[store.StoreInfo]:
    """Unfinished experiment stores in the experiments folder (e.g. left by a server restart)."""
    try:
        return [
            s for s in store.list_stores(experiments_dir(), kind="experiment") if not s.complete
        ]
    except OSError:
        return []


class TrainView(pn.viewable.Viewer):
    """Configure and launch a train-and-prune run; list every job of the server; watch one."""

    preset = param.Selector(
        default="classroom",
        objects=list(PRESETS),
        doc="Starting point: tiny (seconds), classroom (minutes on a laptop), "
        "small (about an hour on a laptop), paper and tensorflow (GPU).",
    )
    run_name = param.String(
        default="",
        label="experiment name",
        doc="Folder name under the experiments folder (letters, digits, -_.).",
    )
    watching = param.Selector(
        default=None,
        objects=[None],
        allow_None=True,
        label="job",
        doc="The job shown below: any job of this server, or an unfinished "
        "experiment found on disk (select it and press Resume).",
    )

    def __init__(self, runner: jobs.JobRunner | None = None, owner: str | None = None, **params):
        super().__init__(**params)
        self.runner = runner or jobs.runner()
        self.identity = SessionOwner(fixed=owner)
        self.cfg = ExperimentConfig.preset(self.preset)
        self.job: jobs.Job | None = None
        self._disk: dict[str, store.StoreInfo] = {}
        self._seen = None
        self._confirm: tuple | None = None  # (config dict, out) the user was asked to confirm
        self._message = pn.pane.Alert(
            "", alert_type="info", visible=False, sizing_mode="stretch_width"
        )
        self.start_button = pn.widgets.Button(label="Start training", color="primary")
        self.cancel_button = pn.widgets.Button(label="Cancel", color="danger", disabled=True)
        self.resume_button = pn.widgets.Button(label="Resume", color="success", disabled=True)
        self.start_button.on_click(lambda e: self.start())
        self.cancel_button.on_click(lambda e: self.cancel())
        self.resume_button.on_click(lambda e: self.resume())
        self.progress = pn.indicators.Progress(
            value=0, max=1000, sizing_mode="stretch_width", bar_color="primary"
        )
        self.status = pn.pane.HTML(
            "No training job has run on this server yet.", sizing_mode="stretch_width"
        )
        self.jobs_table = pn.pane.HTML(
            "", sizing_mode="stretch_width", css_classes=["mothlab-jobs"]
        )
        self.estimate_note = pn.pane.HTML("", sizing_mode="stretch_width")
        self._make_plot()
        self._apply_preset()
        self.cfg.param.watch(lambda *e: self._config_changed(), list(self.cfg.param)[1:])
        latest = self.runner.latest("train")
        self.refresh()
        if latest is not None:
            self.watching = f"job {latest.id}"
        self._cb = add_periodic(self, self.refresh, 500)
        warm_rates()

    @property
    def owner(self) -> str:
        """Who this session is for the job runner (user name, browser id or session id)."""
        return self.identity.owner

    # -- configuration ------------------------------------------------------------------------
    @param.depends("preset", watch=True)
    def _apply_preset(self):
        fresh = ExperimentConfig.preset(self.preset).to_dict()
        self.cfg.param.update(**fresh)
        self.run_name = f"{self.preset}-{time.strftime('%Y%m%d-%H%M%S')}"

    def _config_changed(self):
        self._confirm = None
        self.start_button.label = "Start training"
        self.estimate_note.object = ""

    def config(self) -> ExperimentConfig:
        """A validated copy of the form's ExperimentConfig (ValueError naming any bad field)."""
        try:
            cfg = ExperimentConfig.from_dict(self.cfg.to_dict())
            return cfg.validate()
        except (ValueError, TypeError) as err:
            raise ValueError(str(err)) from None

    def out_path(self) -> str:
        name = self.run_name.strip()
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name or ""):
            raise ValueError(
                f"experiment name {name!r} must be non-empty and use only letters, "
                "digits, '-', '_' and '.'."
            )
        return str(experiments_dir() / f"{name.removesuffix('.zarr')}.zarr")

    # -- actions ------------------------------------------------------------------------------
    def _say(self, text, kind="info"):
        show(self._message, text, kind)

    def start(self, confirm: bool = False) -> jobs.Job | None:
        """Launch a run with the form's settings. Refuses (with a message) bad settings and runs
        that do not fit in this machine's memory; asks first (press Start again) for one that
        would take more than two hours here. ``confirm=True`` skips the question."""
        try:
            cfg = self.config()
            out = self.out_path()
        except ValueError as err:
            self._say(f"Cannot start: {err}", "danger")
            return None
        if Path(out).exists():
            self._say(
                f"An experiment named {self.run_name!r} already exists; choose another name "
                "(or select it in the job list and press Resume).",
                "danger",
            )
            return None
        est = estimate_run(cfg)
        self.estimate_note.object = est.html()
        if not est.fits:
            self._say(f"Cannot start: {est.refusal()}", "danger")
            return None
        key = (json.dumps(cfg.to_dict(), sort_keys=True), out)
        if est.seconds > CONFIRM_ABOVE_S and not confirm and self._confirm != key:
            self._confirm = key
            self.start_button.label = "Start anyway"
            self._say(
                f"This run would take about {_fmt_seconds(est.seconds)} on this machine "
                f"({escape(est.device)}); the {self.preset!r} preset is sized for a GPU. "
                "Press “Start anyway” to run it here, or choose a smaller preset.",
                "warning",
            )
            return None
        self._confirm = None
        self.start_button.label = "Start training"
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        job = self.runner.submit(
            train_job(cfg, out),
            name=Path(out).stem,
            kind="train",
            owner=self.owner,
            meta={"out": out, "config": cfg.to_dict(), "estimate_s": est.seconds},
        )
        self._say(
            f"Started {Path(out).stem}; it runs on the server, so you can close or reload "
            "this page and come back.",
            "success",
        )
        self.run_name = f"{self.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
        self.refresh()
        self.watching = f"job {job.id}"
        return job

    def _may_control(self, job: jobs.Job) -> bool:
        return job.owner == self.owner or is_teacher()

    def cancel(self) -> None:
        job = self.job
        if job is None or not job.active:
            return
        try:
            self.runner.cancel(job.id, by=self.owner, teacher=is_teacher())
        except PermissionError as err:
            self._say(str(err), "danger")
            return
        self._say(
            "Cancelling: the run stops after the current chunk and keeps the finished "
            "levels; press Resume to continue it.",
            "warning",
        )
        self.refresh()

    def resume(self) -> jobs.Job | None:
        """Continue the watched job's experiment (or the selected unfinished store on disk)."""
        sel = self.watching or ""
        if sel.startswith("disk "):
            info = self._disk.get(sel)
            if info is None:
                return None
            try:
                cfg = ExperimentConfig.from_dict(info.header["config"])
            except (KeyError, ValueError, TypeError) as err:
                self._say(
                    f"Cannot resume {info.path.name}: its header has no usable config ({err}).",
                    "danger",
                )
                return None
            out, name, before = str(info.path), info.path.stem, None
        else:
            if self.job is None or self.job.active or self.job.state == jobs.DONE:
                return None
            cfg = ExperimentConfig.from_dict(self.job.meta["config"])
            out, name, before = self.job.meta["out"], self.job.name, self.job.id
        job = self.runner.submit(
            train_job(cfg, out),
            name=name,
            kind="train",
            owner=self.owner,
            meta={"out": out, "config": cfg.to_dict(), "resumed_from": before},
        )
        self._say(f"Resuming {name} from its last finished level.", "success")
        self.refresh()
        self.watching = f"job {job.id}"
        return job

    # -- live view -----------------------------------------------------------------------------
    def _make_plot(self):
        self.src_curves = ColumnDataSource(dict(xs=[], ys=[]))
        self.src_median = ColumnDataSource(dict(x=[], y=[]))
        self.src_levels = ColumnDataSource(dict(x=[], y=[], label=[]))
        p = figure(
            title="Validation loss while training (scaled MSE)",
            y_axis_type="log",
            height=320,
            sizing_mode="stretch_width",
            x_axis_label="training steps",
            y_axis_label="loss",
            tools="pan,wheel_zoom,reset,save",
            css_classes=["mothlab-loss"],
        )
        curves = p.multi_line("xs", "ys", source=self.src_curves, line_color=BLUE, line_alpha=0.25)
        median = p.line(
            "x",
            "y",
            source=self.src_median,
            line_color=ORANGE,
            line_width=3,
            legend_label="median over networks",
        )
        p.y_range.renderers = [curves, median]  # the level markers below must not set the range
        self.threshold_span = Span(
            location=1e-3, dimension="width", line_color=RED, line_dash="dashed", line_width=2
        )
        p.add_layout(self.threshold_span)
        p.segment(
            x0="x",
            x1="x",
            y0=1e-12,
            y1=1e6,
            source=self.src_levels,
            line_color=GREY,
            line_dash="dotted",
        )
        p.add_layout(
            LabelSet(
                x="x",
                y=0,
                y_units="screen",
                text="label",
                source=self.src_levels,
                text_font_size="8pt",
                text_color=GREY,
                x_offset=2,
            )
        )
        p.legend.location = "top_right"
        self.fig = p

    def _job_options(self) -> dict[str, str]:
        opts = {}
        me = self.owner
        for j in self.runner.jobs():
            s = j.state
            opts[f"#{j.id} {j.name} ({j.kind}, {s}, {owner_label(j.owner, me)})"] = f"job {j.id}"
        active_out = {j.meta.get("out") for j in self.runner.jobs() if j.active}
        self._disk = {}
        for info in partial_experiments():
            if str(info.path) in active_out:
                continue
            done = info.header.get("levels_done", 0)
            total = len(info.header.get("sparsity_levels") or []) or "?"
            key = f"disk {info.path}"
            self._disk[key] = info
            opts[f"{info.path.stem} on disk: {done}/{total} levels, unfinished"] = key
        return opts

    def _jobs_html(self) -> str:
        rows = []
        me = self.owner
        for j in self.runner.jobs():
            snap = j.snapshot()
            frac = snap["fraction"]
            rows.append(
                f"<tr><td>{j.id}</td><td>{escape(j.name)}</td><td>{escape(j.kind)}</td>"
                f"<td>{escape(owner_label(j.owner, me))}</td><td>{snap['state']}</td>"
                f"<td>{'' if frac is None else f'{100 * frac:.0f}%'}</td>"
                f"<td>{_fmt_seconds(snap['elapsed_s'])}</td></tr>"
            )
        for info in self._disk.values():
            rows.append(
                f"<tr><td>–</td><td>{escape(info.path.stem)}</td><td>train</td>"
                f"<td>on disk</td><td>unfinished</td>"
                f"<td>{info.header.get('levels_done', 0)} levels</td><td></td></tr>"
            )
        if not rows:
            return "<i>No jobs on this server yet.</i>"
        return (
            "<table style='border-collapse:collapse;font-size:90%'><tr><th>#</th><th>name</th>"
            "<th>kind</th><th>owner</th><th>state</th><th>progress</th><th>elapsed</th></tr>"
            + "".join(rows)
            + "</table>"
        )

    @param.depends("watching", watch=True)
    def _watch(self):
        sel = self.watching or ""
        self.job = self.runner.get(int(sel.split()[1])) if sel.startswith("job ") else None
        self._seen = None
        self.refresh()

    def refresh(self) -> None:
        """Poll the jobs (cheap when nothing changed): job list, progress, status, curves,
        buttons. Never raises: a periodic callback that fails would stop updating the page."""
        try:
            self._refresh()
        except Exception as err:  # noqa: BLE001 - show it, keep polling
            self._say(f"Could not update the job view: {type(err).__name__}: {err}", "danger")

    def _refresh(self) -> None:
        opts = self._job_options()
        if opts != (self.param.watching.names or {}):
            self.param.watching.objects = opts
            if self.watching is not None and self.watching not in opts.values():
                self.watching = None
        self.jobs_table.object = self._jobs_html()
        self.threshold_span.location = float(self.cfg.threshold)
        sel = self.watching or ""
        job = self.job
        if sel.startswith("disk "):
            info = self._disk.get(sel)
            self.cancel_button.disabled = True
            self.resume_button.disabled = info is None
            self.status.object = (
                f"<b>{escape(info.path.name)}</b>: an unfinished experiment "
                f"({info.header.get('levels_done', 0)} levels stored). Press "
                "Resume to continue it from its last finished level."
                if info
                else ""
            )
            return
        if job is None:
            self.cancel_button.disabled = self.resume_button.disabled = True
            return
        snap = job.snapshot()
        mine = self._may_control(job)
        self.cancel_button.disabled = not (job.active and mine)
        self.resume_button.disabled = job.active or job.state == jobs.DONE or job.kind != "train"
        key = (job.id, snap["state"], snap["n_events"], int(snap["elapsed_s"]))
        if key == self._seen:
            return
        self._seen = key
        frac = snap["fraction"]
        self.progress.value = int(1000 * min(1.0, max(0.0, frac or 0.0)))
        self.progress.bar_color = {
            "failed": "danger",
            "cancelled": "warning",
            "done": "success",
        }.get(snap["state"], "primary")
        payload = snap.get("payload") or {}
        lines = [
            f"<b>{escape(job.name)}</b> — <b>{snap['state']}</b> — started by "
            f"{escape(owner_label(job.owner, self.owner))}",
            f"{'' if frac is None else f'{100 * frac:.0f}% · '}elapsed "
            f"{_fmt_seconds(snap['elapsed_s'])} · ETA {_fmt_seconds(snap.get('eta_s'))}"
            + (
                ""
                if snap.get("eta_s") is not None or snap["state"] != "running"
                else " (known after the first level)"
            ),
        ]
        if payload.get("throughput"):
            lines.append(f"{payload['throughput']:,.0f} network-steps/s")
        if snap.get("message"):
            lines.append(escape(snap["message"]))
        if snap["state"] == jobs.FAILED and job.error:
            lines.append(f"<span style='color:{RED}'>The run failed: {escape(job.error)}</span>")
        if snap["state"] == jobs.CANCELLED:
            lines.append("Cancelled; the finished levels are kept: press Resume to continue.")
        if snap["state"] == jobs.DONE:
            lines.append(
                f"Saved to {escape(job.meta.get('out'))}; open it in the Sparsity "
                "explorer and Motifs tabs."
            )
        if job.active and not mine:
            lines.append(
                "<i>Started by another session: you can watch it; only its owner (or a "
                "teacher) can cancel it.</i>"
            )
        self.status.object = "<br>".join(lines)
        self._draw_losses(job)

    def _chain(self, job: jobs.Job) -> list[jobs.Job]:
        """The job and the jobs it resumed, oldest first (the loss plot continues across them)."""
        chain = [job]
        seen = {job.id}
        while chain[0].meta.get("resumed_from") is not None:
            try:
                prev = self.runner.get(chain[0].meta["resumed_from"])
            except ValueError:
                break
            if prev.id in seen:
                break
            seen.add(prev.id)
            chain.insert(0, prev)
        return chain

    def _draw_losses(self, job: jobs.Job) -> None:
        # x = training steps counted over the whole run: each level's steps continue where the
        # previous level ended. A resumed job redoes the level its predecessor was cancelled in
        # (the store keeps finished levels only): that level's points come from the latest job
        # that trained it, so the curve continues across Resume and never runs back.
        per_level: dict[int, list] = {}
        sparsity: dict[int, object] = {}
        for j in self._chain(job):
            fresh: dict[int, list] = {}
            for h in j.history():
                lv, step = h.get("level"), h.get("step")
                losses = h.get("losses")
                if lv is None or lv < 0 or step is None:
                    continue
                sparsity.setdefault(lv, h.get("sparsity"))
                if isinstance(losses, list) and losses:
                    fresh.setdefault(lv, []).append((step, losses))
            per_level.update(fresh)
        points, level_x, offset = [], {}, 0
        for lv in sorted(per_level):
            level_x[lv] = (offset, sparsity.get(lv))
            pts = per_level[lv]
            points += [(offset + step, losses) for step, losses in pts]
            offset += max(step for step, _ in pts)
        if not points:
            self.src_curves.data = dict(xs=[], ys=[])
            self.src_median.data = dict(x=[], y=[])
            self.src_levels.data = dict(x=[], y=[], label=[])
            return
        width = min(len(v) for _, v in points)
        x = np.array([p[0] for p in points], float)
        arr = np.array([[np.nan if v is None else v for v in p[1][:width]] for p in points], float)
        with np.errstate(all="ignore"):
            arr = np.where(np.isfinite(arr) & (arr > 0), arr, np.nan)
            med = np.array([np.nanmedian(r) if np.isfinite(r).any() else np.nan for r in arr])
        keep = np.linspace(0, width - 1, min(width, MAX_CURVES)).astype(int)
        self.src_curves.data = dict(xs=[x] * len(keep), ys=[arr[:, k] for k in keep])
        self.src_median.data = dict(x=x, y=med)
        lx = [v[0] for v in level_x.values()]
        labels = [
            f"{100 * s:.0f}%" if isinstance(s, (int, float)) and math.isfinite(s) else f"L{k}"
            for k, (_, s) in level_x.items()
        ]
        self.src_levels.data = dict(x=np.array(lx, float), y=np.zeros(len(lx)), label=labels)

    def __panel__(self):
        form = pn.Param(
            self.cfg,
            parameters=[p for p in MAIN if p in self.cfg.param],
            show_name=False,
            sizing_mode="stretch_width",
        )
        more = [p for p in self.cfg.param if p != "name" and p not in MAIN]
        more_form = pn.Param(
            self.cfg, parameters=more, show_name=False, sizing_mode="stretch_width"
        )
        self.tooltips = {**tooltips(form, self.cfg), **tooltips(more_form, self.cfg)}
        advanced = pn.Card(
            more_form, title="More settings", collapsed=True, sizing_mode="stretch_width"
        )
        top = pn.Param(
            self.param,
            parameters=["preset", "run_name"],
            show_name=False,
            widgets={
                "preset": pn.widgets.RadioButtonGroup,
                "run_name": {"description": self.param.run_name.doc},
            },
            sizing_mode="stretch_width",
        )
        device = pn.pane.HTML(
            f"<b>Device:</b> {escape(device_description())}<br>"
            f"<b>Saved in:</b> {escape(shown_path(experiments_dir()))}",
            sizing_mode="stretch_width",
        )
        left = pn.Column(
            pn.pane.Markdown("### Experiment"),
            top,
            form,
            advanced,
            pn.Row(self.start_button, self.cancel_button, self.resume_button),
            self.estimate_note,
            device,
            self.identity,
            width=360,
            styles={"flex-shrink": "0"},
        )
        picker = pn.widgets.Select.from_param(
            self.param.watching, sizing_mode="stretch_width", css_classes=["mothlab-job-picker"]
        )
        right = pn.Column(
            self._message,
            picker,
            self.status,
            self.progress,
            pn.pane.Bokeh(self.fig, sizing_mode="stretch_width"),
            pn.pane.Markdown("#### All jobs on this server"),
            self.jobs_table,
            sizing_mode="stretch_width",
            min_width=420,
        )
        return pn.Row(left, right, sizing_mode="stretch_width")
