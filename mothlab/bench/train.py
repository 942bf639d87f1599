"""``mothlab bench train``: mothlab's training step against the step an ML user would write, and
against the machine's large-matmul peak, all measured in one process, timed in turns.

The process presents the CPU as one XLA device per core (:func:`mothlab.runtime.use_all_cores`),
as ``mothlab train`` does. One timed call of each contender runs ``--steps`` batches (one compiled
``lax.scan``) and ends with one host sync (``block_until_ready``); compile time is excluded and
reported apart.

- **mothlab**: ``nets.training.train_chunk`` as ``mothlab train`` runs it: the network axis
  sharded over all devices (``NamedSharding``, as ``run_experiment``), data replicated. Each
  batch: per-network training batch drawn on device, forward/backward, optax adam, masks kept
  (pruned weights stay 0), then the validation loss of the updated network on its own
  validation batch (the early-stopping signal of SCIENCE.md §3: every batch's validation loss
  enters the means it compares), and the stop rule's bookkeeping. (How: the validation pass of
  batch ``k`` is folded into batch ``k+1``'s forward pass, see ``train_chunk``.) Activation:
  mothlab's arctan (``mlp.fast_arctan``, a vectorised polynomial, within 2 ulp of arctan).
- **mothlab, one device**: the same on the default device only (what the sharding is worth
  to mothlab's step).
- **plain JAX**: what an ML user would write for the same job: stacked ensemble weights
  ``(n, in, out)``, a batched ``einsum`` forward with the mask multiplied in, ``jax.grad``, optax
  adam, ``lax.scan`` over steps inside one ``jit``, per-network batches drawn on device, the
  user's ``jnp.arctan``; no validation pass, no stopping bookkeeping. Run as a user runs it: on
  the default device (one device, no sharding).
- **plain JAX, sharded**: the same function with its inputs sharded over the devices like
  mothlab's (jit partitions it): what the sharding alone is worth, so the ratio is not read as
  the step's alone.
- **plain JAX + validation** (information, equal work): the plain step with the validation
  pass the early stopping needs added as a user would write it (after each update, every
  network's loss on its own validation batch, returned per batch), on the default device. The
  headline ratio stays against the plain step without it.
- **peak**: a ``--peak-size``³ float32 matmul, jitted, the practical limit of this machine: the
  faster of one matmul on one device and the same matmul with its rows sharded over all devices,
  each called ``PEAK_CALLS`` times per turn, the best kept; every case's fraction of the peak is
  of the highest peak of the whole run.

Network-steps/s = networks × batches per second. FLOPs counted per network-step: 6 per weight
per training sample (forward 2, backward 4) — 6 × 330,512 × 128 = 254 MFLOP at paper width,
batch 128 — plus, for mothlab, 2 per weight per validation sample (85 MFLOP); biases and
elementwise work are not counted. Each contender's GFLOP/s use its own count; the ratio to plain
is in network-steps/s (mothlab does the validation pass on top).
"""

from __future__ import annotations

import time

#: Calls of each peak matmul per turn (the best of all turns is kept): one 2048³ product takes
#: ~0.15 s, so a single call per turn is easily caught by a neighbour on a shared machine (four
#: quiet runs on 2026-12-02 gave peaks of 129, 129, 112 and 111 GFLOP/s with one call per turn).
PEAK_CALLS = 5

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


def _mesh():
    """A 1-D mesh over all local devices (axis ``"net"``) and its network-axis and replicated
    shardings, as ``nets.experiment.run_experiment`` builds them."""
    import jax
    import numpy as np

    mesh = jax.sharding.Mesh(np.array(jax.local_devices()), ("net",))
    shard = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("net"))
    repl = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return shard, repl


