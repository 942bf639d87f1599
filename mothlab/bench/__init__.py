"""Benchmarks (``mothlab bench NAME``).

Each module exposes ``register(subparsers)``. A benchmark prints a table, ends with one summary
line, shows progress while it works (:mod:`mothlab.progress`), and compares against the approaches
people actually run (the original generator as it ran, the peer libraries a user would pick), run
in the same process on the same inputs so that ratios hold on a shared, noisy machine. Every run
writes a JSON record (:func:`write_record`: device, date, load, versions, figures) under
``assets/bench/``; ``mothlab bench readme`` rebuilds the README's performance section from those
records, so no figure is typed by hand.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path

__all__ = ["RECORDS", "machine", "write_record", "read_records", "load_average"]

#: Where the records live (one JSON file per benchmark, the latest run).
RECORDS = Path(__file__).resolve().parents[2] / "assets" / "bench"


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (``uptime``); empty where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return []


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """Device, CPU, core count, memory, load and library versions, for a record's header."""
    import importlib.metadata as md

    import jax

    versions = {}
    for pkg in (
        "mothlab",
        "jax",
        "jaxlib",
        "numpy",
        "scipy",
        "optax",
        "numba",
        "diffrax",
        "igraph",
        "equinox",
    ):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    dev = jax.devices()[0]
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        mem = float("nan")
    return {
        "device": f"{dev.platform} ({getattr(dev, 'device_kind', '?')})",
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "gpu": "not measured" if dev.platform == "cpu" else getattr(dev, "device_kind", "?"),
        "python": sys.version.split()[0],
        "versions": versions,
    }


def write_record(
    name: str,
    *,
    command: str,
    table: list[dict],
    summary: str,
    figures: dict,
    started_load: list[float],
    out: str | Path | None = None,
) -> Path:
    """Write ``assets/bench/<name>.json`` (or ``out``): the run's machine, date, load at start and
    end, command, table rows, summary line and headline figures. Returns the path."""
    path = Path(out) if out else RECORDS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = {
        "bench": name,
        "command": command,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_start": started_load,
        "load_end": load_average(),
        **machine(),
        "table": table,
        "summary": summary,
        "figures": figures,
    }
    path.write_text(json.dumps(rec, indent=1, default=float) + "\n")
    print(f"record written: {path}")
    return path


def read_records(folder: str | Path | None = None) -> dict[str, dict]:
    """Every record in ``folder`` (default :data:`RECORDS`), by benchmark name."""
    folder = Path(folder) if folder else RECORDS
    out = {}
    for p in sorted(folder.glob("*.json")):
        rec = json.loads(p.read_text())
        out[rec.get("bench", p.stem)] = rec
    return out


def command_line() -> str:
    """The command as typed (``mothlab bench ...``)."""
    return "mothlab " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0] else "mothlab bench"
