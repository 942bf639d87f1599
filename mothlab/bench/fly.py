"""``mothlab bench fly``: closed-loop flights per second, and the sparsity study's wall time.

mothlab flies every network on every flight in one compiled scan over control periods (the
integrator inside). The approach it replaces, re-implemented here and run in the same process on
the same networks and flights: a plain Python loop over flights and 20 ms periods, one network
evaluation and one ``simulate`` call per period (what chaining the authors' 20 ms solutions by
hand looks like). Both fly 1 s (50 periods) of hover and of the flower; compile time is excluded
from the rates (a warm-up run first) and reported apart. Prints a table and one summary line, and
writes the record ``assets/bench/fly.json`` that ``mothlab bench readme`` renders.
"""

from __future__ import annotations

import os
import time


def register(sub) -> None:
    p = sub.add_parser(
        "fly",
        help="closed-loop flights per second vs a Python loop of simulate",
        description=__doc__,
    )
    p.add_argument(
        "--experiment", default=None, help="experiment store (default: the embedded one)"
    )
    p.add_argument("--networks", type=int, default=40, help="dense networks flown (default 40)")
    p.add_argument(
        "--n-original",
        type=int,
        default=2,
        help="flights flown by the Python-loop approach (default 2)",
    )
    p.add_argument("--mpc-samples", type=int, default=512)
    p.add_argument("--skip-study", action="store_true", help="do not time the sparsity study")
    p.add_argument("--record", default=None, help="record path (default assets/bench/fly.json)")
    p.set_defaults(func=run)


def python_loop(exp, xs, ys, params, masks, flights, p, reference, n_periods=None):
    """One flight the plain way (the approach mothlab's compiled loop replaces, and the
    independent reference its test compares with): NumPy desired state, one forward pass through
    ``nets.mlp.forward`` and the scalers' ``inverse_transform``, and one ``simulate`` call per
    20 ms period. Flies flight ``p`` of ``flights`` for ``n_periods`` (default: all) and returns
    the states at the period boundaries, shape (n_periods + 1, 8)."""
    import math

    import numpy as np

    from mothlab.data import INPUT_NAMES, OUTPUT_NAMES
    from mothlab.moth import MothParams, simulate
    from mothlab.nets.mlp import forward

    om, ze, amax, wa = reference.gains().astype(float)
    dt = 0.02
    body = MothParams()
    s = flights.state0[:, p].astype(np.float32)
    out = [s]
    wrap = lambda a: (a + math.pi) % (2 * math.pi) - math.pi  # noqa: E731
    for i in range(len(flights.t) - 1 if n_periods is None else n_periods):
        x, xd, y, yd, th, thd, ph, phd = s.astype(float)
        pT, vT, aT = (a[i, :, p] for a in (flights.target_p, flights.target_v, flights.target_a))
        acc = aT + om**2 * (pT - [x, y]) + 2 * ze * om * (vT - [xd, yd])
        acc *= min(1.0, amax / max(float(np.hypot(*acc)), 1e-6))
        ath = wa**2 * wrap(math.pi / 2 - th) - 2 * wa * thd
        aph = wa**2 * wrap(3 * math.pi / 2 - ph) - 2 * wa * phd
        thw, phw = th % (2 * math.pi), ph % (2 * math.pi)
        inp = {
            "xd0": xd,
            "yd0": yd,
            "phi0": phw,
            "theta0": thw,
            "phid0": phd,
            "thetad0": thd,
            "x_f": xd * dt + 0.5 * acc[0] * dt**2,
            "y_f": yd * dt + 0.5 * acc[1] * dt**2,
            "phi_f": phw + phd * dt + 0.5 * aph * dt**2,
            "theta_f": thw + thd * dt + 0.5 * ath * dt**2,
        }
        X = np.array([[inp[n] for n in INPUT_NAMES]], np.float32)
        Y = ys.inverse_transform(
            np.asarray(forward(params, masks, xs.transform(X), exp.config.activation))
        )[0]
        fx, fy, tau = (float(Y[OUTPUT_NAMES.index(n)]) for n in ("Fx", "Fy", "tau"))
        u = [
            min(math.hypot(fx, fy), 44300.0),
            math.atan2(fy, fx) % (2 * math.pi),
            min(max(tau, -1e5), 1e5),
        ]
        s = simulate(s, u, body, t=[0.0, dt])[-1]
        out.append(s)
    return np.array(out)


