"""``mothlab dataset``: generate a dataset of S3 flights into a zarr store, with a progress bar.

An interrupted run (Ctrl-C, crash) leaves a store that resumes automatically when the same
command is run again; the result is identical to an uninterrupted run.

Example::

    mothlab dataset --n 100000 --seed 0 --out train.zarr
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mothlab import store
from mothlab.progress import tqdm_progress

# mothlab.data imports the flight model and JAX: 2.6 s at load 13 (measured with
# `python -c "import time; t = time.perf_counter(); import mothlab.data; ..."`), so it loads in
# run() and `mothlab --help` stays instant.


def register(sub) -> None:
    p = sub.add_parser(
        "dataset",
        help="generate a dataset of simulated flights (zarr store)",
        description=__doc__.replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--n", type=int, required=True, help="number of trajectories (>= 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (>= 0; default 0)")
    p.add_argument(
        "--out", type=Path, required=True, metavar="PATH", help="store directory, e.g. train.zarr"
    )
    p.add_argument("--precise", action="store_true", help="simulate in float64")
    p.add_argument(
        "--chunk",
        type=int,
        default=65536,
        help="trajectories per chunk: the unit of storage and resumption (the flights "
        "are the same with any chunk; a resume needs the same one)",
    )
    p.add_argument(
        "--moth-preset",
        default="manduca",
        metavar="NAME",
        help="body: manduca (the published S1 set) or scaled (s = 1.3)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing store at --out instead of resuming it",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run, cancellable=True)  # Ctrl-C stops at a chunk boundary


def _done_before(path: Path) -> tuple[int, bool]:
    """Trajectories already in an existing store and whether it is complete ((0, False) if there
    is none or it cannot be read: generate_dataset then reports the problem)."""
    try:
        group, header = store.open_store(path, "dataset", mode="r")
        return int(header.get("n_done", 0)), store.is_complete(group)
    except (FileNotFoundError, ValueError, TypeError):
        return 0, False


def run(args) -> int:
    from mothlab.cli import cancel_requested
    from mothlab.data import generate_dataset
    from mothlab.data.sampling import check_count
    from mothlab.moth import MothParams

    check_count(args.n)  # refuse before drawing a progress bar
    params = MothParams.preset(args.moth_preset)
    before, complete = (0, False) if args.overwrite else _done_before(args.out)
    if before and not complete:
        print(
            f"resuming {args.out}: {before} of {args.n} trajectories already stored",
            file=sys.stderr,
        )
    t0 = time.perf_counter()
    with tqdm_progress("simulating", disable=args.no_progress or complete) as progress:
        ds = generate_dataset(
            args.out,
            args.n,
            seed=args.seed,
            params=params,
            precise=args.precise,
            chunk=args.chunk,
            progress=progress,
            resume=True,
            overwrite=args.overwrite,
            cancel=cancel_requested,
        )
    elapsed = time.perf_counter() - t0
    new = 0 if complete else args.n - before
    kind = "float64" if args.precise else "float32"
    if new == 0:
        print(
            f"{ds.path}: already complete ({ds.n} trajectories, seed {args.seed}, {kind}); "
            "nothing to do."
        )
    else:
        steady = ds.header["timings"].get("steady_trajectories_per_s")
        after = (
            (
                f"; {steady:,.0f} trajectories/s after the first chunk (which includes JIT "
                "compilation)"
            )
            if steady
            else ""
        )
        print(
            f"{ds.path}: {ds.n} trajectories (seed {args.seed}, {kind}); {new} simulated in "
            f"{elapsed:.2f} s, {new / elapsed:,.0f} trajectories/s{after}."
        )
    return 0
