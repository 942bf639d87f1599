"""How long and how much memory a training run needs on this machine, before it starts.

Time comes from a measured rate: the batched matrix products that training runs (forward and
backward through every layer of every network, :func:`measured_rate`) are timed once per process
on this device at the run's own batch size, and scaled by the run's step caps. It is an upper
bound for the training itself (networks that stop early take less; dataset generation comes on
top). Memory counts the per-network state (weights, masks, gradients, Adam's two moments), the
activations of a training batch and of an evaluation batch, and the dataset on the device;
a run is refused above 80 % of what the machine has free.
"""

from __future__ import annotations

import dataclasses
import html
import os
import threading
import time
from functools import lru_cache

__all__ = ["Estimate", "estimate_run", "measured_rate", "available_bytes"]

#: a run is refused above this share of the memory the device has free
MAX_SHARE = 0.8


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Seconds (upper bound) and bytes a run needs; what the device has; whether it fits."""

    seconds: float
    bytes: float
    available: float
    device: str
    rate: float  # measured multiply-adds × 2 per second

    @property
    def fits(self) -> bool:
        return self.bytes <= MAX_SHARE * self.available

    def refusal(self) -> str:
        return (
            f"this run needs about {_gib(self.bytes)} of memory and this machine "
            f"({self.device}) has {_gib(self.available)} free; use fewer networks, a "
            "smaller dataset or smaller evaluation batches (eval_batch), or a larger machine."
        )

    def html(self) -> str:
        return (
            f"<b>Estimate</b> on {html.escape(self.device)}: up to {_duration(self.seconds)} "
            f"of training, about {_gib(self.bytes)} of memory ({_gib(self.available)} free; "
            f"measured {self.rate / 1e9:.1f} GFLOP/s)."
        )


def _gib(b: float) -> str:
    return f"{b / 2**30:.1f} GiB" if b >= 2**28 else f"{b / 2**20:.0f} MiB"


def _duration(s: float) -> str:
    s = int(round(s))
    if s >= 86400:
        return f"{s / 86400:.1f} days"
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    return f"{max(1, s // 60)} min" if s >= 60 else f"{s} s"


def available_bytes() -> tuple[float, str]:
    """(free bytes, device in words): the accelerator's memory limit, else the free RAM
    (``MemAvailable``, or a lower cgroup limit)."""
    try:
        import jax

        dev = jax.devices()[0]
        stats = dev.memory_stats() if dev.platform != "cpu" else None
        if stats and stats.get("bytes_limit"):
            free = stats["bytes_limit"] - stats.get("bytes_in_use", 0)
            return float(free), f"{dev.platform.upper()} {getattr(dev, 'device_kind', '')}".strip()
    except Exception:  # noqa: BLE001 - fall back to the host's memory
        pass
    free = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    free = float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = float(f.read().strip())
        if limit != "max":
            free = min(free or float("inf"), float(limit) - used)
    except OSError:
        pass
    if free is None:
        free = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    return free, f"CPU ({os.cpu_count()} cores)"


@lru_cache(maxsize=16)
def measured_rate(batch: int, width: int) -> float:
    """FLOP/s of batched (4 networks × batch × width) @ (width × width) products on this device,
    the kernel that dominates a training step; measured once per shape (about 0.1–1 s)."""
    import jax
    import jax.numpy as jnp

    n, b, w = 4, max(1, min(int(batch), 4096)), max(8, min(int(width), 1024))
    x = jnp.ones((n, b, w), jnp.float32)
    m = jnp.ones((n, w, w), jnp.float32)
    f = jax.jit(lambda x, m: jnp.tanh(jnp.einsum("nbi,nij->nbj", x, m)))
    f(x, m).block_until_ready()
    reps, t0 = 0, time.perf_counter()
    while reps < 3 or time.perf_counter() - t0 < 0.05:
        f(x, m).block_until_ready()
        reps += 1
    dt = (time.perf_counter() - t0) / reps
    return 2.0 * n * b * w * w / max(dt, 1e-9)


_WARM = threading.Lock()


def warm_rates(shapes=((128, 8), (128, 50), (128, 400), (4096, 400))) -> None:
    """Measure the rates of the presets' shapes in a background thread (once per process), so
    pressing Start never waits on a compile in the server's event loop."""
    if not _WARM.acquire(blocking=False):
        return

    def work():
        for b, w in shapes:
            try:
                measured_rate(b, w)
            except Exception:  # noqa: BLE001 - measured again, in the foreground, on use
                pass

    threading.Thread(target=work, name="mothlab-rates", daemon=True).start()


def estimate_run(cfg) -> Estimate:
    """The :class:`Estimate` of an :class:`~mothlab.nets.ExperimentConfig`."""
    sizes = cfg.layer_sizes
    n = int(cfg.n_networks)
    macs = sum(a * b for a, b in zip(sizes, sizes[1:]))  # multiply-adds per sample and network
    params = macs + sum(sizes[1:])
    hidden = sum(sizes[1:])
    b = int(cfg.batch_size)
    levels = (
        len(cfg.schedule)
        if getattr(cfg, "method", "prune") == "prune"
        else max(
            1, int(getattr(cfg, "sparse_steps", 0)) // max(1, int(getattr(cfg, "update_every", 1)))
        )
    )
    if getattr(cfg, "method", "prune") == "prune":
        dense = cfg.dense_max_steps if cfg.dense_max_steps is not None else cfg.max_steps_per_level
        steps = int(dense) + (levels - 1) * int(cfg.max_steps_per_level)
    else:
        steps = int(getattr(cfg, "sparse_steps", cfg.max_steps_per_level))
    rate = measured_rate(b, max(sizes[1:-1] or [sizes[-1]]))
    # forward + backward ≈ 3 × the forward's 2·macs FLOPs per sample
    seconds = steps * n * b * 6.0 * macs / rate
    state = n * params * 4 * 6  # weights, masks, grads, 2 Adam moments, best weights (float32)
    acts = n * (b + int(cfg.eval_batch)) * hidden * 4 * 3
    data = int(cfg.n_samples) * 17 * 4 * 2  # inputs + outputs, host copy + device copy
    free, device = available_bytes()
    return Estimate(
        seconds=float(seconds),
        bytes=float(state + acts + data),
        available=float(free),
        device=device,
        rate=float(rate),
    )
