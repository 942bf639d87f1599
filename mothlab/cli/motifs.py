"""``mothlab motifs EXPERIMENT``: motif counts and z-scores of every network at every level.

Results are stored inside the experiment store (group ``motifs/<null>``) and resume level by
level when the command is run again with the same settings. Prints, for each null, the z-scores
at each network's optimally sparse level (median, and the share of networks above/below zero).

Examples::

    mothlab motifs runs/small.zarr                       # exact edge null, no sampling
    mothlab motifs runs/small.zarr --null edges_whole_layer --rule sparsest
    mothlab motifs runs/small.zarr --null live_nodes degrees --n-random 1000
    mothlab motifs runs/small.zarr --figures figs/       # Fig 2 and Fig 3 as PNG
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

# mothlab.analysis costs ~0.07 s on top of numpy (measured: python -c "import numpy, time; ...
# import mothlab.analysis"), so it is imported here; JAX and the figures load only when used.
from mothlab.analysis import (
    MIN_NETWORKS,
    NULL_ALIASES,
    NULLS,
    SELECTION_RULES,
    analyse_experiment,
    motif_summary,
    sparsity_result,
)
from mothlab.progress import tqdm_progress


def register(sub) -> None:
    p = sub.add_parser(
        "motifs",
        help="motif counts and z-scores of an experiment's networks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("experiment", type=Path, metavar="EXPERIMENT", help="experiment store")
    p.add_argument(
        "--null",
        nargs="+",
        default=["edges_live_nodes"],
        choices=list(NULLS) + list(NULL_ALIASES),
        metavar="NULL",
        help="null model(s): "
        + "; ".join(f"{k} = {v}" for k, v in NULLS.items())
        + ". Old name: edges = edges_live_nodes. Default: edges_live_nodes",
    )
    p.add_argument(
        "--n-random",
        type=int,
        default=1000,
        help="random networks per real network for sampled nulls (>= 2; default 1000)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--chains",
        choices=("paths", "pairs"),
        default="paths",
        help="count chains as paths (default) or distinct endpoint pairs (published)",
    )
    p.add_argument(
        "--converging3",
        choices=("exact", "published"),
        default="exact",
        help="3rd-order converging with C(n,3) (default) or C(n,2) (published)",
    )
    p.add_argument(
        "--no-biases",
        action="store_true",
        help="ignore bias nodes (default: unpruned biases are source nodes)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="test-loss threshold of the optimally sparse level (default: the "
        "experiment's own, paper 1e-3)",
    )
    p.add_argument(
        "--rule",
        choices=list(SELECTION_RULES),
        default="paper",
        help="which optimal level the summary reads: "
        + "; ".join(f"{k} = {v}" for k, v in SELECTION_RULES.items())
        + " (default paper)",
    )
    p.add_argument(
        "--min-networks",
        type=int,
        default=MIN_NETWORKS,
        help="fewest networks a summary at the optimal level may rest on "
        f"(default {MIN_NETWORKS}); below it the summary is refused",
    )
    p.add_argument(
        "--figures",
        type=Path,
        metavar="DIR",
        help="also write Fig 2 and Fig 3 PNGs for each null into DIR",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="recompute results stored with other settings"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run, cancellable=True)  # Ctrl-C stops at a chunk boundary


def run(args) -> int:
    if args.n_random < 2:
        raise ValueError(f"--n-random must be >= 2 (got {args.n_random}); 1000 is the papers'")
    sr = sparsity_result(args.experiment, args.threshold)
    exp = sr.experiment
    if sr.levels_done == 0:
        raise ValueError(f"{args.experiment} has no finished level yet; run or resume it first")
    print(sr.optimal_sentence(args.rule))
    from mothlab.cli import cancel_requested

    for null in args.null:
        t0 = time.perf_counter()
        with tqdm_progress(f"motifs ({null})", disable=args.no_progress) as progress:
            res = analyse_experiment(
                exp,
                null=null,
                n_random=args.n_random,
                seed=args.seed,
                chains=args.chains,
                converging3=args.converging3,
                use_biases=not args.no_biases,
                progress=progress,
                overwrite=args.overwrite,
                cancel=cancel_requested,
            )
        elapsed = time.perf_counter() - t0
        print(
            f"\nnull {res.null!r} ({NULLS[res.null]}): {res.n_levels_done} levels x "
            f"{exp.n_networks} networks ({elapsed:.1f} s)"
        )
        try:
            rows = motif_summary(
                exp, null, rule=args.rule, min_networks=args.min_networks, threshold=sr.threshold
            )
        except ValueError as err:
            print(f"  no summary at the optimal level: {err}")
            rows = []
        if rows:
            print(f"  z at {rows[0]['basis']}:")
            print(f"  {'motif':<12} {'n':>5} {'median z':>10} {'z>0':>6} {'z<0':>6}")
        for r in rows:
            n = r["n_defined"]
            med = "undefined" if n == 0 else f"{r['median_z']:+.2f}"
            pos = "" if n == 0 else f"{r['frac_positive']:.0%}"
            neg = "" if n == 0 else f"{r['frac_negative']:.0%}"
            print(f"  {r['motif']:<12} {n:>5} {med:>10} {pos:>6} {neg:>6}")
        if args.figures is not None:
            from mothlab import plots

            args.figures.mkdir(parents=True, exist_ok=True)
            f2 = args.figures / f"motifs_{null}_fig2.png"
            f3 = args.figures / f"motifs_{null}_fig3.png"
            try:  # each network at its optimal level; else the level the app shows first
                fig2 = plots.zscore_distributions(res, None, sparsity_result=sr)
                if not any(len(e) for e in fig2 if e.group == "Motif"):
                    raise ValueError("no network has an analysed optimal level")
            except ValueError:
                done = np.flatnonzero(res.done)
                shown = sr.level_to_show("paper").level
                fig2 = plots.zscore_distributions(res, int(done[np.argmin(abs(done - shown))]))
            for el, f in ((fig2, f2), (plots.zscore_vs_sparsity(res), f3)):
                plots.render(el, "matplotlib").savefig(f, dpi=120, bbox_inches="tight")
            print(f"  figures: {f2}, {f3}")
    return 0
