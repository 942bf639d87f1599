"""``mothlab bench simulate``: mothlab's simulator against the original data generator.

The original generator integrated each trajectory with ``scipy.integrate.odeint`` at default
tolerances, one Python process per core. We re-run that approach here (a ``multiprocessing`` pool
over the same S3 samples, the same right-hand side written in NumPy) and time mothlab's
``simulate`` on those samples in the same process, then measure both against scipy's Radau at a
tight tolerance on a subset. Prints a table and one summary line.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np


def register(sub) -> None:
    p = sub.add_parser("simulate", help="mothlab's simulator vs the original odeint generator",
                       description=__doc__)
    p.add_argument("--n-original", type=int, default=200,
                   help="S3 samples integrated by the original approach (default 200)")
    p.add_argument("--n-mothlab", type=int, default=200_000,
                   help="trajectories timed for mothlab: the same samples repeated (default 2e5)")
    p.add_argument("--n-reference", type=int, default=32,
                   help="samples checked against the tight Radau reference (default 32)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes for the original approach (default: all cores)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def _original_chunk(args):
    from mothlab.moth.reference import solve_original

    s, u = args
    return np.array([solve_original(s[i], u[i])[-1] for i in range(len(s))])


def _reference_chunk(args):
    from mothlab.moth.reference import solve_reference

    s, u = args
    return np.array([solve_reference(s[i], u[i], rtol=1e-11, atol=1e-9)[-1] for i in range(len(s))])


def _pool_map(pool, fn, s, u, workers):
    parts = [(a, b) for a, b in zip(np.array_split(s, workers), np.array_split(u, workers))
             if len(a)]
    return np.concatenate(list(pool.map(fn, parts)))


def run(args) -> int:
    import jax

    from mothlab.data import SamplingRanges
    from mothlab.moth import simulate

    for name in ("n_original", "n_mothlab", "n_reference", "workers"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer.")
    state0, controls = SamplingRanges().sample(max(args.n_original, args.n_reference), args.seed)
    device = f"{jax.default_backend()} ({jax.devices()[0].device_kind}, {os.cpu_count()} cores)"
    print(f"mothlab bench simulate — device: {device}; S3 samples, seed {args.seed}")

    # original approach: odeint per trajectory, one process per core. "spawn": forking a process
    # that has started JAX's thread pools can deadlock. The pool is started and warmed before timing.
    pool = ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn"))
    s_o, u_o = state0[:args.n_original], controls[:args.n_original]
    _pool_map(pool, _original_chunk, s_o[:args.workers], u_o[:args.workers], args.workers)
    t0 = time.perf_counter()
    final_orig = _pool_map(pool, _original_chunk, s_o, u_o, args.workers)
    rate_orig = args.n_original / (time.perf_counter() - t0)

    # mothlab on the same samples, repeated to a measurable size; compile excluded (warm-up)
    reps = max(1, args.n_mothlab // args.n_original)
    s_m, u_m = np.tile(s_o, (reps, 1)), np.tile(u_o, (reps, 1))
    rates = {}
    for precise in (False, True):
        n = len(s_m) if not precise else max(len(s_o), len(s_m) // 20)
        simulate(s_m[:n], u_m[:n], precise=precise)
        t0 = time.perf_counter()
        simulate(s_m[:n], u_m[:n], precise=precise)
        rates[precise] = n / (time.perf_counter() - t0)

    # accuracy against the tight stiff reference, relative to each variable's range
    nr = args.n_reference
    print(f"computing the Radau reference (rtol 1e-11) for {nr} samples ...", flush=True)
    ref = _pool_map(pool, _reference_chunk, state0[:nr], controls[:nr], args.workers)
    finals = simulate(state0, controls)[:, -1]
    span = finals.max(0) - finals.min(0)
    err = {
        "original (odeint)": np.abs(final_orig[:nr] - ref) / span if nr <= args.n_original
        else np.abs(_pool_map(pool, _original_chunk, state0[:nr], controls[:nr], args.workers) - ref) / span,
        "mothlab float32": np.abs(simulate(state0[:nr], controls[:nr])[:, -1] - ref) / span,
        "mothlab float64": np.abs(simulate(state0[:nr], controls[:nr], precise=True)[:, -1] - ref)
        / span,
    }
    rows = [("original (odeint)", rate_orig), ("mothlab float32", rates[False]),
            ("mothlab float64", rates[True])]
    print(f"\n{'method':<20} {'traj/s':>12} {'× original':>11} {'worst rel. err':>15} "
          f"{'median rel. err':>16}")
    for name, rate in rows:
        e = err[name].max(1)
        print(f"{name:<20} {rate:>12,.0f} {rate / rate_orig:>11.1f} {e.max():>15.2e} "
              f"{np.median(e):>16.2e}")
    e_orig = err["original (odeint)"].max(1)
    print(f"(original: {np.mean(e_orig > 1e-3):.1%} of the checked samples off by > 1e-3, "
          f"{np.mean(e_orig > 1e-2):.1%} by > 1e-2; errors relative to each state variable's range)")
    print(f"\nsummary: mothlab float32 {rates[False]:,.0f} traj/s = "
          f"{rates[False] / rate_orig:.0f}× the original ({rate_orig:,.1f} traj/s, "
          f"{args.workers} processes) on {device}; worst error {err['mothlab float32'].max():.1e} "
          f"(original {err['original (odeint)'].max():.1e})")
    pool.shutdown()
    return 0
