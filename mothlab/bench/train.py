"""``mothlab bench train``: ensemble training throughput against the original loop style.

Ours: one compiled ``lax.scan`` chunk of batches for the whole vmapped ensemble (per-network
batches drawn on device, masks applied inside the forward pass, early-stopping bookkeeping
included). Original style (re-implemented here, same model and inputs): a Python loop over
batches calling a jitted vmapped step, then extra train and validation loss passes and a host
sync every batch, and the masks re-applied in a per-network Python loop.

Reports network-steps/s (one network trained on one batch) and achieved FLOP/s
(6 FLOPs per weight per training sample + 2 per validation sample).
"""

from __future__ import annotations

import time


def register(sub) -> None:
    p = sub.add_parser("train", help="ensemble training throughput vs the original loop style",
                       description=__doc__)
    p.add_argument("--networks", type=int, default=40, help="networks at small width")
    p.add_argument("--paper-networks", type=int, default=8, help="networks at paper width")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=400, help="our batches per measurement")
    p.add_argument("--orig-steps", type=int, default=40, help="original-style batches")
    p.add_argument("--paper-steps", type=int, default=100, help="our batches at paper width")
    p.add_argument("--paper-orig-steps", type=int, default=20,
                   help="original-style batches at paper width")
    p.add_argument("--skip-paper", action="store_true", help="only the small width")
    p.set_defaults(func=run)


def _ours(sizes, n, batch, steps, data):
    import jax

    from mothlab.nets.training import (
        TrainSettings,
        init_state,
        level_state,
        network_keys,
        prune_state,
        train_chunk,
    )

    s = TrainSettings(batch_size=batch, val_batch_size=batch, max_steps=10**9,
                      es_window=1000)
    keys = network_keys(0, range(n))
    st = prune_state(init_state(keys, sizes, s), 0.5, "layerwise", "magnitude", s)
    st = level_state(st, keys, 0, s)
    chunk = min(steps, 200)
    st, _ = train_chunk(st, data, chunk, s)  # compile + warm up
    jax.block_until_ready(st)
    t = time.perf_counter()
    done = 0
    while done < steps:
        st, out = train_chunk(st, data, chunk, s)
        done += chunk
    jax.block_until_ready(out)
    return n * done / (time.perf_counter() - t)


def _original(sizes, n, batch, steps, data):
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from mothlab.nets import mlp
    from mothlab.nets.pruning import prune_ensemble
    from mothlab.nets.training import network_keys

    xtr, ytr, xva, yva = (np.asarray(a) for a in data)
    opt = optax.adam(5e-4)
    params = mlp.init_ensemble(network_keys(0, range(n)), sizes)
    masks = prune_ensemble(params, mlp.full_masks(params), 0.5)
    opt_state = jax.vmap(opt.init)(params)

    @jax.jit
    def step(params, opt_state, masks, xb, yb):
        def one(p, o, m):
            g = jax.grad(mlp.mse)(p, m, xb, yb)
            u, o = opt.update(g, o, p)
            return optax.apply_updates(p, u), o
        return jax.vmap(one)(params, opt_state, masks)

    @jax.jit
    def losses(params, masks, x, y):
        return jax.vmap(lambda p, m: mlp.mse(p, m, x, y))(params, masks)

    @jax.jit
    def mask_one(w, m):
        return w * m

    rng = np.random.default_rng(0)

    def run(k):
        nonlocal params, opt_state
        for _ in range(k):
            it = rng.integers(0, len(xtr), batch)
            iv = rng.integers(0, len(xva), batch)
            xb, yb = jnp.asarray(xtr[it]), jnp.asarray(ytr[it])
            params, opt_state = step(params, opt_state, masks, xb, yb)
            tl = losses(params, masks, xb, yb)           # extra loss passes ...
            vl = losses(params, masks, jnp.asarray(xva[iv]), jnp.asarray(yva[iv]))
            float(jnp.mean(tl)), np.asarray(vl)          # ... and a host sync, every batch
            params = {k2: [jnp.stack([mask_one(w[i], m[i]) for i in range(n)])  # per network
                           for w, m in zip(params[k2], masks[k2])] for k2 in ("w", "b")}
        jax.block_until_ready(params)

    run(2)  # compile + warm up
    t = time.perf_counter()
    run(steps)
    return n * steps / (time.perf_counter() - t)


def run(args) -> int:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from mothlab.nets.mlp import flops_per_step

    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, (20000, 10)).astype(np.float32)
    y = rng.uniform(-0.5, 0.5, (20000, 7)).astype(np.float32)
    data = tuple(jnp.asarray(a) for a in (x[:16000], y[:16000], x[16000:], y[16000:]))
    cases = [("small 10-50-50-50-8-7", [10, 50, 50, 50, 8, 7], args.networks, args.steps,
               args.orig_steps)]
    if not args.skip_paper:
        cases.append(("paper 10-400-400-400-16-7", [10, 400, 400, 400, 16, 7],
                      args.paper_networks, args.paper_steps, args.paper_orig_steps))
    dev = jax.devices()[0]
    print(f"device: {dev.platform} ({getattr(dev, 'device_kind', '')}), batch {args.batch}")
    print(f"{'case':28s} {'networks':>8s} {'ours net-steps/s':>17s} {'GFLOP/s':>8s} "
          f"{'orig net-steps/s':>17s} {'GFLOP/s':>8s} {'speed-up':>8s}")
    ratios = {}
    for name, sizes, n, steps, orig_steps in cases:
        f = flops_per_step(sizes, args.batch, args.batch)
        ours = _ours(sizes, n, args.batch, steps, data)
        orig = _original(sizes, n, args.batch, orig_steps, data)
        ratios[name] = ours / orig
        print(f"{name:28s} {n:8d} {ours:17.0f} {ours * f / 1e9:8.2f} {orig:17.0f} "
              f"{orig * f / 1e9:8.2f} {ours / orig:7.1f}×", flush=True)
    small = ratios[cases[0][0]]
    rest = "; ".join(f"{k.split()[0]} {v:.1f}×" for k, v in ratios.items())
    print(f"summary: bench train on {dev.platform}: ensemble scan training is {small:.1f}× the "
          f"original loop style at small width ({rest})")
    return 0
