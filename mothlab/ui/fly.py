"""Fly tab: a trained network flies the moth in closed loop, with the MPC flown beside it.

Pick an experiment, a network and a level, a target, noise levels and a body; "Fly" runs
:func:`mothlab.control.fly` for the network and the MPC on the same flight in a worker thread (the
event loop never waits on JAX) and the page animates both: the moth to scale
(:func:`mothlab.moth.geometry.body_shapes`, the Flight tab's shapes) chasing its target, the
error over time, and the controls with their S3 ranges. Studies
(:func:`mothlab.control.studies.run_study`) run as background jobs in the ``"analysis"`` pool of
:func:`mothlab.jobs.runner`, owned by this session, with progress and cancel; their figure and
numbers appear when done.
"""

from __future__ import annotations

import threading

import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource, Span
from bokeh.plotting import figure

from mothlab import jobs
from mothlab.control.names import STUDIES, TARGETS

from .common import BLUE, GREY, ORANGE, RED, add_periodic, catalog, escape, show


def session_owner() -> str:
    from .motifs import session_owner as owner  # one definition of "who owns this page's jobs"

    return owner()


def study_job(path: str, name: str, **kw):
    """``fn(progress, cancel)`` running study ``name`` on the experiment at ``path``."""

    def fn(progress, cancel):
        from mothlab.control.studies import run_study

        return run_study(path, name, progress=progress, cancel=cancel, **kw)

    return fn


