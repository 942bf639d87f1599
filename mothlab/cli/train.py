"""mothlab train: train and prune an ensemble through a sparsity schedule (resumable).

Examples:

    mothlab train --preset classroom --out runs/classroom.zarr
    mothlab train --preset small --out runs/small.zarr --n-networks 80   # flags override
    mothlab train --config my.json --out runs/mine.zarr
    mothlab train --preset small --out runs/small.zarr                   # again: resumes

Every field of mothlab.nets.ExperimentConfig is a flag (lr_schedule becomes --lr-schedule),
generated from the field's declaration: its type, bounds, choices and doc. A config file is a
JSON object of the same fields. Precedence: preset, then config file, then flags.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import param

from mothlab.nets import ExperimentConfig
from mothlab.nets.config import PRESETS, parse_schedule, parse_widths
from mothlab.runtime import use_all_cores

#: Older flag spellings kept working: alias -> config field.
_ALIASES = {"--max-steps": "max_steps_per_level"}

#: Fields whose flag parses text with a parser of mothlab.nets.config.
_PARSERS = {"widths": parse_widths, "schedule": parse_schedule}


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def _bounds_text(p) -> str:
    lo, hi = p.bounds or (None, None)
    inc = getattr(p, "inclusive_bounds", (True, True))
    parts = []
    if lo is not None:
        parts.append(f"{'at least' if inc[0] else 'more than'} {lo:g}")
    if hi is not None:
        parts.append(f"{'at most' if inc[1] else 'less than'} {hi:g}")
    return " and ".join(parts)


def _in_bounds(p, v) -> bool:
    lo, hi = p.bounds or (None, None)
    inc = getattr(p, "inclusive_bounds", (True, True))
    if lo is not None and (v < lo or (v == lo and not inc[0])):
        return False
    return not (hi is not None and (v > hi or (v == hi and not inc[1])))


def _converter(field: str, p):
    """An argparse ``type`` for the config field: strict, with a message naming the field."""
    none_ok = p.allow_None

    def conv(text: str):
        t = text.strip()
        if none_ok and t.lower() == "none":
            return None
        if field in _PARSERS:
            try:
                return _PARSERS[field](t)
            except ValueError as err:
                raise argparse.ArgumentTypeError(str(err)) from None
        if isinstance(p, param.Integer):
            try:
                v = int(t)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"{field} must be a whole number ({_bounds_text(p) or 'any'}), got {text!r}"
                ) from None
        elif isinstance(p, param.Number):
            try:
                v = float(t)
            except ValueError:
                v = math.nan
            if not math.isfinite(v):
                raise argparse.ArgumentTypeError(
                    f"{field} must be a finite number ({_bounds_text(p) or 'any'}), got {text!r}"
                )
        else:
            return t
        if not _in_bounds(p, v):
            raise argparse.ArgumentTypeError(f"{field} must be {_bounds_text(p)}, got {text!r}")
        return v

    conv.__name__ = field  # argparse names the type in some messages
    return conv


def _help(p) -> str:
    doc = " ".join((p.doc or "").split())
    extra = []
    if isinstance(p, param.Number) and not isinstance(p, param.Boolean) and _bounds_text(p):
        extra.append(_bounds_text(p))
    if p.allow_None and not isinstance(p, param.Boolean):
        extra.append("'none' allowed")
    return (doc + (f" ({'; '.join(extra)})" if extra else "")).replace("%", "%%")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per ExperimentConfig field, from its declaration (default: from preset/file)."""
    group = parser.add_argument_group("experiment configuration (overrides the preset)")
    for field, p in ExperimentConfig.param.objects("existing").items():
        if field == "name":
            continue
        flags = [_flag(field)] + [a for a, f in _ALIASES.items() if f == field]
        if isinstance(p, param.Boolean):
            group.add_argument(*flags, dest=field, action="store_true", default=None, help=_help(p))
        elif isinstance(p, param.Selector):
            group.add_argument(
                *flags, dest=field, default=None, choices=list(p.objects), help=_help(p)
            )
        else:
            metavar = {"widths": "W1,W2,...", "schedule": "S1,S2,..."}.get(field, field.upper())
            group.add_argument(
                *flags,
                dest=field,
                default=None,
                type=_converter(field, p),
                metavar=metavar,
                help=_help(p),
            )


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train and prune networks (a Monte Carlo experiment)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--preset",
        default=None,
        choices=sorted(PRESETS),
        help="a named configuration (default: classroom, unless --config is given)",
    )
    p.add_argument(
        "--config", default=None, type=Path, help="JSON file: an object of ExperimentConfig fields"
    )
    p.add_argument("--out", required=True, help="experiment store to write (e.g. run.zarr)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_flags(p)
    p.set_defaults(func=run, cancellable=True)  # Ctrl-C stops at a chunk boundary (mothlab.cli)


def read_config_file(path) -> dict:
    """The fields of a JSON config file; ValueError (one line) when it is not a JSON object of
    known ExperimentConfig fields."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise ValueError(f"config file {path} is a directory; give a JSON file.") from None
    except UnicodeDecodeError:
        raise ValueError(f"config file {path} is not UTF-8 text; give a JSON file.") from None
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"config file {path} is not valid JSON ({err.msg} at line {err.lineno}"
            f", column {err.colno})."
        ) from None
    if not isinstance(fields, dict):
        raise ValueError(
            f"config file {path} must hold a JSON object of config fields "
            f'(e.g. {{"n_networks": 12}}), got a {type(fields).__name__}.'
        )
    known = set(ExperimentConfig.param) - {"name"}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(
            f"config file {path} has unknown fields {unknown}; allowed: {', '.join(sorted(known))}."
        )
    return fields


def build_config(args) -> ExperimentConfig:
    fields = {}
    if args.config:
        fields.update(read_config_file(args.config))
    for field in ExperimentConfig.param:
        v = getattr(args, field, None) if field != "name" else None
        if v is not None:
            fields[field] = v
    name = args.preset or ("classroom" if not args.config else None)
    try:
        cfg = ExperimentConfig.preset(name, **fields) if name else ExperimentConfig(**fields)
    except (TypeError, ValueError) as err:  # param's own type/bounds check on file values
        raise ValueError(f"invalid configuration: {' '.join(str(err).split())}") from None
    return cfg.validate()


def run(args) -> int:
    use_all_cores()  # before JAX is imported
    from mothlab.cli import cancel_requested
    from mothlab.nets import run_experiment
    from mothlab.progress import tqdm_progress

    cfg = build_config(args)
    if cfg.method in ("motif", "anti-motif"):
        import mothlab.analysis.topology  # noqa: F401  (provides the motif-guided masks)
    with tqdm_progress("train", disable=args.quiet) as progress:
        exp = run_experiment(
            cfg, args.out, progress=progress, overwrite=args.overwrite, cancel=cancel_requested
        )
    from mothlab.report import summary

    s = summary(exp)
    print(f"{exp}\n" + "\n".join(f"  {k}: {v}" for k, v in s.items()))
    capped = exp.capped.sum(axis=1)
    if capped.any():
        print(
            "  networks that stopped at the step cap (not by their stop rule), per level: "
            + ", ".join(f"{100 * lv:.0f}%: {c}" for lv, c in zip(exp.sparsity_levels, capped) if c)
        )
        pruned = capped[1:]
        if pruned.size and (pruned * 2 > exp.n_networks).any():
            n_bind = int((pruned * 2 > exp.n_networks).sum())
            print(
                f"  the caps bind: {n_bind} of {pruned.size} pruned levels ended at the cap for "
                "most networks (their stop rule, which fires only once the loss is flat, had not "
                "fired). The caps are then the retraining budget: a larger "
                "--max-steps-per-level can move the optimal levels to higher sparsities "
                "(measured for the classroom preset: README 'Results on this machine')."
            )
    else:
        print("  no network hit a step cap")
    print(f"report: mothlab report {args.out}")
    return 0
