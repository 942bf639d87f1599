"""``mothlab fly``: fly a trained network (or the MPC / oracle baselines) in closed loop.

Every 20 ms the controller gets the sensed state and the desired state 20 ms ahead, its controls
are clipped to the S3 ranges and the true simulator flies them (see ``mothlab.control``).

Examples::

    mothlab fly assets/default_experiment.zarr --network 3 --level 0 --target flower
    mothlab fly assets/default_experiment.zarr --controller mpc --target waypoints \\
        --waypoints "3,0;3,3" --duration 1
    mothlab fly assets/default_experiment.zarr --study sparsity --out fly-study

Writes ``flight.csv`` and ``flight.png`` (or ``study_<name>.csv`` / ``.png``) to ``--out`` and
prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from mothlab.runtime import enable_compile_cache


def register(sub) -> None:
    from mothlab.control.names import STUDIES, TARGETS

    p = sub.add_parser(
        "fly",
        help="fly a network, the MPC or the oracle in closed loop",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("experiment", help="experiment store (e.g. assets/default_experiment.zarr)")
    p.add_argument("--network", type=int, default=0, help="network index (default 0)")
    p.add_argument("--level", type=int, default=0, help="level index (default 0: dense)")
    p.add_argument(
        "--target", default="hover", choices=list(TARGETS), help="what to follow (default hover)"
    )
    p.add_argument("--waypoints", default=None, help='for --target waypoints: "x,y;x,y" in cm')
    p.add_argument(
        "--speed",
        type=float,
        default=25.0,
        help="cruise speed of the waypoint goal (cm/s, default 25)",
    )
    p.add_argument(
        "--amplitude",
        type=float,
        default=2.0,
        help="flower amplitude of its 0.2 Hz component (cm, default 2)",
    )
    p.add_argument("--duration", type=float, default=1.0, help="flight length in s (default 1)")
    p.add_argument(
        "--controller",
        default="net",
        choices=["net", "mpc", "oracle"],
        help="net (the trained network), mpc or oracle (default net)",
    )
    p.add_argument(
        "--sensor-noise",
        type=float,
        default=0.0,
        help="σ of noise on the sensed state, fraction of the training range",
    )
    p.add_argument(
        "--actuator-noise",
        type=float,
        default=0.0,
        help="σ of noise on (Fx, Fy, τ), fraction of the training range",
    )
    p.add_argument("--scale", type=float, default=1.0, help="body scale s (default 1)")
    p.add_argument(
        "--abdomen-mass-factor",
        type=float,
        default=1.0,
        help="abdomen mass × k (a fed moth; default 1)",
    )
    p.add_argument(
        "--mpc-samples",
        type=int,
        default=512,
        help="random control sets per period for the MPC (default 512)",
    )
    p.add_argument("--seed", type=int, default=0, help="noise draws and flower phases (default 0)")
    p.add_argument(
        "--study",
        default=None,
        choices=list(STUDIES),
        help="run a study over the experiment's networks instead of one flight",
    )
    p.add_argument(
        "--draws",
        type=int,
        default=None,
        help="noise draws per condition in a study (default: the study's)",
    )
    p.add_argument("--out", default="fly-out", help="folder for the CSV and figure")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run, cancellable=True)  # Ctrl-C stops at a chunk boundary


def _nonneg(name, v):
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {v!r}.")
    return v


def _write_csv(path, cols):
    keys = list(cols)
    n = len(cols[keys[0]])
    with open(path, "w") as fh:
        fh.write(",".join(keys) + "\n")
        for i in range(n):
            fh.write(",".join(f"{float(cols[k][i]):.7g}" for k in keys) + "\n")


def run(args) -> int:
    if args.duration is None or not math.isfinite(args.duration) or args.duration <= 0:
        raise ValueError(f"--duration must be a positive number of seconds; got {args.duration}.")
    _nonneg("--sensor-noise", args.sensor_noise)
    _nonneg("--actuator-noise", args.actuator_noise)
    if args.draws is not None and args.draws < 1:
        raise ValueError(f"--draws must be at least 1; got {args.draws}.")
    path = Path(args.experiment)
    if not path.exists():
        raise FileNotFoundError(
            f"no experiment at {path}; give the path of an experiment store "
            "(e.g. assets/default_experiment.zarr)."
        )
    import matplotlib

    matplotlib.use("Agg")
    enable_compile_cache()
    from mothlab import control
    from mothlab.nets import load_experiment

    exp = load_experiment(path)
    control.experiment_scalers(exp)  # refuse an experiment without scalers before any work
    out = Path(args.out)
    if args.study:
        return _study(args, exp, out)
    target = control.make_target(
        args.target,
        waypoints=args.waypoints,
        amplitude=args.amplitude,
        speed=args.speed,
        duration=args.duration,
        seed=args.seed,
    )
    body = control.body_constants(args.scale, args.abdomen_mass_factor)  # validates
    del body
    nets = control.load_networks(exp, [(args.level, args.network)])
    flights = control.make_flights(
        [target],
        duration=args.duration,
        sensor_noise=[args.sensor_noise],
        actuator_noise=[args.actuator_noise],
        bodies=[(args.scale, args.abdomen_mass_factor)],
        seed=args.seed,
    )
    ctrl = nets if args.controller == "net" else args.controller
    res = control.fly(
        ctrl, flights, spans=(nets.spans_in, nets.spans_out), mpc_samples=args.mpc_samples
    )
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "flight.csv", res.table())
    from mothlab.control.figures import flight_figure

    who = (
        f"network {args.network}, level {args.level} "
        f"({100 * exp.sparsity_levels[args.level]:.0f} %)"
        if args.controller == "net"
        else args.controller
    )
    fig = flight_figure(res, title=f"{who}: {target.describe()}")
    fig.savefig(out / "flight.png", dpi=110)
    summary = res.summary()
    summary.update(
        network=args.network if args.controller == "net" else None,
        level=args.level if args.controller == "net" else None,
        experiment=str(path),
        target=args.target,
        csv=str(out / "flight.csv"),
        figure=str(out / "flight.png"),
        flight_wall_s=round(res.wall_s, 3),
    )
    print(json.dumps(_json_safe(summary)))
    return 0


def _study(args, exp, out: Path) -> int:
    from mothlab.cli import cancel_requested
    from mothlab.control.studies import robustness, run_study
    from mothlab.progress import tqdm_progress

    kw = {
        "seed": args.seed,
        "duration": args.duration,
        "flower_amplitude": args.amplitude,
        "mpc_samples": args.mpc_samples,
    }
    if args.draws is not None and args.study != "scale" and args.study != "mass":
        kw["draws"] = args.draws
    with tqdm_progress(f"fly {args.study}", disable=args.quiet) as progress:
        res = run_study(exp, args.study, progress=progress, cancel=cancel_requested, **kw)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"study_{args.study.replace('-', '_')}"
    res.to_csv(out / f"{stem}.csv")
    res.figure().savefig(out / f"{stem}.png", dpi=110)
    summary = {
        "study": args.study,
        "experiment": str(exp.path),
        "csv": str(out / f"{stem}.csv"),
        "figure": str(out / f"{stem}.png"),
        "x": res.x.tolist(),
        "groups": list(res.groups),
        "median_rms_error_cm": [[round(float(v), 4) for v in row] for row in res.median()],
        "mpc_median_rms_error_cm": [round(float(v), 4) for v in _nanmedian(res.mpc)],
        "oracle_median_rms_error_cm": [round(float(v), 4) for v in _nanmedian(res.oracle)],
    }
    if args.study != "sparsity":
        summary["robustness"] = robustness(res)
    summary.update({k: v for k, v in res.info.items() if k != "median_test_loss"})
    print(json.dumps(_json_safe(summary)))
    return 0


def _json_safe(v):
    """Plain JSON: NaN/inf become None (never a silent NaN in the output line)."""
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _nanmedian(a):
    import numpy as np

    return np.nanmedian(a, axis=-1)
