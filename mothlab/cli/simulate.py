"""``mothlab simulate``: fly the hawkmoth model from the command line.

One flight from flags, or a batch from a CSV file whose columns are named like the state and
control (x, xd, y, yd, theta, thetad, phi, phid, F, alpha, tau; x and y may be left out and
default to 0). Writes every output time of every flight as CSV (one row per flight and time) or
JSON, to a file or to stdout.

Examples::

    mothlab simulate --xd 100 --theta 0.8 --phi 3.9 --F 3000 --alpha 1.2
    mothlab simulate --csv flights.csv --t-end 0.1 --n-times 11 --out result.json
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from pathlib import Path

# name, flag default, help (units); order = STATE_NAMES + CONTROL_NAMES of mothlab.moth
_INPUTS = (
    ("x", 0.0, "initial horizontal position x₀ (cm)"),
    ("xd", 0.0, "initial horizontal velocity ẋ₀ (cm/s)"),
    ("y", 0.0, "initial vertical position y₀ (cm)"),
    ("yd", 0.0, "initial vertical velocity ẏ₀ (cm/s)"),
    ("theta", 0.0, "initial head-thorax angle θ₀ (rad, from +x, counter-clockwise)"),
    ("thetad", 0.0, "initial head-thorax angular velocity θ̇₀ (rad/s)"),
    ("phi", math.pi, "initial abdomen angle φ₀ (rad); θ₀ + π is a straight body"),
    ("phid", 0.0, "initial abdomen angular velocity φ̇₀ (rad/s)"),
    ("F", 0.0, "wing force F (dyn, >= 0; hovering needs about 2586)"),
    ("alpha", 0.0, "wing force angle α relative to the body axis (rad)"),
    ("tau", 0.0, "abdominal torque τ (dyn·cm)"),
)
_OPTIONAL_CSV = {"x", "y"}


def register(sub) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulate one flight from flags, or a batch from CSV",
        description=__doc__.replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("one flight (ignored names keep their defaults)")
    for name, default, text in _INPUTS:
        g.add_argument(f"--{name}", type=float, default=None, help=f"{text}; default {default:g}")
    p.add_argument(
        "--csv",
        type=Path,
        default=None,
        metavar="FILE",
        help="simulate every row of this CSV instead (columns: "
        + ", ".join(n for n, _, _ in _INPUTS)
        + "; x, y optional)",
    )
    p.add_argument(
        "--moth-preset",
        default="manduca",
        metavar="NAME",
        help="body: manduca (the published S1 set) or scaled (s = 1.3)",
    )
    p.add_argument("--s", type=float, default=None, help="length scale s (overrides the preset's)")
    p.add_argument("--t-end", type=float, default=0.02, help="flight duration in s (default 0.02)")
    p.add_argument(
        "--n-times",
        type=int,
        default=2,
        help="number of output times from 0 to --t-end (default 2: start and end)",
    )
    p.add_argument("--precise", action="store_true", help="compute in float64")
    p.add_argument(
        "--out", type=Path, default=None, metavar="FILE", help="write here (default: stdout)"
    )
    p.add_argument(
        "--format",
        choices=("csv", "json"),
        default=None,
        help="output format (default: from --out's extension, else csv)",
    )
    p.set_defaults(func=run)


#: Largest magnitude an input may have: beyond it float32 (the default precision) overflows and
#: the flight would come back as inf/NaN. The integrator refuses what it cannot integrate
#: accurately well below this; this bound only keeps unrepresentable numbers out.
MAX_ABS_INPUT = 1e30
#: Output size limits: one output row per flight and time, held in memory and written as text.
MAX_TIMES = 100_000
MAX_VALUES = 20_000_000  # flights x times x 8 states (about 160 MB as float64, far more as text)


def _number(text, where: str, precise: bool = True) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {text!r} is not a number.") from None
    if not math.isfinite(v):
        raise ValueError(f"{where}: {text!r} is not finite; give a finite number.")
    if abs(v) > MAX_ABS_INPUT:
        raise ValueError(
            f"{where}: {text!r} is outside the range mothlab simulates "
            f"(|value| <= {MAX_ABS_INPUT:g}); give a physical value in the units "
            "of the column's help (mothlab simulate --help)."
        )
    return v


def _read_csv(path: Path):
    import numpy as np

    from mothlab.moth import CONTROL_NAMES, STATE_NAMES

    if path.is_dir():
        raise ValueError(f"CSV file {path} is a directory; give the path of a .csv file.")
    if not path.is_file():
        raise FileNotFoundError(f"CSV file {path} does not exist.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # tolerate the BOM Excel writes
            table = list(csv.reader(f))
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{path} is not a UTF-8 text CSV file (byte {err.start}: "
            f"{err.reason}); save it as CSV (UTF-8)."
        ) from None
    except csv.Error as err:
        raise ValueError(f"{path} is not a readable CSV file ({err}).") from None
    table = [r for r in table if any(c.strip() for c in r)]  # blank lines carry no flight
    columns = [c.strip() for c in table[0]] if table else []
    rows = table[1:]
    allowed = [*STATE_NAMES, *CONTROL_NAMES]
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        raise ValueError(
            f"{path}: unknown column(s) {', '.join(c or '(empty)' for c in unknown)}; "
            f"allowed columns: {', '.join(allowed)}."
        )
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise ValueError(
            f"{path}: column(s) {', '.join(twice)} appear more than once in the "
            "header; keep one of each."
        )
    missing = [c for c in allowed if c not in columns and c not in _OPTIONAL_CSV]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {', '.join(missing)}; only x and y may be "
            "left out (they default to 0)."
        )
    if not rows:
        raise ValueError(f"{path} has a header but no rows; add one row per flight.")
    data = np.zeros((len(rows), len(allowed)))
    for i, row in enumerate(rows):
        if len(row) != len(columns):
            more = "more" if len(row) > len(columns) else "fewer"
            raise ValueError(
                f"{path}, row {i + 1}: {len(row)} values but the header has "
                f"{len(columns)} columns ({more} values than columns); give one "
                "value per column."
            )
        for name, text in zip(columns, row):
            data[i, allowed.index(name)] = _number(
                text.strip(), f"{path}, row {i + 1}, column {name}"
            )
    return data[:, :8], data[:, 8:]


def _from_flags(args):
    import numpy as np

    values = []
    for name, default, _ in _INPUTS:
        v = getattr(args, name)
        if v is None:
            values.append(default)
            continue
        if not math.isfinite(v):
            raise ValueError(f"--{name} must be a finite number; got {v}.")
        values.append(_number(v, f"--{name}"))
    arr = np.array(values)[None]
    return arr[:, :8], arr[:, 8:]


def _params(args):
    from mothlab.moth import MothParams

    params = MothParams.preset(args.moth_preset)
    if args.s is not None:
        if not (math.isfinite(args.s) and args.s > 0):
            raise ValueError(f"--s must be a positive length scale (e.g. 1.3); got {args.s}.")
        params = MothParams(**{**params.to_dict(), "s": args.s})
    return params


def _times(args):
    import numpy as np

    if not (math.isfinite(args.t_end) and args.t_end > 0):
        raise ValueError(f"--t-end must be a positive duration in s (e.g. 0.02); got {args.t_end}.")
    if not 2 <= args.n_times <= MAX_TIMES:
        raise ValueError(
            f"--n-times must be at least 2 (start and end) and at most "
            f"{MAX_TIMES:,}; got {args.n_times}."
        )
    return np.linspace(0.0, args.t_end, args.n_times)


def _check_finite(traj, t, args) -> None:
    """Never a silent NaN: name the first flight whose states left the finite numbers."""
    import numpy as np

    bad = ~np.isfinite(np.asarray(traj)).all(axis=(1, 2))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        k = int(np.flatnonzero(~np.isfinite(np.asarray(traj[i])).all(axis=1))[0])
        where = f"row {i + 1} of {args.csv}" if args.csv is not None else "the flight"
        raise ValueError(
            f"{int(bad.sum())} of {len(bad)} flight(s) came back with NaN or "
            f"infinite states (first: {where}, from t = {float(t[k]):g} s); its "
            "inputs are outside what the model integrates accurately (use smaller "
            "forces, torques, rates or a shorter --t-end)."
        )


def write_csv(f, t, state0, controls, traj) -> None:
    from mothlab.moth import CONTROL_NAMES, STATE_NAMES

    w = csv.writer(f, lineterminator="\n")
    w.writerow(["trajectory", "t", *STATE_NAMES, *CONTROL_NAMES])
    for i in range(traj.shape[0]):
        for k, tk in enumerate(t):
            w.writerow(
                [
                    i,
                    repr(float(tk)),
                    *(repr(float(v)) for v in traj[i, k]),
                    *(repr(float(v)) for v in controls[i]),
                ]
            )


def to_json(t, state0, controls, traj, params, precise) -> dict:
    from mothlab import __version__
    from mothlab.moth import CONTROL_NAMES, STATE_NAMES, STATE_UNITS

    return {
        "mothlab_version": __version__,
        "params": params.to_dict(),
        "precise": bool(precise),
        "state_names": list(STATE_NAMES),
        "state_units": list(STATE_UNITS),
        "control_names": list(CONTROL_NAMES),
        "t": [float(v) for v in t],
        "trajectories": [
            {
                "state0": dict(zip(STATE_NAMES, map(float, state0[i]))),
                "controls": dict(zip(CONTROL_NAMES, map(float, controls[i]))),
                "states": traj[i].astype(float).tolist(),
            }
            for i in range(traj.shape[0])
        ],
    }


def run(args) -> int:
    from mothlab.moth import simulate

    given = [name for name, _, _ in _INPUTS if getattr(args, name) is not None]
    if args.csv is not None:
        if given:
            raise ValueError(
                "Give either --csv or the flight flags ("
                + ", ".join(f"--{n}" for n in given)
                + "), not both."
            )
        state0, controls = _read_csv(args.csv)
    else:
        state0, controls = _from_flags(args)
    params = _params(args)
    t = _times(args)
    fmt = args.format or ("json" if args.out and args.out.suffix.lower() == ".json" else "csv")
    if state0.shape[0] * len(t) * 8 > MAX_VALUES:
        raise ValueError(
            f"{state0.shape[0]} flights x {len(t)} times is too much output "
            f"(limit {MAX_VALUES:,} values); use fewer --n-times or split the CSV."
        )
    traj = simulate(state0, controls, params, t=t, precise=args.precise)
    _check_finite(traj, t, args)

    buf = io.StringIO()
    if fmt == "json":
        json.dump(to_json(t, state0, controls, traj, params, args.precise), buf)
        buf.write("\n")
    else:
        write_csv(buf, t, state0, controls, traj)
    if args.out is None:
        sys.stdout.write(buf.getvalue())
    else:
        try:
            args.out.write_text(buf.getvalue())
        except OSError as err:  # disk full, /proc ...: the write call does not name the file
            if err.filename is None:
                err.filename = str(args.out)
            raise
        print(
            f"wrote {traj.shape[0]} flight(s) x {len(t)} times to {args.out} ({fmt})",
            file=sys.stderr,
        )
    return 0
