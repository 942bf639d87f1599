"""Flight tab: change the moth's body, its initial state and its controls; watch 20 ms of flight.

Every number comes from the library: :func:`mothlab.moth.simulate` flies the moth and
:func:`mothlab.moth.geometry.body_shapes` gives what to draw. The view keeps its Bokeh figures and
only replaces their data, so a slider change or an animation frame costs one simulation (~ms once
compiled) and a small data update.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource, Range1d, Span
from bokeh.plotting import figure

from mothlab import moth
from mothlab.data import SamplingRanges
from mothlab.moth import STATE_LABELS, STATE_UNITS, MothParams
from mothlab.moth.geometry import body_shapes
from mothlab.runtime import enable_compile_cache

from .common import (
    BLUE,
    GREEN,
    GREY,
    ORANGE,
    PURPLE,
    RED,
    Notice,
    PromptFloatSlider,
    PromptPlayer,
    add_periodic,
    escape,
    held,
    inline,
    served,
    set_columns,
    show,
)

SLIDER_WIDTH = 260  # px: the controls column is 290 px wide
N_FRAMES = 41  # frames of the animation; fixed so the simulator compiles once
#: smallest y-span drawn in each state plot (position cm, angle rad, speed cm/s, angular velocity
#: rad/s): a hovering moth's 3e-6 cm of round-off is drawn flat, not as a trend
MIN_SPANS = (0.05, 0.005, 0.5, 0.05)

#: the sliders' bounds: the S3 sampling ranges of the data layer (lazy: imports no JAX)
S3_RANGES = {
    k: tuple(float(v) for v in getattr(SamplingRanges(), k))
    for k in ("xd", "yd", "theta", "phi", "thetad", "phid", "F", "alpha", "tau")
}

# -- the simulator compiles once per process, in a worker thread --------------------------------
_ready = threading.Event()
_warm_lock = threading.Lock()
_warm_error: list[str] = []


def warm_up(block: bool = False) -> bool:
    """Compile the simulator for the animation's shape in a background thread (first use costs
    tens of seconds on CPU; with the on-disk compile cache a few). Returns True when ready."""
    enable_compile_cache()

    def work():
        try:
            p = MothParams()
            moth.simulate(np.zeros(8), np.zeros(3), p, t=np.linspace(0, 0.02, N_FRAMES))
        except Exception as err:  # noqa: BLE001 - shown in the page
            _warm_error.append(f"{type(err).__name__}: {err}")
        finally:
            _ready.set()

    with _warm_lock:
        if not _ready.is_set() and not getattr(warm_up, "thread", None):
            warm_up.thread = threading.Thread(target=work, name="mothlab-warmup", daemon=True)
            warm_up.thread.start()
    if block:
        _ready.wait()
    return _ready.is_set()


#: a plot keeps its range while the new data fit inside it and the range it would get instead
#: is at least this share of it: a slider step that moves the curves a little then redraws them
#: without new axes. New ranges make chromium lay out the plots again, which was most of a force
#: step's redraw (4 state plots: 66 ms against 33 ms for new data alone, 2026-12-02 06:20 UTC,
#: load 2.0, median of 10 in chromium)
KEEP_RANGE = 0.6


def _follow(rng, data: tuple[float, float], want: tuple[float, float]) -> None:
    """Set the Range1d ``rng`` to ``want`` unless it already holds ``data`` and ``want`` spans at
    least :data:`KEEP_RANGE` of it."""
    (lo, hi), (a, b) = data, want
    if rng.start <= lo and hi <= rng.end and b - a >= KEEP_RANGE * (rng.end - rng.start):
        return
    rng.start, rng.end = a, b


#: the paths drawn in the flight plot (colour, what)
TRAILS = ((ORANGE, "head-thorax centre"), (BLUE, "abdomen centre"), ("black", "centre of mass"))


def legend_html(items, block: bool = True) -> str:
    """A legend as HTML: ``items`` are (colour, label) of lines. The plots' legends are drawn in
    the page, not by Bokeh: BokehJS measures and redraws a legend on every data change, which cost
    a third of a force step's redraw (5 plots: 101 ms against 158 ms with their legends, 2026-12-02
    06:35 UTC, load 4.7, median of 10 data changes in chromium)."""
    keys = " ".join(
        f"<span style='white-space:nowrap'><span style='color:{c}'>━━</span> {escape(t)}</span>"
        for c, t in items
    )
    return f"<div style='font-size:8pt'>{keys}</div>" if block else keys


def _lean(fig):
    """Drop the glyph copies Bokeh makes for unselected and muted data (nothing here is selected
    or muted): 32 models fewer of the first page's 298 to build, send and draw."""
    for r in fig.renderers:
        r.nonselection_glyph = None
        r.muted_glyph = None
    return fig