def run(args) -> int:
    import jax
    import jax.numpy as jnp

    from mothlab import control
    from mothlab.bench import command_line, load_average, write_record
    from mothlab.nets import load_experiment
    from mothlab.progress import Progress, tqdm_progress
    from mothlab.store import assets_path

    for name in ("networks", "n_original", "mpc_samples"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer.")
    load0 = load_average()
    path = args.experiment or str(assets_path() / "default_experiment.zarr")
    exp = load_experiment(path)
    n = min(args.networks, exp.n_networks)
    device = f"{jax.default_backend()} ({jax.devices()[0].device_kind}, {os.cpu_count()} cores)"
    print(
        f"mothlab bench fly — device: {device}; load {(load0 or [float('nan')])[0]:.1f}; experiment {exp.path.name}"
    )
    flights = control.make_flights([control.Hover(), control.Flower(2.0)], duration=1.0)
    nets = control.load_networks(exp, [(0, j) for j in range(n)])
    spans = (nets.spans_in, nets.spans_out)
    rows = []
    study = None

    with tqdm_progress("bench fly") as progress:

        def timed(label, ctrl, n_flights, **kw):
            progress(Progress(len(rows) / 6, label))
            t0 = time.perf_counter()
            control.fly(ctrl, flights, spans=spans, **kw)  # compile (or the on-disk cache)
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            control.fly(ctrl, flights, spans=spans, **kw)
            wall = time.perf_counter() - t0
            rows.append((label, n_flights / wall, wall, first))

        timed(f"mothlab: {n} networks × {flights.n} flights", nets, n * flights.n)
        timed(
            f"MPC ({args.mpc_samples} samples/period) × {flights.n}",
            "mpc",
            flights.n,
            mpc_samples=args.mpc_samples,
        )
        timed(f"oracle (LM) × {flights.n}", "oracle", flights.n)

        # the original approach: a Python loop of simulate calls (same networks, same flights)
        progress(Progress(0.5, "Python loop of simulate"))
        xs, ys = control.experiment_scalers(exp)
        w, b = exp.weights(0), exp.biases(0)
        k = args.n_original
        t_first = None
        t0 = time.perf_counter()
        for f in range(k):
            j = f % n
            params = {"w": [jnp.asarray(a[j]) for a in w], "b": [jnp.asarray(a[j]) for a in b]}
            masks = jax.tree.map(lambda a: jnp.ones(a.shape, bool), params)
            python_loop(exp, xs, ys, params, masks, flights, f % flights.n, control.Reference())
            if t_first is None:  # the first flight carries the compile of simulate and forward
                t_first = time.perf_counter() - t0
                t0 = time.perf_counter()
        wall_orig = (time.perf_counter() - t0) if k > 1 else t_first
        rate_orig = max(k - 1, 1) / wall_orig
        rows.insert(
            0, (f"original: Python loop of simulate ({k} flights)", rate_orig, wall_orig, t_first)
        )
        if not args.skip_study:
            from mothlab.control.studies import sparsity_study

            progress(Progress(0.6, "sparsity study"))
            t0 = time.perf_counter()
            res = sparsity_study(exp, mpc_samples=args.mpc_samples)
            study = (res.info, time.perf_counter() - t0)
        progress(Progress(1.0, "done"))

    print(
        f"\n{'method (1 s flights = 50 periods)':<46} {'flights/s':>10} {'× original':>11} "
        f"{'wall (s)':>9} {'first call (s)':>15}"
    )
    table = []
    for label, rate, wall, first in rows:
        print(f"{label:<46} {rate:>10,.1f} {rate / rate_orig:>11.0f} {wall:>9.2f} {first:>15.1f}")
        table.append(
            {
                "method (1 s flights = 50 periods, hover + flower)": label,
                "flights/s": f"{rate:,.2f}",
                "× Python loop": f"{rate / rate_orig:,.0f}×",
                "wall (s)": f"{wall:.2f}",
                "first call, compile included (s)": f"{first:.1f}",
            }
        )
    net = rows[1]
    figures = {"flights_per_s": net[1], "python_loop_flights_per_s": rate_orig}
    tail = ""
    if study is not None:
        info, wall = study
        print(
            f"\nsparsity study: {info['networks_flown']} networks ({exp.n_networks} × "
            f"{exp.levels_done} levels) × {info['n_flights']} flights + MPC + oracle: "
            f"{wall:.1f} s wall (networks {info['network_wall_s']:.1f} s), compile included"
        )
        tail = f"; sparsity study {wall:.0f} s for {info['networks_flown']} networks"
        figures.update(study_s=wall, study_networks=info["networks_flown"])
    summary = (
        f"summary: {net[1]:,.0f} closed-loop flights/s (1 s, 50 periods; {n} networks × "
        f"{flights.n} flights) = {net[1] / rate_orig:,.0f}× a Python loop of simulate "
        f"({rate_orig:.2f} flights/s) on {device}, load {(load_average() or [float('nan')])[0]:.1f}{tail}"
    )
    print(summary)
    write_record(
        "fly",
        command=command_line(),
        table=table,
        summary=summary,
        figures=figures,
        started_load=load0,
        out=args.record,
    )
    return 0
