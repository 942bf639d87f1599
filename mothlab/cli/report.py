"""``mothlab report EXPERIMENT [--out DIR]``: figures (PNG) and tables (HTML) of an experiment."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("report", help="figures and tables of a train-and-prune experiment",
                       description=__doc__)
    p.add_argument("experiment", help="experiment store (from mothlab train)")
    p.add_argument("--out", default=None, help="output folder (default: <experiment>-report)")
    p.add_argument("--threshold", type=float, default=None,
                   help="loss threshold (default: the experiment's, paper 1e-3)")
    p.set_defaults(func=run)


def run(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from mothlab.report import build_report

    index = build_report(args.experiment, args.out, threshold=args.threshold)
    print(f"report written: {index}")
    return 0