def mothlab_step(sizes, n, batch, steps, data, sharded=True):
    """A function running ``steps`` batches of mothlab's train_chunk (compiled; the network axis
    sharded over all devices as ``mothlab train`` runs it, or on the default device), and the
    compile time."""
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
    st, d = level_state(init_state(keys, sizes, s), keys, 0, s), data
    if sharded:
        shard, repl = _mesh()
        st, d = jax.device_put(st, shard), jax.device_put(data, repl)
    t0 = time.perf_counter()
    st, out = train_chunk(st, d, steps, s)
    jax.block_until_ready(out)
    compile_s = time.perf_counter() - t0
    box = [st]

    def go():
        box[0], o = train_chunk(box[0], d, steps, s)
        jax.block_until_ready(o)

    return go, compile_s


def plain_step(sizes, n, batch, steps, data, sharded=False, validate=False):
    """A function running ``steps`` batches of the plain-JAX ensemble step an ML user would write
    (compiled; on the default device, or with its inputs sharded over all devices like
    mothlab's), and the compile time. ``validate``: each batch also computes every updated
    network's loss on its own validation batch (the work of SCIENCE.md §3's early stopping, as
    the user would add it: one more forward pass), returned per batch."""
    import jax
    import jax.numpy as jnp
    import optax

    xtr, ytr, xva, yva = data
    key = jax.random.PRNGKey(0)
    ks = jax.random.split(key, len(sizes) - 1)
    params = {
        "w": [0.2 * jax.random.normal(k, (n, a, b)) for k, a, b in zip(ks, sizes[:-1], sizes[1:])],
        "b": [jnp.zeros((n, b)) for b in sizes[1:]],
    }
    masks = jax.tree.map(lambda a: jnp.ones_like(a), params)
    opt = optax.adam(5e-4)
    if sharded:
        shard, repl = _mesh()
        params, masks = jax.device_put((params, masks), shard)
        xtr, ytr, xva, yva = jax.device_put((xtr, ytr, xva, yva), repl)
    opt_state = opt.init(params)

    def forward(p, x):
        h = x
        for i, (w, b) in enumerate(zip(p["w"], p["b"])):
            h = jnp.einsum("nbi,nio->nbo", h, w * masks["w"][i]) + (b * masks["b"][i])[:, None]
            if i < len(p["w"]) - 1:
                h = jnp.arctan(h)
        return h

    def loss_fn(p, x, y):
        return jnp.mean((forward(p, x) - y) ** 2) * n  # sum over networks of their mean losses

    @jax.jit
    def train(params, opt_state, key):
        def body(carry, k):
            p, o = carry
            if validate:
                k, kv = jax.random.split(k)
            idx = jax.random.randint(k, (n, batch), 0, xtr.shape[0])
            g = jax.grad(loss_fn)(p, xtr[idx], ytr[idx])
            upd, o = opt.update(g, o, p)
            p = optax.apply_updates(p, upd)
            val = None
            if validate:
                iv = jax.random.randint(kv, (n, batch), 0, xva.shape[0])
                val = jnp.mean((forward(p, xva[iv]) - yva[iv]) ** 2, axis=(1, 2))
            return (p, o), val

        (p, o), val = jax.lax.scan(body, (params, opt_state), jax.random.split(key, steps))
        return p, o, val

    t0 = time.perf_counter()
    jax.block_until_ready(train(params, opt_state, key))
    compile_s = time.perf_counter() - t0
    box = [params, opt_state]

    def go():
        box[0], box[1], val = train(box[0], box[1], key)
        jax.block_until_ready((box[0], val))

    return go, compile_s


