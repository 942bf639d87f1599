"""``mothlab train``: train and prune an ensemble through a sparsity schedule (resumable).

Examples::

    mothlab train --preset classroom --out runs/classroom.zarr
    mothlab train --preset small --out runs/small.zarr --n-networks 80   # flags override
    mothlab train --config my.json --out runs/mine.zarr
    mothlab train --preset small --out runs/small.zarr                   # again: resumes
"""

from __future__ import annotations

import json

_FLAGS = {  # flag -> (config field, type, or the name of a parser in mothlab.nets.config)
    "--widths": ("widths", "parse_widths"),
    "--activation": ("activation", str),
    "--n-networks": ("n_networks", int),
    "--seed": ("seed", int),
    "--dataset": ("dataset", str),
    "--n-samples": ("n_samples", int),
    "--schedule": ("schedule", "parse_schedule"),
    "--pruning": ("pruning", str),
    "--bias-pruning": ("bias_pruning", str),
    "--optimizer": ("optimizer", str),
    "--learning-rate": ("learning_rate", float),
    "--batch-size": ("batch_size", int),
    "--threshold": ("threshold", float),
    "--max-steps": ("max_steps_per_level", int),
}


def register(sub) -> None:
    p = sub.add_parser("train", help="train and prune networks (a Monte Carlo experiment)",
                       description=__doc__, formatter_class=__import__("argparse")
                       .RawDescriptionHelpFormatter)
    p.add_argument("--preset", default=None,
                   help="paper, tensorflow, small, classroom or tiny (default: classroom)")
    p.add_argument("--config", default=None, help="JSON file of ExperimentConfig fields")
    p.add_argument("--out", required=True, help="experiment store to write (e.g. run.zarr)")
    for flag, (field, _) in _FLAGS.items():
        p.add_argument(flag, dest=field, default=None, help=f"override config.{field}")
    p.add_argument("--as-published", action="store_true",
                   help="reproduce the original code's defects 1-6 (comparison only)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def build_config(args):
    from mothlab.nets import ExperimentConfig
    from mothlab.nets import config as config_module

    fields = {}
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            fields.update(json.load(f))
    for _flag, (field, conv) in _FLAGS.items():
        v = getattr(args, field, None)
        if v is not None:
            if isinstance(conv, str):  # a parser of mothlab.nets.config, with its own message
                fields[field] = getattr(config_module, conv)(v)
                continue
            try:
                fields[field] = conv(v)
            except ValueError:
                raise ValueError(f"{_flag} {v!r} is not valid ({field}).") from None
    if args.as_published:
        fields["as_published"] = True
    name = args.preset or ("classroom" if not args.config else None)
    cfg = ExperimentConfig.preset(name, **fields) if name else ExperimentConfig(**fields)
    return cfg.validate()


def run(args) -> int:
    from tqdm import tqdm

    from mothlab.nets import run_experiment

    cfg = build_config(args)
    bar = None

    def progress(ev):
        nonlocal bar
        if args.quiet:
            return
        if ev["level"] < 0:
            print(ev["message"], flush=True)
            return
        if bar is None:
            bar = tqdm(total=ev["n_levels"], unit="level", dynamic_ncols=True)
            bar.n = ev["level"]
        if ev["level"] > bar.n:
            bar.update(ev["level"] - bar.n)
        import numpy as np
        med = float(np.nanmedian(ev["losses"])) if np.isfinite(ev["losses"]).any() else float("nan")
        bar.set_description(f"sparsity {100 * ev['sparsity']:.0f}%")
        bar.set_postfix_str(f"step {ev['step']} median val {med:.2e} "
                            f"stopped {int(ev['stopped'].sum())}/{len(ev['stopped'])} "
                            f"{ev['throughput']:.0f} net-steps/s ETA {ev['eta_s'] / 60:.1f} min")

    exp = run_experiment(cfg, args.out, progress=progress, overwrite=args.overwrite)
    if bar is not None:
        bar.update(bar.total - bar.n)
        bar.close()
    from mothlab.report import summary
    s = summary(exp)
    print(f"{exp}\n" + "\n".join(f"  {k}: {v}" for k, v in s.items()))
    print(f"report: mothlab report {args.out}")
    return 0
