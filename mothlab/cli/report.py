"""``mothlab report EXPERIMENT [--out DIR] [--threshold T] [--rule R]``: figures (PNG) and tables
(HTML) of an experiment, from the analysis API and the same plot definitions as the app.

Example: ``mothlab report runs/small.zarr --out report/ --rule sparsest``
"""

from __future__ import annotations

from mothlab.analysis import SELECTION_RULES


def register(sub) -> None:
    p = sub.add_parser(
        "report", help="figures and tables of a train-and-prune experiment", description=__doc__
    )
    p.add_argument("experiment", help="experiment store (from mothlab train)")
    p.add_argument("--out", default=None, help="output folder (default: <experiment>-report)")
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="loss threshold (default: the experiment's own; the paper's is 1e-3)",
    )
    p.add_argument(
        "--rule",
        choices=list(SELECTION_RULES),
        default="paper",
        help="selection rule for the figures at the optimal level (the tables give "
        "both): " + "; ".join(f"{k}: {v}" for k, v in SELECTION_RULES.items()),
    )
    p.set_defaults(func=run)


def run(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from mothlab.report import build_report

    index = build_report(args.experiment, args.out, threshold=args.threshold, rule=args.rule)
    print(f"report written: {index}")
    return 0
