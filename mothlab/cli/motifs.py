"""``mothlab motifs EXPERIMENT``: motif counts and z-scores of every network at every level.

Results are stored inside the experiment store (group ``motifs/<null>``) and resume level by
level when the command is run again with the same settings. Prints, for each null, the z-scores
at each network's optimally sparse level (median, and the share of networks above/below zero).

Examples::

    mothlab motifs runs/small.zarr                       # exact null (a), no sampling
    mothlab motifs runs/small.zarr --null live_nodes degrees --n-random 1000
    mothlab motifs runs/small.zarr --figures figs/       # Fig 2 and Fig 3 as PNG
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

NULL_CHOICES = ("edges", "live_nodes", "degrees", "as_published")


def register(sub) -> None:
    p = sub.add_parser("motifs", help="motif counts and z-scores of an experiment's networks",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", type=Path, metavar="EXPERIMENT", help="experiment store")
    p.add_argument("--null", nargs="+", default=["edges"], choices=NULL_CHOICES,
                   help="null model(s): edges (per-layer edge counts; exact moments), "
                        "live_nodes (edge counts + live nodes, the papers' null done uniformly), "
                        "degrees (every node's degrees per layer pair), as_published (the "
                        "original ad hoc generator). Default: edges")
    p.add_argument("--n-random", type=int, default=1000,
                   help="random networks per real network for sampled nulls (>= 2; default 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--chains", choices=("paths", "pairs"), default="paths",
                   help="count chains as paths (default) or distinct endpoint pairs (published)")
    p.add_argument("--converging3", choices=("exact", "published"), default="exact",
                   help="3rd-order converging with C(n,3) (default) or C(n,2) (published)")
    p.add_argument("--no-biases", action="store_true",
                   help="ignore bias nodes (default: unpruned biases are source nodes)")
    p.add_argument("--threshold", type=float, default=1e-3,
                   help="test-loss threshold of the optimally sparse level (default 1e-3)")
    p.add_argument("--figures", type=Path, metavar="DIR",
                   help="also write Fig 2 and Fig 3 PNGs for each null into DIR")
    p.add_argument("--overwrite", action="store_true",
                   help="recompute results stored with other settings")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from mothlab.analysis.experiment_motifs import analyse_experiment, optimal_summary
    from mothlab.nets import load_experiment

    if args.n_random < 2:
        raise ValueError(f"--n-random must be >= 2 (got {args.n_random})")
    exp = load_experiment(args.experiment)
    n_levels = min(int(exp.levels_done), len(exp.sparsity_levels))
    if n_levels == 0:
        raise ValueError(f"{args.experiment} has no finished level yet; run or resume it first")
    for null in args.null:
        bar = None if args.no_progress else tqdm(
            total=n_levels * exp.n_networks, unit="net", desc=f"motifs ({null})", file=sys.stderr)

        def progress(ev, bar=bar):
            if bar is not None:
                bar.n = ev["level"] * ev["n_networks"] + ev["network"]
                bar.set_postfix_str(f"sparsity {ev['sparsity']:.0%}", refresh=False)
                bar.refresh()

        t0 = time.perf_counter()
        try:
            res = analyse_experiment(exp, null=null, n_random=args.n_random, seed=args.seed,
                                     chains=args.chains, converging3=args.converging3,
                                     use_biases=not args.no_biases, progress=progress,
                                     overwrite=args.overwrite)
        finally:
            if bar is not None:
                bar.close()
        elapsed = time.perf_counter() - t0
        rows = optimal_summary(exp, res, threshold=args.threshold)
        print(f"\nnull {null!r}: {res.n_levels_done} levels x {exp.n_networks} networks "
              f"({elapsed:.1f} s); z at {rows[0]['basis']}:")
        print(f"  {'motif':<12} {'n':>5} {'median z':>10} {'z>0':>6} {'z<0':>6}")
        for r in rows:
            med = "undefined" if r["n"] == 0 else f"{r['median_z']:+.2f}"
            pos = "" if r["n"] == 0 else f"{r['frac_positive']:.0%}"
            neg = "" if r["n"] == 0 else f"{r['frac_negative']:.0%}"
            print(f"  {r['motif']:<12} {r['n']:>5} {med:>10} {pos:>6} {neg:>6}")
        if args.figures is not None:
            from mothlab.figures.motifs import zscore_distributions, zscore_vs_sparsity

            args.figures.mkdir(parents=True, exist_ok=True)
            f2 = args.figures / f"motifs_{null}_fig2.png"
            f3 = args.figures / f"motifs_{null}_fig3.png"
            zscore_distributions(res, "optimal", experiment=exp,
                                 threshold=args.threshold).savefig(f2, dpi=120)
            zscore_vs_sparsity(res, experiment=exp).savefig(f3, dpi=120)
            print(f"  figures: {f2}, {f3}")
    return 0