def matmul_peak(size):
    """Functions running one jitted size×size float32 matmul (2 size³ FLOPs), compiled: on one
    device, and with the rows of the left factor sharded over all devices (each device one
    block of rows, concurrently)."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(1), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(2), (size, size), jnp.float32)
    f = jax.jit(lambda a, b: a @ b)
    jax.block_until_ready(f(a, b))
    fns = {"one device": lambda: jax.block_until_ready(f(a, b))}
    nd = len(jax.local_devices())
    if nd > 1 and size % nd == 0:
        shard, repl = _mesh()
        sa, sb = jax.device_put(a, shard), jax.device_put(b, repl)
        jax.block_until_ready(f(sa, sb))
        fns[f"{nd} devices"] = lambda: jax.block_until_ready(f(sa, sb))
    return fns


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
    from mothlab.runtime import use_all_cores

    use_all_cores()  # before JAX is imported: one CPU device per core, as `mothlab train`

    import jax
    import jax.numpy as jnp
    import numpy as np

    from mothlab.bench import command_line, load_average, machine, write_record
    from mothlab.nets.mlp import flops_per_step, n_weights
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
    nd = len(jax.local_devices())
    for name in ("networks", "paper_networks"):
        if getattr(args, name) % nd:
            raise ValueError(
                f"--{name.replace('_', '-')} {getattr(args, name)} is not a multiple of the "
                f"{nd} devices the network axis is sharded over; use a multiple of {nd}."
            )
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
        f"mothlab bench train — {info['device']}, {info['cpu']}, {info['cores']} cores as {nd} "
        f"XLA devices; load {load0}; batch {args.batch}"
    )
    rows = []
    with tqdm_progress("bench train") as progress:
        report(progress, 0.0, "matmul peak")
        peak_fns = matmul_peak(args.peak_size)
        for i, (case, n, steps) in enumerate(cases):
            sizes = CASES[case]
            at = 0.05 + 0.9 * i / len(cases)
            report(progress, at, f"{case}: compile mothlab")
            go_ours, c_ours = mothlab_step(sizes, n, args.batch, steps, data)
            go_ours_1, c_ours_1 = mothlab_step(sizes, n, args.batch, steps, data, sharded=False)
            report(progress, at + 0.2 / len(cases), f"{case}: compile plain JAX")
            go_plain, c_plain = plain_step(sizes, n, args.batch, steps, data)
            go_plain_sh, c_plain_sh = plain_step(sizes, n, args.batch, steps, data, sharded=True)
            go_plain_v, c_plain_v = plain_step(sizes, n, args.batch, steps, data, validate=True)
            report(progress, at + 0.5 / len(cases), f"{case}: timing, interleaved")
            times = interleaved_best(
                [go_ours, go_ours_1, go_plain, go_plain_sh, go_plain_v]
                + [f for _ in range(PEAK_CALLS) for f in peak_fns.values()],
                max(3, args.repeats),
            )
            t_ours, t_ours_1, t_plain, t_plain_sh, t_plain_v = times[:5]
            peaks = {
                k: 2.0 * args.peak_size**3 / min(times[5 + j :: len(peak_fns)]) / 1e9
                for j, k in enumerate(peak_fns)
            }
            peak = max(peaks.values())
            ours, ours_1, plain, plain_sh, plain_v = (
                n * steps / t for t in (t_ours, t_ours_1, t_plain, t_plain_sh, t_plain_v)
            )
            f_ours = flops_per_step(sizes, args.batch, args.batch)
            f_plain = flops_per_step(sizes, args.batch, 0)
            rows.append(
                dict(
                    case=f"{case} {'-'.join(map(str, sizes))}",
                    networks=n,
                    steps_per_call=steps,
                    weights=sum(n_weights(sizes)),
                    mothlab_net_steps_per_s=ours,
                    mothlab_gflops=ours * f_ours / 1e9,
                    mothlab_one_device_net_steps_per_s=ours_1,
                    plain_net_steps_per_s=plain,
                    plain_gflops=plain * f_plain / 1e9,
                    plain_sharded_net_steps_per_s=plain_sh,
                    plain_sharded_gflops=plain_sh * f_plain / 1e9,
                    plain_with_validation_net_steps_per_s=plain_v,
                    plain_with_validation_gflops=plain_v * f_ours / 1e9,
                    ratio_to_plain=ours / plain,
                    ratio_to_plain_sharded=ours / plain_sh,
                    ratio_to_plain_with_validation=ours / plain_v,
                    mothlab_fraction_of_peak=ours * f_ours / 1e9 / peak,
                    plain_fraction_of_peak=plain * f_plain / 1e9 / peak,
                    peak_gflops=peak,
                    peak_gflops_by_layout=peaks,
                    flops_per_net_step_mothlab=f_ours,
                    flops_per_net_step_plain=f_plain,
                    compile_s_mothlab=c_ours,
                    compile_s_mothlab_one_device=c_ours_1,
                    compile_s_plain=c_plain,
                    compile_s_plain_sharded=c_plain_sh,
                    compile_s_plain_with_validation=c_plain_v,
                )
            )
        report(progress, 1.0, "done")
    # every case's fraction is against the highest peak of the whole run (the machine's limit
    # does not change between the cases' turns; a turn that caught a neighbour measured less)
    peak = max(r["peak_gflops"] for r in rows)
    for r in rows:
        r["case_peak_gflops"] = r["peak_gflops"]
        r["peak_gflops"] = peak
        r["mothlab_fraction_of_peak"] = r["mothlab_gflops"] / peak
        r["plain_fraction_of_peak"] = r["plain_gflops"] / peak
    print(
        f"large-matmul peak ({args.peak_size}³ float32, timed in turn with each case; the faster "
        f"layout; fractions are of the run's highest, {peak:.1f}): "
        + "; ".join(
            f"{r['case'].split()[0]} "
            + ", ".join(f"{k} {v:.1f}" for k, v in r["peak_gflops_by_layout"].items())
            for r in rows
        )
        + " GFLOP/s"
    )
    print(
        f"{'case':<27} {'nets':>4} {'mothlab n-steps/s':>17} {'GFLOP/s':>7} "
        f"{'plain n-steps/s':>15} {'GFLOP/s':>7} {'ratio':>6} {'plain sharded':>13} "
        f"{'ratio':>6} {'of peak':>7} {'mothlab 1 device':>16} {'plain + val':>12} {'ratio':>6}"
    )
    for r in rows:
        print(
            f"{r['case']:<27} {r['networks']:>4} {r['mothlab_net_steps_per_s']:>17,.0f} "
            f"{r['mothlab_gflops']:>7.1f} {r['plain_net_steps_per_s']:>15,.0f} "
            f"{r['plain_gflops']:>7.1f} {r['ratio_to_plain']:>5.2f}× "
            f"{r['plain_sharded_net_steps_per_s']:>13,.0f} {r['ratio_to_plain_sharded']:>5.2f}× "
            f"{r['mothlab_fraction_of_peak']:>7.0%} "
            f"{r['mothlab_one_device_net_steps_per_s']:>16,.0f} "
            f"{r['plain_with_validation_net_steps_per_s']:>12,.0f} "
            f"{r['ratio_to_plain_with_validation']:>5.2f}×"
        )
    print(
        "FLOPs per network-step: 6·weights·batch (+ 2·weights·val batch for mothlab's validation "
        "pass); weights: "
        + ", ".join(f"{r['case'].split()[0]} {r['weights']:,}" for r in rows)
        + f"; plain uses jnp.arctan, mothlab its polynomial arctan; {nd} devices"
    )
    last = rows[-1]
    summary = (
        f"summary: bench train — {last['case']}: mothlab {last['mothlab_net_steps_per_s']:,.0f} "
        f"network-steps/s = {last['ratio_to_plain']:.2f}× the plain-JAX step "
        f"({last['ratio_to_plain_sharded']:.2f}× plain given the same sharding, "
        f"{last['ratio_to_plain_with_validation']:.2f}× plain with the validation pass), "
        f"{last['mothlab_gflops']:.1f} GFLOP/s = {last['mothlab_fraction_of_peak']:.0%} of "
        f"the {last['peak_gflops']:.0f} GFLOP/s matmul peak timed beside it (plain: "
        f"{last['plain_fraction_of_peak']:.0%}); small width {rows[0]['ratio_to_plain']:.2f}× "
        f"plain — {info['device']}, {nd} devices, load {load_average()}"
    )
    print(summary)
    write_record(
        "train",
        command=command_line(),
        table=rows,
        summary=summary,
        figures=dict(
            peak_gflops=peak,
            peak_size=args.peak_size,
            batch=args.batch,
            devices=nd,
            rows=rows,
        ),
        started_load=load0,
        out=args.record,
    )
    return 0
