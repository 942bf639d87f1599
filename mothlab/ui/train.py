"""Train & prune tab: configure an experiment, run it in the background, watch it, cancel, resume.

The run is :func:`mothlab.nets.run_experiment` in a :mod:`mothlab.jobs` worker thread owned by the
server process: every session (a reload, a second tab, a second browser) shows the same job,
polling its progress snapshot with a periodic callback, so no page ever waits on the training.
"""

from __future__ import annotations

import re
import time

import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource, Span
from bokeh.plotting import figure

from mothlab import jobs

from .common import (
    BLUE,
    GREY,
    ORANGE,
    RED,
    add_periodic,
    catalog,
    device_description,
    escape,
    experiments_dir,
    show,
)

PRESET_NAMES = ("tiny", "classroom", "small", "paper")
MAX_CURVES = 24  # networks drawn individually in the live loss plot (the median is always drawn)


def _fmt_seconds(s) -> str:
    if s is None or not np.isfinite(s):
        return "–"
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def train_job(config, out: str):
    """The job function: run (or resume) ``config`` into ``out`` and register the result."""
    def fn(progress, cancel):
        from mothlab.nets import run_experiment

        progress({"message": "preparing data (first run of a size generates its dataset)…"})
        run_experiment(config, out, progress=progress, cancel=cancel, resume=True)
        catalog().add(out)
        return out
    return fn