class FlightSetup(param.Parameterized):
    """Initial state and constant controls of one flight (S3 ranges; x₀ = y₀ = 0)."""

    xd0 = param.Number(
        0.0, bounds=S3_RANGES["xd"], label="ẋ₀ (cm/s)", doc="Initial horizontal speed."
    )
    yd0 = param.Number(
        0.0, bounds=S3_RANGES["yd"], label="ẏ₀ (cm/s)", doc="Initial vertical speed."
    )
    theta0 = param.Number(
        math.pi / 2,
        bounds=S3_RANGES["theta"],
        label="θ₀ (rad)",
        doc="Initial head-thorax angle from the horizontal.",
    )
    phi0 = param.Number(
        3 * math.pi / 2,
        bounds=S3_RANGES["phi"],
        label="φ₀ (rad)",
        doc="Initial abdomen angle from the horizontal.",
    )
    thetad0 = param.Number(
        0.0,
        bounds=S3_RANGES["thetad"],
        label="θ̇₀ (rad/s)",
        doc="Initial head-thorax angular velocity.",
    )
    phid0 = param.Number(
        0.0, bounds=S3_RANGES["phid"], label="φ̇₀ (rad/s)", doc="Initial abdomen angular velocity."
    )
    F = param.Number(2586.0, bounds=S3_RANGES["F"], label="F (dyn)", doc="Wing force magnitude.")
    alpha = param.Number(
        0.0,
        bounds=S3_RANGES["alpha"],
        label="α (rad)",
        doc="Wing force direction relative to the head-thorax axis.",
    )
    tau = param.Number(0.0, bounds=S3_RANGES["tau"], label="τ (dyn·cm)", doc="Abdominal torque.")
    duration_ms = param.Number(
        20.0,
        bounds=(1.0, 100.0),
        label="duration (ms)",
        doc="Length of the flight (the data use 20 ms).",
    )

    def state0(self) -> np.ndarray:
        """(8,) ``[x, ẋ, y, ẏ, θ, θ̇, φ, φ̇]``."""
        return np.array(
            [0.0, self.xd0, 0.0, self.yd0, self.theta0, self.thetad0, self.phi0, self.phid0]
        )

    def controls(self) -> np.ndarray:
        """(3,) ``[F, α, τ]``."""
        return np.array([self.F, self.alpha, self.tau])


def preset_values(name: str, body: MothParams) -> dict[str, float]:
    """Initial state and controls of a named manoeuvre for ``body``.

    hover: upright, F = (m1 + m2)·g straight up; climb: 3× hover force; pitch-up: hover posture
    with a positive abdominal torque; free-fall: no force, no torque.
    """
    hover = dict(
        xd0=0.0,
        yd0=0.0,
        theta0=math.pi / 2,
        phi0=3 * math.pi / 2,
        thetad0=0.0,
        phid0=0.0,
        F=round(body.hover_force, 1),
        alpha=0.0,
        tau=0.0,
    )
    if name == "hover":
        return hover
    if name == "climb":
        return {**hover, "F": round(3 * body.hover_force, 1)}
    if name == "pitch-up":
        return {
            **hover,
            "theta0": math.pi / 4,
            "phi0": 5 * math.pi / 4,
            "alpha": math.pi / 4,
            "tau": 50000.0,
        }
    if name == "free-fall":
        return {**hover, "F": 0.0}
    raise ValueError(f"Unknown flight preset {name!r}; choose one of {', '.join(PRESETS)}.")


