"""``mothlab bench train``: mothlab's training step against the step an ML user would write, and
against the machine's large-matmul peak, measured in the same run.

- **mothlab**: ``nets.training.train_chunk`` — one ``lax.scan`` over batches for the whole vmapped
  ensemble: per-network batches drawn on device, masks applied in the forward pass and after the
  update, a validation batch per step, early-stopping bookkeeping.
- **plain JAX**: what an ML user would write for the same job — stacked ensemble weights
  ``(n, in, out)``, a batched ``einsum`` forward with the mask multiplied in, ``jax.grad``, optax
  adam, ``lax.scan`` over steps inside one ``jit``, per-network batches drawn on device; no
  validation pass, no bookkeeping.
- **peak**: a large float32 matmul (``--peak-size``³, jitted), the practical limit of this machine.

The three are compiled first, then timed in turns (mothlab, plain, peak, mothlab, ...; the best of
``--repeats`` kept for each), so that all three see the same load on a shared machine.

Network-steps/s = networks × batches per second. FLOPs per network-step: 6 per weight per training
sample (forward 2, backward 4), plus 2 per weight per validation sample for mothlab (its step also
evaluates a validation batch); GFLOP/s are computed with each method's own count.
"""

from __future__ import annotations

import time

CASES = {"small": [10, 50, 50, 50, 8, 7], "paper": [10, 400, 400, 400, 16, 7]}


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="training step vs a plain JAX step and the matmul peak", description=__doc__
    )
    p.add_argument("--networks", type=int, default=40, help="networks at small width (40)")
    p.add_argument("--paper-networks", type=int, default=8, help="networks at paper width (8)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=400, help="batches per measurement, small width")
    p.add_argument("--paper-steps", type=int, default=100, help="batches per measurement, paper")
    p.add_argument("--repeats", type=int, default=3, help="repeats; the best is kept (3)")
    p.add_argument("--peak-size", type=int, default=2048, help="matmul size for the peak")
    p.add_argument("--skip-paper", action="store_true", help="only the small width")
    p.add_argument("--record", default=None, help="record path (default assets/bench/train.json)")
    p.set_defaults(func=run)


def mothlab_step(sizes, n, batch, steps, data):
    """A function running ``steps`` batches of mothlab's train_chunk (compiled), and the compile
    time."""
    import jax

    from mothlab.nets.training import (
        TrainSettings,
        init_state,
        level_state,
        network_keys,
        train_chunk,
    )

    s = TrainSettings(batch_size=batch, val_batch_size=batch, max_steps=10**9, es_window=1000)
    keys = network_keys(0, range(n))
    st = level_state(init_state(keys, sizes, s), keys, 0, s)
    t0 = time.perf_counter()
    st, out = train_chunk(st, data, steps, s)
    jax.block_until_ready(out)
    compile_s = time.perf_counter() - t0
    box = [st]

    def go():
        box[0], o = train_chunk(box[0], data, steps, s)
        jax.block_until_ready(o)

    return go, compile_s


def plain_step(sizes, n, batch, steps, data):
    """A function running ``steps`` batches of the plain-JAX ensemble step an ML user would write
    (compiled), and the compile time."""
    import jax
    import jax.numpy as jnp
    import optax

    xtr, ytr = data[0], data[1]
    key = jax.random.PRNGKey(0)
    ks = jax.random.split(key, len(sizes) - 1)
    params = {
        "w": [0.2 * jax.random.normal(k, (n, a, b)) for k, a, b in zip(ks, sizes[:-1], sizes[1:])],
        "b": [jnp.zeros((n, b)) for b in sizes[1:]],
    }
    masks = jax.tree.map(lambda a: jnp.ones_like(a), params)
    opt = optax.adam(5e-4)
    opt_state = opt.init(params)

    def loss_fn(p, x, y):
        h = x
        for i, (w, b) in enumerate(zip(p["w"], p["b"])):
            h = jnp.einsum("nbi,nio->nbo", h, w * masks["w"][i]) + (b * masks["b"][i])[:, None]
            if i < len(p["w"]) - 1:
                h = jnp.arctan(h)
        return jnp.mean((h - y) ** 2) * n  # sum over networks of each network's mean loss

    @jax.jit
    def train(params, opt_state, key):
        def body(carry, k):
            p, o = carry
            idx = jax.random.randint(k, (n, batch), 0, xtr.shape[0])
            g = jax.grad(loss_fn)(p, xtr[idx], ytr[idx])
            upd, o = opt.update(g, o, p)
            return (optax.apply_updates(p, upd), o), None

        (p, o), _ = jax.lax.scan(body, (params, opt_state), jax.random.split(key, steps))
        return p, o

    t0 = time.perf_counter()
    jax.block_until_ready(train(params, opt_state, key))
    compile_s = time.perf_counter() - t0
    box = [params, opt_state]

    def go():
        box[0], box[1] = train(box[0], box[1], key)
        jax.block_until_ready(box[0])

    return go, compile_s


def matmul_peak(size):
    """A function running one jitted size×size float32 matmul (2 size³ FLOPs), compiled."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(1), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(2), (size, size), jnp.float32)
    f = jax.jit(lambda a, b: a @ b)
    jax.block_until_ready(f(a, b))
    return lambda: jax.block_until_ready(f(a, b))


def interleaved_best(fns, repeats):
    """Best wall time of each function, timed in turns (a, b, c, a, b, c, ...): on a shared machine
    whose load changes during the run, every method then sees the same conditions."""
    best = [float("inf")] * len(fns)
    for _ in range(max(1, repeats)):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def run(args) -> int:
    import jax.numpy as jnp
    import numpy as np

    from mothlab.bench import command_line, load_average, machine, write_record
    from mothlab.nets.mlp import flops_per_step
    from mothlab.progress import report, tqdm_progress

    for name in (
        "networks",
        "paper_networks",
        "batch",
        "steps",
        "paper_steps",
        "repeats",
        "peak_size",
    ):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer.")
    load0 = load_average()
    info = machine()
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, (20000, 10)).astype(np.float32)
    y = rng.uniform(-0.5, 0.5, (20000, 7)).astype(np.float32)
    data = tuple(jnp.asarray(a) for a in (x[:16000], y[:16000], x[16000:], y[16000:]))
    cases = [("small", args.networks, args.steps)]
    if not args.skip_paper:
        cases.append(("paper", args.paper_networks, args.paper_steps))
    print(
        f"mothlab bench train — {info['device']}, {info['cpu']}, {info['cores']} cores; load "
        f"{load0}; batch {args.batch}"
    )
    rows = []
    with tqdm_progress("bench train") as progress:
        report(progress, 0.0, "matmul peak")
        peak_fn = matmul_peak(args.peak_size)
        peaks = []
        for i, (case, n, steps) in enumerate(cases):
            sizes = CASES[case]
            report(progress, 0.05 + 0.9 * i / len(cases), f"{case}: compile mothlab")
            go_ours, c_ours = mothlab_step(sizes, n, args.batch, steps, data)
            report(progress, 0.05 + 0.9 * (i + 0.3) / len(cases), f"{case}: compile plain JAX")
            go_plain, c_plain = plain_step(sizes, n, args.batch, steps, data)
            report(progress, 0.05 + 0.9 * (i + 0.5) / len(cases), f"{case}: timing, interleaved")
            t_ours, t_plain, t_peak = interleaved_best(
                [go_ours, go_plain, peak_fn], max(3, args.repeats)
            )
            ours, plain = n * steps / t_ours, n * steps / t_plain
            peak = 2.0 * args.peak_size**3 / t_peak / 1e9
            peaks.append(peak)
            f_ours = flops_per_step(sizes, args.batch, args.batch)
            f_plain = flops_per_step(sizes, args.batch, 0)
            rows.append(
                dict(
                    case=f"{case} {'-'.join(map(str, sizes))}",
                    networks=n,
                    mothlab_net_steps_per_s=ours,
                    mothlab_gflops=ours * f_ours / 1e9,
                    plain_net_steps_per_s=plain,
                    plain_gflops=plain * f_plain / 1e9,
                    ratio_to_plain=ours / plain,
                    mothlab_fraction_of_peak=ours * f_ours / 1e9 / peak,
                    plain_fraction_of_peak=plain * f_plain / 1e9 / peak,
                    peak_gflops=peak,
                    flops_per_net_step_mothlab=f_ours,
                    flops_per_net_step_plain=f_plain,
                    compile_s_mothlab=c_ours,
                    compile_s_plain=c_plain,
                )
            )
        report(progress, 1.0, "done")
    peak = max(peaks)
    print(
        f"large-matmul peak ({args.peak_size}³ float32, timed in turn with each case): "
        + ", ".join(f"{r['case'].split()[0]} {r['peak_gflops']:.1f}" for r in rows)
        + " GFLOP/s"
    )
    print(
        f"{'case':<30} {'nets':>5} {'mothlab net-steps/s':>20} {'GFLOP/s':>8} "
        f"{'plain net-steps/s':>18} {'GFLOP/s':>8} {'ratio':>6} {'of peak':>8}"
    )
    for r in rows:
        print(
            f"{r['case']:<30} {r['networks']:>5} {r['mothlab_net_steps_per_s']:>20,.0f} "
            f"{r['mothlab_gflops']:>8.1f} {r['plain_net_steps_per_s']:>18,.0f} "
            f"{r['plain_gflops']:>8.1f} {r['ratio_to_plain']:>5.2f}× "
            f"{r['mothlab_fraction_of_peak']:>7.0%}"
        )
    print(
        "FLOPs per network-step: 6·weights·batch (+ 2·weights·val batch for mothlab's "
        "validation pass)"
    )
    last = rows[-1]
    summary = (
        f"summary: bench train — {last['case']}: mothlab {last['mothlab_net_steps_per_s']:,.0f} "
        f"network-steps/s = {last['ratio_to_plain']:.2f}× the plain-JAX step, "
        f"{last['mothlab_gflops']:.1f} GFLOP/s = {last['mothlab_fraction_of_peak']:.0%} of "
        f"the {last['peak_gflops']:.0f} GFLOP/s matmul peak timed beside it (plain: "
        f"{last['plain_fraction_of_peak']:.0%}); small width {rows[0]['ratio_to_plain']:.2f}× "
        f"plain — {info['device']}, load {load_average()}"
    )
    print(summary)
    write_record(
        "train",
        command=command_line(),
        table=rows,
        summary=summary,
        figures=dict(peak_gflops=peak, peak_size=args.peak_size, batch=args.batch, rows=rows),
        started_load=load0,
        out=args.record,
    )
    return 0
