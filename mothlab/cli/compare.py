"""``mothlab compare``: sparse from the start (static, SET, RigL, motif, anti-motif) versus
train-then-prune, at equal numbers of remaining weights, on the moth inverse problem and on
scikit-learn's digits. Writes a CSV (one row per network) and figures; resumes from the CSV.

Examples::

    mothlab compare --out out/compare                       # both tasks, density 0.1, 16 nets
    mothlab compare --out out/compare --tasks digits --densities 0.1,0.25 --steps 2000
    mothlab compare --out out/compare --figures assets/figures   # README figures
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
        help="comma list (default: prune,static,set,rigl,motif,anti-motif)",
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
        "--figures", default=None, help="folder for sparse_*.png (default: <out>/figures)"
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
    from mothlab.nets.sparse import METHODS
    from mothlab.progress import tqdm_progress

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    for t in tasks:
        if t not in SS.TASKS:
            raise ValueError(f"--tasks: unknown task {t!r}; choose from {', '.join(SS.TASKS)}.")
    methods = METHODS if not args.methods else [m.strip() for m in args.methods.split(",")]
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"--methods: unknown method {m!r}; choose from {', '.join(METHODS)}.")
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
    fig_dir = Path(args.figures) if args.figures else out / "figures"
    paths = figures(rows, fig_dir)
    print(f"csv: {csv_path}\nfigures: " + ", ".join(str(p) for p in paths))
    return 0


def figures(rows, folder) -> list:
    """Write sparse_loss.png, sparse_flops.png and sparse_zscores.png to ``folder``."""
    from pathlib import Path

    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from mothlab.analysis.sparse_study import summary
    from mothlab.analysis.topology import MATCHED
    from mothlab.nets.sparse import METHODS
    from mothlab.plots import PALETTE

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    colour = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(METHODS)}
    keys = sorted({(r["task"], float(r["density"])) for r in rows})
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    paths = []

    # 1. test loss (and accuracy) distributions per method
    n_rows = 1 + any(r["test_accuracy"] not in ("", None) for r in rows)
    fig, axes = plt.subplots(
        n_rows, len(keys), figsize=(4.2 * len(keys), 3.4 * n_rows), squeeze=False
    )
    for j, (task, dens) in enumerate(keys):
        for row, (field, label, logy) in enumerate(
            (("test_loss", "test loss", True), ("test_accuracy", "test accuracy", False))[:n_rows]
        ):
            ax = axes[row][j]
            if field == "test_accuracy" and not any(
                r["task"] == task and r[field] not in ("", None) for r in rows
            ):
                ax.axis("off")
                ax.text(
                    0.5,
                    0.5,
                    f"{task}: a regression task\n(no accuracy)",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    color="grey",
                )
                continue
            for i, m in enumerate(methods):
                v = np.array(
                    [
                        float(r[field])
                        for r in rows
                        if r["task"] == task
                        and float(r["density"]) == dens
                        and r["method"] == m
                        and r[field] not in ("", None)
                    ]
                )
                if not len(v):
                    continue
                x = i + np.random.default_rng(i).uniform(-0.18, 0.18, len(v))
                ax.scatter(x, v, s=12, color=colour[m], alpha=0.75)
                ax.hlines(np.median(v), i - 0.3, i + 0.3, color="black", lw=1.5)
            ax.set_xticks(range(len(methods)), methods, rotation=35, ha="right")
            if logy:
                ax.set_yscale("log")
            ax.set_ylabel(label)
            ax.set_title(f"{task}, density {dens:g} (dots: networks, bar: median)", fontsize=9)
    fig.tight_layout()
    paths.append(folder / "sparse_loss.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    # 2. test loss versus training FLOPs (median and quartiles)
    summ = summary(rows)
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
    for j, (task, dens) in enumerate(keys):
        ax = axes[0][j]
        for s in summ:
            if s["task"] == task and s["density"] == dens:
                m = s["method"]
                ax.errorbar(
                    s["median_gflops"],
                    s["median_loss"],
                    yerr=[[s["median_loss"] - s["q25_loss"]], [s["q75_loss"] - s["median_loss"]]],
                    fmt="o",
                    color=colour[m],
                    label=m,
                    capsize=3,
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("training GFLOPs per network (sparse arithmetic)")
        ax.set_ylabel("test loss (median, IQR)")
        ax.set_title(f"{task}, density {dens:g}", fontsize=9)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    paths.append(folder / "sparse_flops.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    # 3. motif z-scores each method ends with (median over networks)
    from mothlab.analysis.motifs import MOTIF_LABELS

    fig, axes = plt.subplots(1, len(keys), figsize=(4.6 * len(keys), 3.6), squeeze=False)
    for j, (task, dens) in enumerate(keys):
        ax = axes[0][j]
        for s in summ:
            if s["task"] == task and s["density"] == dens:
                ax.plot(
                    range(len(MATCHED)),
                    [s[f"median_z_{k}"] for k in MATCHED],
                    "o-",
                    color=colour[s["method"]],
                    label=s["method"],
                    ms=4,
                )
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(
            range(len(MATCHED)),
            [MOTIF_LABELS[k] for k in MATCHED],
            rotation=40,
            ha="right",
            fontsize=8,
        )
        ax.set_ylabel("median z-score (null: edges)")
        ax.set_title(f"final masks: {task}, density {dens:g}", fontsize=9)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    paths.append(folder / "sparse_zscores.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths
