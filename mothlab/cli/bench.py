"""``mothlab bench NAME``: benchmarks, each against an in-run re-implementation of the original.

Every module in :mod:`mothlab.bench` exposes ``register(subparsers)`` like the CLI commands do.
"""

from __future__ import annotations

import importlib
import pkgutil


def register(sub) -> None:
    import mothlab.bench as bench_pkg

    parser = sub.add_parser(
        "bench", help="benchmarks against the original approach", description=__doc__
    )
    inner = parser.add_subparsers(dest="bench", required=True, metavar="NAME")
    for info in sorted(pkgutil.iter_modules(bench_pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"mothlab.bench.{info.name}").register(inner)