class FlyView(pn.viewable.Viewer):
    """Closed-loop flight of one network of an experiment, the MPC beside it, and studies."""

    experiment = param.Selector(default=None, objects=[], doc="An experiment store.")
    network = param.Integer(default=0, bounds=(0, None), doc="Network index.")
    level = param.Integer(default=0, bounds=(0, None), doc="Level index (0: dense).")
    target = param.Selector(
        default="flower",
        objects=list(TARGETS),
        doc="; ".join(f"{k}: {v}" for k, v in TARGETS.items()),
    )
    waypoints = param.String(default="3,0;3,3", doc='Waypoints "x,y;x,y" in cm.')
    amplitude = param.Number(
        2.0,
        bounds=(0.0, 10.0),
        label="flower amplitude (cm)",
        doc="Amplitude of the flower's 0.2 Hz component.",
    )
    duration = param.Number(1.0, bounds=(0.1, 5.0), label="duration (s)")
    sensor_noise = param.Number(
        0.0,
        bounds=(0.0, 0.1),
        step=0.002,
        label="sensor noise σ",
        doc="Noise on the sensed state, fraction of the training range.",
    )
    actuator_noise = param.Number(
        0.0,
        bounds=(0.0, 0.1),
        step=0.002,
        label="actuator noise σ",
        doc="Noise on (Fx, Fy, τ), fraction of the training range.",
    )
    scale = param.Number(1.0, bounds=(1.0, 1.3), step=0.05, label="body scale s")
    abdomen_mass_factor = param.Number(1.0, bounds=(1.0, 2.0), step=0.05, label="abdomen mass ×")
    with_mpc = param.Boolean(True, label="fly the MPC beside it")
    study = param.Selector(
        default="sparsity",
        objects=list(STUDIES),
        doc="; ".join(f"{k}: {v}" for k, v in STUDIES.items()),
    )
    frame = param.Integer(default=0, bounds=(0, None))
    fly_on_open = param.Boolean(
        False,
        doc="Fly the selected network once as soon as the view is built (the app's Fly tab "
        "does: the tab then opens on a flight, not on empty plots).",
    )

    def __init__(self, runner: jobs.JobRunner | None = None, owner: str | None = None, **params):
        super().__init__(**params)
        self.runner = runner or jobs.runner()
        self.owner = owner or session_owner()
        self.result = None  # FlightResult of the network
        self.mpc = None  # FlightResult of the MPC (or None)
        self.job: jobs.Job | None = None
        self.study_result = None
        self._thread: threading.Thread | None = None
        self._pending = None
        self._entries: dict[str, str] = {}
        self._status = pn.pane.Alert(
            "", alert_type="info", visible=False, sizing_mode="stretch_width"
        )
        self._summary = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.fly_button = pn.widgets.Button(label="Fly", color="primary")
        self.fly_button.on_click(lambda e: self.start_flight())
        self.study_button = pn.widgets.Button(label="Run study", color="default")
        self.study_button.on_click(lambda e: self.start_study())
        self.cancel_button = pn.widgets.Button(label="Cancel study", visible=False)
        self.cancel_button.on_click(lambda e: self.cancel_study())
        self.study_progress = pn.indicators.Progress(
            value=0, max=1000, visible=False, sizing_mode="stretch_width"
        )
        self.study_message = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.study_figure = pn.pane.Matplotlib(
            None, tight=True, dpi=90, sizing_mode="stretch_width", visible=False
        )
        self.player = pn.widgets.Player(
            start=0,
            end=1,
            value=0,
            interval=60,
            loop_policy="loop",
            width=420,
            show_loop_controls=False,
        )
        self.player.link(self, value="frame")
        self.param.watch(lambda e: self._draw_frame(), "frame")
        self._make_figures()
        # until the first flight: a line saying what will be shown, not empty plots with legends
        self._placeholder = pn.pane.HTML(
            "<i>The network's flight and the MPC's appear here once flown; press <b>Fly</b> "
            "to fly the flight chosen on the left.</i>",
            sizing_mode="stretch_width",
        )
        self._flown = [self.player, pn.pane.Bokeh(self.fig_moth)]
        self._series = [pn.pane.Bokeh(f) for f in (self.fig_err, self.fig_F, self.fig_tau)]
        for pane in (*self._flown, *self._series):
            pane.visible = False
        self.refresh_entries()
        self._bounds()
        self._poll = add_periodic(self, self.refresh, 500)
        if self.fly_on_open and self.path() is not None:
            self.start_flight()

    # -- experiments -----------------------------------------------------------------------
    def refresh_entries(self) -> None:
        """Re-list the experiments (labels from the app's catalog; the embedded one first)."""
        self._entries = catalog().scan()
        self.param.experiment.objects = list(self._entries)
        if self.experiment not in self._entries and self._entries:
            self.experiment = next(iter(self._entries))

    def path(self) -> str | None:
        """Store path of the selected experiment."""
        return self._entries.get(self.experiment)

    @param.depends("experiment", watch=True)
    def _bounds(self):
        if self.path() is None:
            return
        try:
            exp = catalog().load(self.path())
        except (ValueError, FileNotFoundError) as err:
            self._show(f"Cannot open {self.experiment}: {err}", "danger")
            return
        self.param.network.bounds = (0, exp.n_networks - 1)
        self.param.level.bounds = (0, max(exp.levels_done - 1, 0))
        self.network = min(self.network, exp.n_networks - 1)
        self.level = min(self.level, max(exp.levels_done - 1, 0))

    def _show(self, text, kind="warning"):
        show(self._status, text, kind)

    # -- one flight ------------------------------------------------------------------------
    def _flight_inputs(self):
        from mothlab import control

        if self.path() is None:
            raise ValueError("no experiment selected; train one in the Train tab or pick one.")
        exp = catalog().load(self.path())
        target = control.make_target(
            self.target, waypoints=self.waypoints, amplitude=self.amplitude, duration=self.duration
        )
        nets = control.load_networks(exp, [(self.level, self.network)])
        flights = control.make_flights(
            [target],
            duration=self.duration,
            sensor_noise=[self.sensor_noise],
            actuator_noise=[self.actuator_noise],
            bodies=[(self.scale, self.abdomen_mass_factor)],
        )
        return exp, target, nets, flights

    def fly_now(self):
        """Fly in this thread (tests and the worker thread call this); returns the results."""
        from mothlab import control

        exp, target, nets, flights = self._flight_inputs()
        res = control.fly(nets, flights)
        mpc = (
            control.fly("mpc", flights, spans=(nets.spans_in, nets.spans_out))
            if self.with_mpc
            else None
        )
        return exp, target, res, mpc

    def start_flight(self) -> bool:
        """Fly in a worker thread; the periodic refresh shows the result. False (and a message)
        for bad input or when a flight is already being computed."""
        if self._thread is not None and self._thread.is_alive():
            self._show("A flight is being computed; it appears here when done.", "info")
            return False
        try:
            self._flight_inputs()  # validate here, in the page, before any work
        except (ValueError, FileNotFoundError) as err:
            self._show(f"Cannot fly: {err}", "danger")
            return False

        def work():
            try:
                self._pending = ("ok", self.fly_now())
            except Exception as err:  # noqa: BLE001 - shown in the page
                self._pending = ("error", f"{type(err).__name__}: {err}")

        self._show(
            "Flying (the first flight compiles the loop: up to a minute on a small CPU; "
            "later ones take well under a second)…",
            "info",
        )
        self._thread = threading.Thread(target=work, name="mothlab-fly", daemon=True)
        self._thread.start()
        return True

    def show_flight(self, exp, target, res, mpc) -> None:
        self.result, self.mpc = res, mpc
        lines = [f"**{escape(target.describe())}**, {res.t[-1]:g} s"]
        for name, r in (("network", res), ("MPC", mpc)):
            if r is None:
                continue
            s = r.summary()
            lines.append(
                f"- {name}: RMS error **{s['rms_error_cm']:.3g} cm**, max "
                f"{s['max_error_cm']:.3g} cm, "
                f"{'**diverged** at ' + format(s['diverged_at_s'], '.2f') + ' s' if s['diverged'] else 'did not diverge'}, "
                f"controls clipped in {100 * s['clipped_fraction']:.0f} % of periods"
            )
        sp = 100 * exp.sparsity_levels[self.level]
        lines.insert(
            1,
            f"network {self.network} at level {self.level} ({sp:.0f} % sparse); "
            f"test loss {np.asarray(exp.test_loss)[self.level, self.network]:.2e}",
        )
        self._summary.object = "\n".join(lines)
        self._update_sources()
        self._show(None)
        self._placeholder.visible = False
        for pane in (*self._flown, *self._series):
            pane.visible = True

    # -- studies ---------------------------------------------------------------------------
    def start_study(self):
        if self.job is not None and self.job.snapshot()["state"] in ("queued", "running"):
            self._show("A study of this page is already running.", "info")
            return None
        if self.path() is None:
            self._show("Pick an experiment first.", "warning")
            return None
        self.job = self.runner.submit(
            study_job(self.path(), self.study),
            name=f"fly {self.study} study",
            kind="fly_study",
            owner=self.owner,
            meta={"experiment": self.path()},
            pool="analysis",
        )
        self.study_progress.visible = self.cancel_button.visible = True
        return self.job

    def cancel_study(self):
        if self.job is not None:
            try:
                self.runner.cancel(self.job.id, by=self.owner)
            except PermissionError as err:
                self._show(str(err), "danger")

    def refresh(self) -> None:
        """Periodic: pick up a finished flight and the study job's progress."""
        if self._pending is not None:
            status, value = self._pending
            self._pending = None
            if status == "ok":
                self.show_flight(*value)
            else:
                self._show(f"The flight failed: {value}", "danger")
        if self.job is None:
            return
        snap = self.job.snapshot()
        self.study_progress.value = int(1000 * (snap.get("fraction") or 0))
        self.study_message.object = escape(
            f"{snap['name']}: {snap['state']} — {snap.get('message') or ''}"
        )
        if snap["state"] in ("done", "failed", "cancelled"):
            self.study_progress.visible = self.cancel_button.visible = False
            if snap["state"] == "done" and self.study_result is not self.job.result:
                self.study_result = self.job.result
                self.study_figure.object = self.study_result.figure()
                self.study_figure.visible = True
                info = self.study_result.info
                extra = ""
                if self.study_result.name == "sparsity":
                    extra = (
                        f" Loss-level breakdown at {_pct(info.get('loss_breakdown_sparsity'))}"
                        f", flight-level at {_pct(info.get('flight_breakdown_sparsity'))}."
                    )
                self.study_message.object = escape(
                    f"{snap['name']} done in {info.get('wall_s', 0):.0f} s.{extra}"
                )
            elif snap["state"] == "failed":
                self.study_message.object = escape(f"{snap['name']} failed: {snap.get('error')}")

    # -- figures ---------------------------------------------------------------------------
    def _make_figures(self):
        self.src = {
            k: ColumnDataSource(dict(xs=[], ys=[])) for k in ("head", "abd", "head_mpc", "abd_mpc")
        }
        self.src_paths = ColumnDataSource(dict(xs=[], ys=[], color=[], label=[]))
        self.src_target = ColumnDataSource(dict(x=[], y=[]))
        self.src_thrust = ColumnDataSource(dict(x0=[], y0=[], x1=[], y1=[]))
        p = figure(
            title="Closed-loop flight to scale (cm)",
            match_aspect=True,
            width=440,
            height=480,
            tools="pan,wheel_zoom,reset,save",
            toolbar_location="above",
            x_axis_label="x (cm)",
            y_axis_label="y (cm)",
        )
        p.multi_line(
            "xs",
            "ys",
            source=self.src_paths,
            line_color="color",
            line_width=2,
            legend_field="label",
        )
        p.patches(
            "xs",
            "ys",
            source=self.src["head_mpc"],
            fill_alpha=0,
            line_color=ORANGE,
            line_dash="dashed",
        )
        p.patches(
            "xs",
            "ys",
            source=self.src["abd_mpc"],
            fill_alpha=0,
            line_color=ORANGE,
            line_dash="dashed",
        )
        p.patches(
            "xs",
            "ys",
            source=self.src["head"],
            fill_color=ORANGE,
            fill_alpha=0.6,
            line_color="black",
        )
        p.patches(
            "xs", "ys", source=self.src["abd"], fill_color=BLUE, fill_alpha=0.5, line_color="black"
        )
        p.segment("x0", "y0", "x1", "y1", source=self.src_thrust, line_color=RED, line_width=3)
        p.scatter(
            "x",
            "y",
            source=self.src_target,
            marker="star",
            size=16,
            color="black",
            legend_label="target",
        )
        p.legend.label_text_font_size = "8pt"
        p.legend.orientation = "horizontal"
        p.add_layout(p.legend[0], "below")  # outside the data: a flight can go anywhere
        self.fig_moth = p
        self.src_err = ColumnDataSource(dict(t=[], net=[], mpc=[]))
        self.src_u = ColumnDataSource(dict(t=[], F=[], tau=[], F_mpc=[], tau_mpc=[]))
        fe = figure(
            width=380,
            height=195,
            x_axis_label="t (s)",
            y_axis_label="error (cm)",
            toolbar_location=None,
        )
        fe.line("t", "net", source=self.src_err, color=BLUE, line_width=2, legend_label="network")
        fe.line("t", "mpc", source=self.src_err, color=ORANGE, line_width=2, legend_label="MPC")
        fe.legend.label_text_font_size = "8pt"
        fe.legend.orientation = "horizontal"
        fe.add_layout(fe.legend[0], "above")  # outside the data
        from mothlab.control.loop import F_MAX, TAU_MAX

        figs = [fe]
        for key, label, lo, hi in (
            ("F", "F (dyn)", 0.0, F_MAX),
            ("tau", "τ (dyn·cm)", -TAU_MAX, TAU_MAX),
        ):
            f = figure(
                width=380,
                height=150,
                x_axis_label="t (s)",
                y_axis_label=label,
                title=f"{label}, clipped to [{lo:g}, {hi:g}] (dotted)",
                toolbar_location=None,
            )
            f.step("t", key, source=self.src_u, color=BLUE, line_width=2, mode="after")
            f.step("t", f"{key}_mpc", source=self.src_u, color=ORANGE, line_width=1.5, mode="after")
            for b in (lo, hi):  # the S3 range the controls are clipped to
                f.add_layout(
                    Span(location=b, dimension="width", line_color=GREY, line_dash="dotted")
                )
            figs.append(f)
        self.time_spans = []
        for f in figs:
            s = Span(location=0, dimension="height", line_color=GREY, line_dash="dashed")
            f.add_layout(s)
            self.time_spans.append(s)
        self.fig_err, self.fig_F, self.fig_tau = figs

    def _update_sources(self):
        from mothlab.moth.geometry import body_shapes

        r, m = self.result, self.mpc
        body = self._body_params()
        self.shapes = body_shapes(r.state[0, 0], _controls_per_frame(r), body)
        self.shapes_mpc = (
            body_shapes(m.state[0, 0], _controls_per_frame(m), body) if m is not None else None
        )
        tgt = r.target[0]
        xs, ys, col, lab = [tgt[:, 0]], [tgt[:, 1]], [GREY], ["target path"]
        xs.append(r.state[0, 0, :, 0])
        ys.append(r.state[0, 0, :, 2])
        col.append(BLUE)
        lab.append("network (joint)")
        if m is not None:
            xs.append(m.state[0, 0, :, 0])
            ys.append(m.state[0, 0, :, 2])
            col.append(ORANGE)
            lab.append("MPC (joint)")
        self.src_paths.data = dict(xs=xs, ys=ys, color=col, label=lab)
        nan = np.full(len(r.t), np.nan)
        self.src_err.data = dict(
            t=r.t, net=r.error[0, 0], mpc=m.error[0, 0] if m is not None else nan
        )
        uc, mc = _controls_per_frame(r), (_controls_per_frame(m) if m is not None else None)
        self.src_u.data = dict(
            t=r.t,
            F=uc[:, 0],
            tau=uc[:, 2],
            F_mpc=mc[:, 0] if mc is not None else nan,
            tau_mpc=mc[:, 2] if mc is not None else nan,
        )
        pts = np.concatenate(
            [self.shapes.head.reshape(-1, 2), self.shapes.abdomen.reshape(-1, 2), tgt]
        )
        lo, hi = pts.min(0), pts.max(0)
        mid, half = (lo + hi) / 2, max((hi - lo).max() / 2 * 1.1, 3.0)
        self.fig_moth.x_range.start, self.fig_moth.x_range.end = mid[0] - half, mid[0] + half
        self.fig_moth.y_range.start, self.fig_moth.y_range.end = mid[1] - half, mid[1] + half
        self.player.end = len(r.t) - 1
        self.param.frame.bounds = (0, len(r.t) - 1)
        self.frame = min(self.frame, len(r.t) - 1)
        self._draw_frame()

    def _body_params(self):
        from mothlab.moth import MothParams

        p = MothParams(s=float(self.scale))
        p.rho_butt = p.rho_butt * float(self.abdomen_mass_factor)
        return p

    def _draw_frame(self):
        if self.result is None:
            return
        k = int(self.frame)
        s = self.shapes
        self.src["head"].data = dict(xs=[s.head[k, :, 0]], ys=[s.head[k, :, 1]])
        self.src["abd"].data = dict(xs=[s.abdomen[k, :, 0]], ys=[s.abdomen[k, :, 1]])
        if self.shapes_mpc is not None:
            sm = self.shapes_mpc
            self.src["head_mpc"].data = dict(xs=[sm.head[k, :, 0]], ys=[sm.head[k, :, 1]])
            self.src["abd_mpc"].data = dict(xs=[sm.abdomen[k, :, 0]], ys=[sm.abdomen[k, :, 1]])
        else:
            self.src["head_mpc"].data = self.src["abd_mpc"].data = dict(xs=[], ys=[])
        self.src_thrust.data = dict(
            x0=[s.thrust_start[k, 0]],
            y0=[s.thrust_start[k, 1]],
            x1=[s.thrust_end[k, 0]],
            y1=[s.thrust_end[k, 1]],
        )
        tgt = self.result.target[0, k]
        self.src_target.data = dict(x=[tgt[0]], y=[tgt[1]])
        for span in self.time_spans:
            span.location = float(self.result.t[k])

    # -- layout ----------------------------------------------------------------------------
    def __panel__(self):
        flight = pn.Param(
            self.param,
            parameters=[
                "experiment",
                "network",
                "level",
                "target",
                "waypoints",
                "amplitude",
                "duration",
                "sensor_noise",
                "actuator_noise",
                "scale",
                "abdomen_mass_factor",
                "with_mpc",
            ],
            show_name=False,
            sizing_mode="stretch_width",
        )
        studies = pn.Column(
            pn.Param(self.param, parameters=["study"], show_name=False),
            pn.Row(self.study_button, self.cancel_button),
            self.study_progress,
            self.study_message,
        )
        controls = pn.Column(
            pn.pane.Markdown("### Closed-loop flight"),
            flight,
            self.fly_button,
            pn.pane.Markdown("### Studies over the experiment's networks"),
            studies,
            width=320,
        )
        legend = pn.pane.Markdown(
            "Filled: the network's moth; dashed orange: the MPC's (random shooting on the true "
            "model). Every 20 ms the controller is asked for the pose 20 ms ahead on a smooth "
            "approach to the target (star); controls are clipped to the S3 ranges (dotted).",
            sizing_mode="stretch_width",
        )
        plots = pn.Column(self._status, self._placeholder, *self._flown, legend, self._summary)
        series = pn.Column(*self._series)
        return pn.Column(
            pn.Row(controls, plots, series), self.study_figure, sizing_mode="stretch_width"
        )


def _controls_per_frame(r):
    """(T+1, 3) controls per recorded instant (the last one repeated), for drawing."""
    u = r.controls[0, 0]
    return np.concatenate([u, u[-1:]])


def _pct(v):
    return "none" if v is None else f"{100 * v:.0f} %"
