"""``mothlab compare``: sparse from the start (static, SET, RigL, motif, anti-motif) versus
train-then-prune, at equal numbers of remaining weights, on the moth inverse problem and on
scikit-learn's digits. Writes a CSV (one row per network) and figures; resumes from the CSV.

Examples::

    mothlab compare --out out/compare                       # both tasks, density 0.1, 16 nets
    mothlab compare --out out/compare --tasks digits --densities 0.1,0.25 --steps 2000
    mothlab compare --out out/compare --figures out/report      # report elsewhere
    mothlab report out/compare                              # the report again, from the CSV
"""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="compare sparse training methods at equal size (study)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, help="folder for compare.csv (and the moth dataset)")
    p.add_argument("--tasks", default="moth,digits", help="comma list of moth, digits")
    p.add_argument(
        "--methods",
        default=None,
        help="comma list (default: prune,static,set,rigl,motif,anti-motif,motif-set,motif-rigl)",
    )
    p.add_argument(
        "--densities",
        default="0.1",
        help="comma list of densities (fraction of weights kept), e.g. 0.1,0.25",
    )
    p.add_argument("--n-networks", type=int, default=16, help="networks per method (default 16)")
    p.add_argument("--steps", type=int, default=2000, help="training batches per network")
    p.add_argument("--update-every", type=int, default=250, help="steps between SET/RigL updates")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", default=None, help="moth dataset store (default: generate one)")
    p.add_argument(
        "--n-samples",
        type=int,
        default=None,
        help="flights to generate for the moth task (default 30000)",
    )
    p.add_argument(
        "--figures",
        default=None,
        help="folder for the report and sparse_*.png (default: <out>/report; the same as "
        "`mothlab report <out>`)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _floats(text: str, what: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--{what} must be numbers separated by commas, got {text!r}.") from None
    for v in vals:
        if not 0 < v <= 1:
            raise ValueError(
                f"--{what}: {v} is outside (0, 1]; densities are fractions of "
                "weights kept, e.g. 0.1."
            )
    return vals


def run(args) -> int:
    from pathlib import Path

    from mothlab.analysis import sparse_study as SS
    from mothlab.progress import tqdm_progress

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    for t in tasks:
        if t not in SS.TASKS:
            raise ValueError(f"--tasks: unknown task {t!r}; choose from {', '.join(SS.TASKS)}.")
    allowed = SS.study_methods()
    methods = allowed if not args.methods else [m.strip() for m in args.methods.split(",")]
    for m in methods:
        if m not in allowed:
            raise ValueError(f"--methods: unknown method {m!r}; choose from {', '.join(allowed)}.")
    if args.n_networks < 2:
        raise ValueError(f"--n-networks must be >= 2 (distributions), got {args.n_networks}.")
    if args.steps < args.update_every or args.update_every < 1:
        raise ValueError(
            f"--steps ({args.steps}) must be >= --update-every ({args.update_every}) >= 1."
        )
    dens = _floats(args.densities, "densities")
    out = Path(args.out)
    csv_path = out / "compare.csv"
    with tqdm_progress("compare", disable=args.quiet) as progress:
        rows = SS.compare(
            csv_path,
            tasks=tasks,
            methods=methods,
            densities=dens,
            n_networks=args.n_networks,
            steps=args.steps,
            update_every=args.update_every,
            seed=args.seed,
            dataset=args.dataset,
            n_samples=args.n_samples,
            progress=progress,
        )
    summ = SS.summary(rows)
    print(
        f"{'task':<7} {'density':>7} {'method':<11} {'weights':>7} {'median loss':>12} "
        f"{'accuracy':>9} {'GFLOPs':>8} {'z div2':>7} {'z bipar':>8}"
    )
    for r in summ:
        acc = "" if r["median_accuracy"] is None else f"{r['median_accuracy']:.3f}"
        print(
            f"{r['task']:<7} {r['density']:>7g} {r['method']:<11} {r['weights']:>7} "
            f"{r['median_loss']:>12.3e} {acc:>9} {r['median_gflops']:>8.2f} "
            f"{r['median_z_diverging2']:>7.1f} {r['median_z_biparallel']:>8.1f}"
        )
    import matplotlib

    matplotlib.use("Agg")
    from mothlab.report import build_compare_report

    fig_dir = Path(args.figures) if args.figures else out / "report"
    index = build_compare_report(csv_path, fig_dir)
    print(
        f"csv: {csv_path}\nreport: {index} (figures sparse_loss.png, sparse_flops.png, "
        "sparse_zscores.png beside it)"
    )
    return 0