PRESETS = ("hover", "climb", "pitch-up", "free-fall")
BODY_PARAMS = (
    "s",
    "ahead",
    "bhead",
    "abutt",
    "bbutt",
    "rho_head",
    "rho_butt",
    "L1",
    "L2",
    "L3",
    "K",
    "c",
    "g",
    "betaR",
    "rhoA",
    "muA",
)


class FlightView(pn.viewable.Viewer):
    """Fly the two-body moth for 20 ms and animate it to scale.

    ``body`` (MothParams) and ``setup`` (FlightSetup) are the controls; ``frame`` is the time
    index of the animation (0 … N_FRAMES − 1).
    """

    preset = param.Selector(default="hover", objects=list(PRESETS), doc="A named manoeuvre.")
    frame = param.Integer(default=0, bounds=(0, N_FRAMES - 1))

    def __init__(self, **params):
        super().__init__(**params)
        self.body = MothParams()
        self.setup = FlightSetup(**preset_values(self.preset, self.body))
        self.trajectory: np.ndarray | None = None  # (N_FRAMES, 8)
        self.times = np.linspace(0, self.setup.duration_ms, N_FRAMES)
        self.shapes = None
        self.n_draws = 0
        self._status = Notice("", alert_type="info", visible=False, sizing_mode="stretch_width")
        self.time_readout = pn.pane.HTML(
            "<b class='mothlab-time'>t = 0.0 ms</b>", width=110, align="center"
        )
        self._make_figures()
        self.body.param.watch(self._changed, list(BODY_PARAMS))
        self.setup.param.watch(self._changed, list(FlightSetup.param)[1:])
        self.player = PromptPlayer(
            start=0,
            end=N_FRAMES - 1,
            value=0,
            interval=80,
            loop_policy="loop",
            width=330,
            show_loop_controls=False,
        )
        self.player.link(self, value="frame")
        self.param.watch(self._frame_moved, "frame")
        if _ready.is_set():
            self.redraw()
        else:
            # served: compile once this page is drawn (the page is not built while JAX traces:
            # both need Python's one interpreter lock); in a notebook or plain Python: now
            if served():
                pn.state.onload(warm_up)
            else:
                warm_up()
            self._show(
                "Compiling the simulator (first use on this server only, about a "
                "minute on a small CPU; cached on disk afterwards)…",
                "info",
            )
            self._poll = add_periodic(self, self._wait_ready, 500)

    # -- compute ----------------------------------------------------------------------------
    def _wait_ready(self):
        if _ready.is_set():
            if getattr(self, "_poll", None) is not None:
                self._poll.stop()
                self._poll = None
            self.redraw()

    def _changed(self, *events):
        self.redraw()

    @param.depends("preset", watch=True)
    def _apply_preset(self):
        self.setup.param.update(**preset_values(self.preset, self.body))

    def _show(self, text: str | None, kind: str = "warning") -> None:
        show(self._status, text, kind)

    def redraw(self) -> bool:
        """Simulate with the current sliders and update every plot; False (and a message in the
        page) when the body is invalid or the simulation fails."""
        problems = self.body.problems()
        if problems:
            self._show(
                "This body is impossible, so the last valid flight is shown. " + " ".join(problems),
                "danger",
            )
            return False
        if _warm_error:
            self._show("The simulator could not be compiled: " + _warm_error[0], "danger")
            return False
        # a float copy: Python ints from widgets would change JAX's weak types and recompile
        body = MothParams(**{k: float(v) for k, v in self.body.to_dict().items()})
        t = np.linspace(0.0, self.setup.duration_ms / 1000.0, N_FRAMES)
        try:
            traj = np.asarray(
                moth.simulate(self.setup.state0(), self.setup.controls(), body, t=t), dtype=float
            )
        except ValueError as err:
            self._show(f"Cannot fly this moth: {err}", "danger")
            return False
        if not np.all(np.isfinite(traj)):
            self._show(
                "The simulation diverged (non-finite state) for these values; reduce the "
                "force or torque or the duration.",
                "danger",
            )
            return False
        self._show(None)
        self.trajectory = traj
        self.times = t * 1000.0
        self.shapes = body_shapes(traj, self.setup.controls(), body)
        self.n_draws += 1
        with held():  # one message to the browser for the whole redraw
            self._update_sources()
        return True

    # -- figures ----------------------------------------------------------------------------
    def _make_figures(self):
        self.src_head = ColumnDataSource(dict(xs=[[]], ys=[[]]))
        self.src_abd = ColumnDataSource(dict(xs=[[]], ys=[[]]))
        self.src_points = ColumnDataSource(dict(x=[], y=[], color=[], label=[]))
        self.src_trails = ColumnDataSource(dict(xs=[], ys=[], color=[], label=[]))
        self.src_thrust = ColumnDataSource(dict(x0=[], y0=[], x1=[], y1=[]))
        self.src_torque = ColumnDataSource(dict(x=[], y=[], start=[], end=[], color=[]))
        self.src_ghost = ColumnDataSource(dict(xs=[], ys=[]))
        # a square frame with equal x/y spans (set in _update_sources): a fixed aspect. Explicit
        # Range1d: BokehJS recomputes a DataRange1d from the data on every redraw, ignoring the
        # start/end the server sets (the moth was drawn stretched 4x along x)
        p = figure(
            title="Flight to scale (cm)",
            frame_width=400,
            frame_height=400,
            x_range=Range1d(-3.0, 3.0),
            y_range=Range1d(-3.0, 3.0),
            tools="pan,wheel_zoom,reset,save",
            toolbar_location="above",
            x_axis_label="x (cm)",
            y_axis_label="y (cm)",
            css_classes=["mothlab-moth"],
        )
        p.patches(
            "xs",
            "ys",
            source=self.src_ghost,
            fill_alpha=0.0,
            line_color=GREY,
            line_alpha=0.35,
            line_dash="dashed",
        )
        p.multi_line(
            "xs",
            "ys",
            source=self.src_trails,
            line_color="color",
            line_width=2,
            line_alpha=0.8,
        )
        p.patches(
            "xs",
            "ys",
            source=self.src_head,
            fill_color=ORANGE,
            fill_alpha=0.6,
            line_color="black",
        )
        p.patches(
            "xs",
            "ys",
            source=self.src_abd,
            fill_color=BLUE,
            fill_alpha=0.5,
            line_color="black",
        )
        p.segment("x0", "y0", "x1", "y1", source=self.src_thrust, line_color=RED, line_width=4)
        p.scatter("x1", "y1", source=self.src_thrust, marker="triangle", size=12, color=RED)
        p.arc(
            "x",
            "y",
            radius=0.6,
            start_angle="start",
            end_angle="end",
            source=self.src_torque,
            line_color="color",
            line_width=4,
        )
        p.scatter("x", "y", source=self.src_points, color="color", size=8, line_color="black")
        self.fig_moth = _lean(p)

        self.state_sources = []
        self.state_figs = []
        self.state_legends = []
        self.time_spans = []
        pairs = [
            ((0, 2), "position (cm)"),
            ((4, 6), "angle (rad)"),
            ((1, 3), "speed (cm/s)"),
            ((5, 7), "angular velocity (rad/s)"),
        ]
        for (i, j), ylabel in pairs:
            src = ColumnDataSource(dict(t=[], a=[], b=[]))
            # an explicit y range (set in _update_sources): an auto-range would draw round-off
            f = figure(
                height=190,
                min_width=220,
                sizing_mode="stretch_width",
                y_range=Range1d(-1.0, 1.0),
                x_axis_label="t (ms)",
                y_axis_label=ylabel,
                tools="reset,save",
                toolbar_location=None,
            )
            f.line("t", "a", source=src, color=ORANGE, line_width=2)
            f.line("t", "b", source=src, color=BLUE, line_width=2)
            # the legend above the plot, never over the curves: HTML, see legend_html
            self.state_legends.append(
                legend_html(
                    [
                        (ORANGE, f"{STATE_LABELS[i]} ({STATE_UNITS[i]})"),
                        (BLUE, f"{STATE_LABELS[j]} ({STATE_UNITS[j]})"),
                    ]
                )
            )
            # on the overlay layer: a frame step repaints only that layer, not the curves
            span = Span(
                location=0,
                dimension="height",
                line_color=GREY,
                line_dash="dashed",
                level="overlay",
            )
            f.add_layout(span)
            self.state_sources.append((src, i, j))
            self.state_figs.append(_lean(f))
            self.time_spans.append(span)

    def _update_sources(self):
        s, traj = self.shapes, self.trajectory
        # small data: sent inline as JSON, only the columns that changed (see common.inline)
        set_columns(
            self.src_trails,
            inline(
                dict(
                    xs=[s.com_head[:, 0], s.com_abdomen[:, 0], s.com[:, 0]],
                    ys=[s.com_head[:, 1], s.com_abdomen[:, 1], s.com[:, 1]],
                    color=[ORANGE, BLUE, "black"],
                )
            ),
        )
        set_columns(
            self.src_ghost,
            inline(
                dict(
                    xs=[s.head[0, :, 0], s.abdomen[0, :, 0]],
                    ys=[s.head[0, :, 1], s.abdomen[0, :, 1]],
                )
            ),
        )
        for (src, i, j), fig, min_span in zip(self.state_sources, self.state_figs, MIN_SPANS):
            set_columns(src, inline(dict(t=self.times, a=traj[:, i], b=traj[:, j])))
            vals = np.concatenate([traj[:, i], traj[:, j]])
            lo, hi = float(vals.min()), float(vals.max())
            pad = max((hi - lo) * 0.08, (min_span - (hi - lo)) / 2, 0.0)
            _follow(fig.y_range, (lo, hi), (lo - pad, hi + pad))
        # frame the whole flight (bodies + arrow) so the animation stays in view
        pts = np.concatenate([s.head.reshape(-1, 2), s.abdomen.reshape(-1, 2), s.thrust_end])
        lo, hi = pts.min(0), pts.max(0)
        mid, half = (lo + hi) / 2, max((hi - lo).max() / 2 * 1.1, 3.0)
        xr, yr = self.fig_moth.x_range, self.fig_moth.y_range
        inside = all(
            r.start <= a and b <= r.end for r, a, b in ((xr, lo[0], hi[0]), (yr, lo[1], hi[1]))
        )
        # one decision for both axes: the spans stay equal (a fixed aspect)
        if not (inside and 2 * half >= KEEP_RANGE * (xr.end - xr.start)):
            xr.start, xr.end = mid[0] - half, mid[0] + half
            yr.start, yr.end = mid[1] - half, mid[1] + half
        self._draw_frame()

    def _frame_moved(self, event) -> None:
        with held():  # one message to the browser per frame
            self._draw_frame()

    def _draw_frame(self):
        if self.shapes is None:
            return
        k = int(self.frame)
        s = self.shapes
        set_columns(self.src_head, inline(dict(xs=[s.head[k, :, 0]], ys=[s.head[k, :, 1]])))
        set_columns(self.src_abd, inline(dict(xs=[s.abdomen[k, :, 0]], ys=[s.abdomen[k, :, 1]])))
        pts = np.stack([s.joint[k], s.com_head[k], s.com_abdomen[k], s.com[k]])
        set_columns(
            self.src_points,
            inline(
                dict(
                    x=pts[:, 0],
                    y=pts[:, 1],
                    color=["white", ORANGE, BLUE, "black"],
                    label=["joint", "head CoM", "abdomen CoM", "CoM"],
                )
            ),
        )
        set_columns(
            self.src_thrust,
            inline(
                dict(
                    x0=[s.thrust_start[k, 0]],
                    y0=[s.thrust_start[k, 1]],
                    x1=[s.thrust_end[k, 0]],
                    y1=[s.thrust_end[k, 1]],
                )
            ),
        )
        tau = float(s.torque[k])
        # torque marker: an arc at the joint, sweep ∝ |τ| (full circle at the S3 maximum)
        sweep = min(abs(tau) / max(abs(S3_RANGES["tau"][1]), 1.0), 1.0) * 1.9 * math.pi
        th = float(self.trajectory[k, 4])
        start, end = (th, th + sweep) if tau >= 0 else (th - sweep, th)
        set_columns(
            self.src_torque,
            inline(
                dict(
                    x=[s.joint[k, 0]],
                    y=[s.joint[k, 1]],
                    start=[start],
                    end=[end],
                    color=[GREEN if tau >= 0 else PURPLE],
                )
            ),
        )
        for span in self.time_spans:
            span.location = float(self.times[k])
        self.time_readout.object = f"<b class='mothlab-time'>t = {self.times[k]:.1f} ms</b>"

    # -- layout -----------------------------------------------------------------------------
    def _body_widgets(self) -> pn.Param:
        return pn.Param(
            self.body,
            parameters=list(BODY_PARAMS),
            show_name=False,
            widgets={
                **{k: {"type": PromptFloatSlider, "width": SLIDER_WIDTH} for k in BODY_PARAMS},
                "rhoA": {
                    "type": PromptFloatSlider,
                    "step": 1e-5,
                    "format": "0.00000",
                    "width": SLIDER_WIDTH,
                },
                "muA": {
                    "type": PromptFloatSlider,
                    "step": 1e-6,
                    "format": "0.000000",
                    "width": SLIDER_WIDTH,
                },
            },
        )

    def __panel__(self):
        # sliders sized to the 290 px column (Panel's default 300 px ran 30 px under the plot)
        setup_widgets = pn.Param(
            self.setup,
            show_name=False,
            widgets={
                k: {"type": PromptFloatSlider, "width": SLIDER_WIDTH}
                for k in list(FlightSetup.param)[1:]
            },
        )
        # the body's 16 sliders are built when their tab is first shown (a lighter first page)
        body_slot = pn.Column(sizing_mode="stretch_width")
        inner = pn.Tabs(
            ("Initial state & controls", setup_widgets),
            ("Body (S1)", body_slot),
            dynamic=False,
        )

        def open_body(event):
            if event.new == 1 and not body_slot.objects:
                body_slot.objects = [self._body_widgets()]

        inner.param.watch(open_body, "active")
        controls = pn.Column(
            pn.pane.HTML("<h3>Manoeuvre</h3>"),
            pn.widgets.RadioButtonGroup.from_param(self.param.preset, color="default"),
            inner,
            width=290,
            styles={"flex-shrink": "0"},
        )
        # HTML panes, not Markdown: the first page then does not import markdown_it (0.5 s)
        legend = pn.pane.HTML(
            legend_html(TRAILS, block=False)
            + "<br>Orange: head-thorax; blue: abdomen; red arrow: wing force (length ∝ F, a hover "
            "force is as long as the head-thorax); green/purple arc at the joint: abdominal torque "
            "τ (counter-clockwise / clockwise, sweep ∝ |τ|); dashed: the start.",
            sizing_mode="stretch_width",
        )
        plots = pn.Column(
            self._status,
            pn.Row(self.player, self.time_readout),
            pn.pane.Bokeh(self.fig_moth),
            legend,
            width=470,
            styles={"flex-shrink": "0"},
        )
        states = pn.GridBox(
            *[
                pn.Column(
                    pn.pane.HTML(key, margin=(0, 10), sizing_mode="stretch_width"),
                    pn.pane.Bokeh(f, sizing_mode="stretch_width"),
                    sizing_mode="stretch_width",
                )
                for key, f in zip(self.state_legends, self.state_figs)
            ],
            ncols=2,
            sizing_mode="stretch_width",
        )
        # a flex row that wraps: three columns on a 1,280 px screen, the state plots below the
        # flight where the page is narrower (a JupyterLab notebook beside its file browser)
        return pn.FlexBox(
            controls,
            plots,
            pn.Column(
                pn.pane.HTML("<h3>State versus time</h3>"),
                states,
                sizing_mode="stretch_width",
                min_width=420,
                styles={"flex": "1 1 420px"},
            ),
            flex_wrap="wrap",
            sizing_mode="stretch_width",
        )
