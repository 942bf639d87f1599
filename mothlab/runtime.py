"""Process-wide JAX settings shared by the CLI, the app, the benches and the tests.

A neutral low module (it imports nothing of mothlab): the CLI cannot import :mod:`mothlab.ui`
(that would load Panel), so the one persistent compile cache lives here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["compile_cache_dir", "enable_compile_cache", "use_all_cores"]


def compile_cache_dir() -> Path:
    """Where compiled XLA programs are kept: ``$MOTHLAB_JAX_CACHE``, default
    ``~/.cache/mothlab/jax``."""
    path = os.environ.get("MOTHLAB_JAX_CACHE")
    return Path(path) if path else Path.home() / ".cache" / "mothlab" / "jax"


def enable_compile_cache() -> None:
    """Keep JAX's compiled programs on disk, so that a second process (a restarted server, the
    next CLI run, a test's subprocess) loads them instead of compiling again.

    Only programs that took at least 0.5 s to compile are written. A cache that cannot be made
    (read-only home, full disk) is silently skipped: it is an optimisation, never a reason to fail.

    Does not import JAX: before JAX is imported the setting goes through JAX's own environment
    variables (which child processes inherit too), so a command that never uses JAX pays nothing.
    """
    path = compile_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    if "jax" in sys.modules:
        import jax

        try:
            jax.config.update("jax_compilation_cache_dir", str(path))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
        except Exception:  # noqa: BLE001 - a cache is an optimisation, never a reason to fail
            pass
    else:
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(path))
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")


def use_all_cores() -> None:
    """Split JAX's CPU into one device per core (``--xla_force_host_platform_device_count``),
    so that the runner's network axis, sharded over the local devices, trains on every core at
    once: one XLA CPU device runs the small batched matrix products of a training step on about
    one core (measured 2026-12-02 00:34 UTC on the 2-core CPU, load 2.8 falling, nothing else
    heavy running: the 8-network classroom dense step took 3.0 ms on one device, 1.5 ms on
    two). Only before JAX is imported, only when XLA_FLAGS does not already set it, and only on
    the CPU (GPUs are unaffected). Results agree to float32 round-off: each device trains its
    share of the networks, and a network's numbers do not depend on its neighbours beyond that
    (see :mod:`mothlab.nets.training`)."""
    flags = os.environ.get("XLA_FLAGS", "")
    n = os.cpu_count() or 1
    if "jax" in sys.modules or "xla_force_host_platform_device_count" in flags or n < 2:
        return
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()