class TrainView(pn.viewable.Viewer):
    """Configure and launch a train-and-prune run; follow the latest (or a chosen) job."""

    preset = param.Selector(default="classroom", objects=list(PRESET_NAMES),
                            doc="Starting point: tiny (seconds), classroom (minutes on a laptop), "
                                "small (half an hour), paper (GPU).")
    widths = param.String(default="", label="hidden widths", doc="Comma-separated, e.g. 24, 24, 24, 8.")
    n_networks = param.Integer(default=16, bounds=(1, 100_000), label="networks")
    n_samples = param.Integer(default=30_000, bounds=(100, 100_000_000), label="dataset size")
    schedule = param.String(default="", label="sparsity schedule",
                            doc="Comma-separated sparsities (0–1 or %), densest first.")
    threshold = param.Number(default=1e-3, bounds=(0, None), inclusive_bounds=(False, True),
                             label="loss threshold", doc="Scaled MSE defining 'optimally sparse'.")
    max_steps_per_level = param.Integer(default=1500, bounds=(1, None), label="max steps / level")
    run_name = param.String(default="", label="experiment name",
                        doc="Folder name under the experiments directory (letters, digits, -_).")

    def __init__(self, runner: jobs.JobRunner | None = None, **params):
        super().__init__(**params)
        self.runner = runner or jobs.runner()
        self.job: jobs.Job | None = self.runner.latest("train")
        self._seen = (-1, None, -1)
        self._message = pn.pane.Alert("", alert_type="info", visible=False,
                                      sizing_mode="stretch_width")
        self.start_button = pn.widgets.Button(name="Start training", button_type="primary")
        self.cancel_button = pn.widgets.Button(name="Cancel", button_type="danger",
                                               disabled=True)
        self.resume_button = pn.widgets.Button(name="Resume", button_type="success",
                                               disabled=True)
        self.start_button.on_click(lambda e: self.start())
        self.cancel_button.on_click(lambda e: self.cancel())
        self.resume_button.on_click(lambda e: self.resume())
        self.progress = pn.indicators.Progress(value=0, max=1000, sizing_mode="stretch_width",
                                               bar_color="primary")
        self.status = pn.pane.HTML("No training job has run on this server yet.",
                                   sizing_mode="stretch_width")
        self._make_plot()
        self._apply_preset()
        self.refresh()
        self._cb = add_periodic(self, self.refresh, 500)

    # -- configuration ------------------------------------------------------------------------
    @param.depends("preset", watch=True)
    def _apply_preset(self):
        from mothlab.nets import ExperimentConfig

        cfg = ExperimentConfig.preset(self.preset)
        self.param.update(
            widths=", ".join(str(w) for w in cfg.widths), n_networks=int(cfg.n_networks),
            n_samples=int(cfg.n_samples), threshold=float(cfg.threshold),
            schedule=", ".join(f"{s:g}" for s in cfg.schedule),
            max_steps_per_level=int(cfg.max_steps_per_level),
            run_name=f"{self.preset}-{time.strftime('%Y%m%d-%H%M%S')}")

    def config(self):
        """The ExperimentConfig the widgets describe (ValueError naming any bad field)."""
        from mothlab.nets import ExperimentConfig
        from mothlab.nets.config import parse_schedule, parse_widths

        overrides = dict(widths=parse_widths(self.widths),
                         n_networks=int(self.n_networks), n_samples=int(self.n_samples),
                         schedule=parse_schedule(self.schedule),
                         threshold=float(self.threshold),
                         max_steps_per_level=int(self.max_steps_per_level))
        try:
            cfg = ExperimentConfig.preset(self.preset, **overrides)
        except (ValueError, TypeError) as err:
            raise ValueError(str(err)) from None
        cfg.validate()
        return cfg

    def out_path(self) -> str:
        name = self.run_name.strip()
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name or ""):
            raise ValueError(f"experiment name {name!r} must be non-empty and use only letters, "
                             "digits, '-', '_' and '.'.")
        return str(experiments_dir() / f"{name.removesuffix('.zarr')}.zarr")

    # -- actions ------------------------------------------------------------------------------
    def _say(self, text, kind="info"):
        show(self._message, text, kind)

    def start(self) -> jobs.Job | None:
        """Launch a run with the current settings; a clear message instead when they are bad."""
        try:
            cfg = self.config()
            out = self.out_path()
        except ValueError as err:
            self._say(f"Cannot start: {err}", "danger")
            return None
        from pathlib import Path

        if Path(out).exists():
            self._say(f"An experiment named {self.run_name!r} already exists; choose another name "
                      "(or select its job and press Resume).", "danger")
            return None
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        self.job = self.runner.submit(train_job(cfg, out), name=Path(out).stem, kind="train",
                                      meta={"out": out, "config": cfg.to_dict()})
        self._say(f"Started {Path(out).stem}; it runs on the server, so you can close or reload "
                  "this page and come back.", "success")
        self.run_name = f"{self.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
        self.refresh()
        return self.job

    def cancel(self) -> None:
        if self.job is not None and self.job.active:
            self.job.cancel()
            self._say("Cancelling: the run stops after the current chunk and keeps the finished "
                      "levels; press Resume to continue it.", "warning")
        self.refresh()

    def resume(self) -> jobs.Job | None:
        if self.job is None or self.job.active:
            return None
        from mothlab.nets import ExperimentConfig

        cfg = ExperimentConfig.from_dict(self.job.meta["config"])
        out = self.job.meta["out"]
        self.job = self.runner.submit(train_job(cfg, out), name=self.job.name, kind="train",
                                      meta=dict(self.job.meta))
        self._say(f"Resuming {self.job.name} from its last finished level.", "success")
        self.refresh()
        return self.job

    # -- live view -----------------------------------------------------------------------------
    def _make_plot(self):
        self.src_curves = ColumnDataSource(dict(xs=[], ys=[]))
        self.src_median = ColumnDataSource(dict(x=[], y=[]))
        self.src_levels = ColumnDataSource(dict(x=[], label=[]))
        p = figure(title="Validation loss while training (scaled MSE)", y_axis_type="log",
                   height=330, sizing_mode="stretch_width", x_axis_label="progress report",
                   y_axis_label="loss", tools="pan,wheel_zoom,reset,save")
        curves = p.multi_line("xs", "ys", source=self.src_curves, line_color=BLUE,
                              line_alpha=0.25)
        median = p.line("x", "y", source=self.src_median, line_color=ORANGE, line_width=3,
                        legend_label="median over networks")
        p.y_range.renderers = [curves, median]  # the level markers below must not set the range
        self.threshold_span = Span(location=1e-3, dimension="width", line_color=RED,
                                   line_dash="dashed", line_width=2)
        p.add_layout(self.threshold_span)
        p.segment(x0="x", x1="x", y0=1e-9, y1=1e3, source=self.src_levels, line_color=GREY,
                  line_dash="dotted")
        p.legend.location = "top_right"
        self.fig = p

    def refresh(self) -> None:
        """Poll the job (cheap when nothing changed): progress bar, status, curves, buttons.
        Never raises: a periodic callback that fails would stop updating the page."""
        try:
            self._refresh()
        except Exception as err:  # noqa: BLE001 - show it, keep polling
            self._say(f"Could not update the job view: {type(err).__name__}: {err}", "danger")

    def _refresh(self) -> None:
        latest = self.runner.latest("train")
        if self.job is None or (latest is not None and latest.id > self.job.id
                                and not self.job.active):
            self.job = latest
        job = self.job
        self.threshold_span.location = float(self.threshold)
        if job is None:
            self.cancel_button.disabled = self.resume_button.disabled = True
            return
        snap = job.snapshot()
        key = (job.id, snap["state"], snap["n_events"])
        self.cancel_button.disabled = not job.active
        self.resume_button.disabled = job.active or job.state == jobs.DONE
        if key == self._seen:
            return
        self._seen = key
        frac = snap.get("fraction") or 0.0
        self.progress.value = int(1000 * min(1.0, max(0.0, frac)))
        self.progress.bar_color = {"failed": "danger", "cancelled": "warning",
                                   "done": "success"}.get(snap["state"], "primary")
        lines = [f"<b>{escape(job.name)}</b> — <b>{snap['state']}</b>",
                 f"{100 * frac:.0f}% · elapsed {_fmt_seconds(snap['elapsed_s'])} · "
                 f"ETA {_fmt_seconds(snap.get('eta_s'))}"]
        if snap.get("throughput"):
            lines.append(f"{snap['throughput']:,.0f} network-steps/s")
        if snap.get("message"):
            lines.append(escape(snap["message"]))
        if job.error:
            lines.append(f"<span style='color:{RED}'>The run failed: {escape(job.error)}</span>")
        if snap["state"] == jobs.DONE:
            lines.append(f"Saved to {escape(job.meta.get('out'))}; open it in the Sparsity "
                         "explorer and Motifs tabs.")
        self.status.object = "<br>".join(lines)
        hist = [h for h in job.history() if np.ndim(h.get("losses")) == 1]
        if hist:
            losses = [np.asarray(h["losses"], float) for h in hist]
            width = min(len(v) for v in losses)
            arr = np.stack([v[:width] for v in losses])  # (events, networks)
            x = np.arange(len(arr))
            with np.errstate(all="ignore"):
                arr = np.where(arr > 0, arr, np.nan)
                med = np.nanmedian(np.where(np.isfinite(arr), arr, np.nan), axis=1) \
                    if np.isfinite(arr).any() else np.full(len(arr), np.nan)
            keep = np.linspace(0, width - 1, min(width, MAX_CURVES)).astype(int)
            self.src_curves.data = dict(xs=[x] * len(keep), ys=[arr[:, k] for k in keep])
            self.src_median.data = dict(x=x, y=med)
            lv = np.array([h.get("level", 0) for h in hist])
            starts = np.flatnonzero(np.diff(lv) != 0) + 1
            self.src_levels.data = dict(x=starts.astype(float), label=lv[starts].astype(str))
        else:
            self.src_curves.data = dict(xs=[], ys=[])
            self.src_median.data = dict(x=[], y=[])
            self.src_levels.data = dict(x=[], label=[])

    def __panel__(self):
        form = pn.Param(self.param, parameters=["preset", "run_name", "widths", "n_networks",
                                                "n_samples", "schedule", "threshold",
                                                "max_steps_per_level"],
                        show_name=False, widgets={"preset": pn.widgets.RadioButtonGroup,
                                 "n_networks": pn.widgets.IntInput,
                                 "n_samples": {"type": pn.widgets.IntInput, "step": 1000},
                                 "max_steps_per_level": {"type": pn.widgets.IntInput,
                                                         "step": 100}},
                        sizing_mode="stretch_width")
        device = pn.pane.HTML(f"<b>Device:</b> {escape(device_description())}<br>"
                              f"<b>Saved in:</b> {escape(experiments_dir())}")
        left = pn.Column(pn.pane.Markdown("### Experiment"), form,
                         pn.Row(self.start_button, self.cancel_button, self.resume_button),
                         device, width=380)
        right = pn.Column(self._message, self.status, self.progress, pn.pane.Bokeh(self.fig),
                          sizing_mode="stretch_width")
        return pn.Row(left, right, sizing_mode="stretch_width")
