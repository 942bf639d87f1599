"""The comparison study of issue 12: sparse from the start versus train-then-prune, at equal size.

Every method ends with exactly the same number of weights in every layer (``n_kept(n, 1 − d)``,
uniform allocation; biases are never masked, for every method):

``prune``       dense training for ``steps``, then magnitude pruning in three levels (densities
                ``d^(1/3)``, ``d^(2/3)``, ``d``; nested masks, moments of pruned weights reset),
                each retrained ``steps // 4`` batches — the papers' train-then-prune, shortened.
``static``      a uniformly random mask at density ``d``, trained ``steps``.
``set``, ``rigl`` a random start, topology updated every ``update_every`` batches (nets.sparse).
``motif``       a fixed mask from :func:`mothlab.analysis.topology.motif_masks` (target profile),
``anti-motif``  the same with the opposite profile.
``motif-set``, ``motif-rigl``  the motif start, then SET / RigL updates that keep every node's
                fan-in and fan-out (``regrow="degrees"``, :func:`mothlab.nets.sparse.degree_regrow`),
                so the motif profile is kept through training (issue 12.2).

Tasks: ``moth`` (the inverse problem, scaled MSE on a generated flight dataset, SCIENCE.md §2) and
``digits`` (scikit-learn's 8×8 digits, bundled with the package: 1,797 images, 64 inputs scaled to
[−0.5, 0.5], 10 classes, softmax cross-entropy; test accuracy reported). Each network ``i`` of a
method uses the key ``fold_in(PRNGKey(seed), i)``: the same initial weights and batches across
methods (only the mask differs), so the comparison is paired.

Measured per network: test loss, test accuracy (digits), training FLOPs
(:func:`mothlab.nets.sparse.training_flops`: sparse arithmetic, 6 FLOPs per live weight per
sample, RigL's dense-gradient passes included) and the motif z-scores of the final mask (null
``"edges"``, exact moments, weight masks after ghost/dead removal).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np

from mothlab.analysis.topology import MATCHED, motif_masks, profile_of
from mothlab.progress import check_cancel, report

TASKS = ("moth", "digits")

#: Study-only variants: a motif start with motif-preserving updates (name → (updates, regrow)).
PRESERVING = {"motif-set": "set", "motif-rigl": "rigl"}


def study_methods() -> tuple:
    """The methods of the study: every ``ExperimentConfig.method`` and :data:`PRESERVING`."""
    from mothlab.nets.sparse import METHODS

    return (*METHODS, *PRESERVING)


#: Study defaults per task (small widths: a shared 2-core CPU; measured in the README).
TASK_DEFAULTS = {
    "moth": dict(
        widths=[32, 32, 32, 8], learning_rate=5e-3, batch_size=128, loss="mse", n_samples=30_000
    ),
    "digits": dict(widths=[64, 32], learning_rate=3e-3, batch_size=64, loss="xent"),
}


def load_task(
    task: str,
    *,
    dataset=None,
    out_dir=None,
    n_samples: int | None = None,
    seed: int = 0,
    progress=None,
    cancel=None,
) -> dict:
    """``{"train": (X, Y), "test": (X, Y), "n_in", "n_out", "loss", "source"}`` (float32).

    ``moth``: the dataset store ``dataset`` or one generated (resumably) at
    ``<out_dir>/datasets/moth-n<N>-seed<seed>.zarr``; train = its train + validation splits,
    min–max scaled on the training split. ``digits``: a seeded 70/30 split of
    ``sklearn.datasets.load_digits`` (no download: the data ship with scikit-learn).
    """
    if task == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = (d.data / 16.0 - 0.5).astype(np.float32)
        y = np.eye(10, dtype=np.float32)[d.target]
        perm = np.random.default_rng(seed).permutation(len(x))
        n_test = int(round(0.3 * len(x)))
        te, tr = perm[:n_test], perm[n_test:]
        return {
            "train": (x[tr], y[tr]),
            "test": (x[te], y[te]),
            "n_in": 64,
            "n_out": 10,
            "loss": "xent",
            "source": f"sklearn load_digits, 70/30 split seed {seed}",
        }
    if task != "moth":
        raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
    from mothlab.data import generate_dataset, open_dataset

    n = int(n_samples or TASK_DEFAULTS["moth"]["n_samples"])
    if dataset:
        ds = open_dataset(dataset)
        path = Path(dataset)
    else:
        path = Path(out_dir or ".") / "datasets" / f"moth-n{n}-seed{seed}.zarr"
        ds = generate_dataset(path, n, seed=seed, progress=progress, cancel=cancel)
    idx = ds.splits(seed=seed)
    xs, ys = ds.scalers(seed=seed)
    tr = np.sort(np.concatenate([idx["train"], idx["val"]]))
    out = {}
    for name, rows in (("train", tr), ("test", idx["test"])):
        x, y = ds.features(rows)
        out[name] = (xs.transform(x).astype(np.float32), ys.transform(y).astype(np.float32))
    return dict(out, n_in=10, n_out=7, loss="mse", source=str(path))


_EVAL = None


def _evaluate(params, masks, x, y, activation, loss):
    """Test loss (and accuracy for ``xent``) of every network: two (n,) float arrays."""
    global _EVAL
    if _EVAL is None:
        import jax

        _EVAL = jax.jit(_eval_impl, static_argnames=("activation", "loss"))
    lo, acc = _EVAL(params, masks, x, y, activation=activation, loss=loss)
    return np.asarray(lo, float), np.asarray(acc, float)


def _eval_impl(params, masks, x, y, activation, loss):
    import jax
    import jax.numpy as jnp
    import optax

    from mothlab.nets import mlp

    def one(p, m):
        out = mlp.forward(p, m, x, activation)
        if loss == "mse":
            return jnp.mean((out - y) ** 2), jnp.float32(jnp.nan)
        ce = jnp.mean(optax.softmax_cross_entropy(out, y))
        return ce, jnp.mean(jnp.argmax(out, 1) == jnp.argmax(y, 1))

    return jax.vmap(one)(params, masks)


def run_method(
    method: str,
    data: dict,
    *,
    density: float,
    n_networks: int = 16,
    widths=None,
    steps: int = 3000,
    update_every: int = 250,
    zeta: float = 0.3,
    rigl_stop: float = 0.75,
    seed: int = 0,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    activation: str = "arctan",
    init: str = "paper",
    target: dict | None = None,
    task: str = "moth",
    progress=None,
    cancel=None,
) -> list[dict]:
    """Train ``n_networks`` networks with ``method``; one result row per network."""
    import jax

    from mothlab.nets import sparse as S
    from mothlab.nets.pruning import prune_ensemble, reset_pruned_state
    from mothlab.nets.training import network_keys

    if method not in study_methods():
        raise ValueError(f"method must be one of {study_methods()}, got {method!r}.")
    updates = PRESERVING.get(method, method)  # how the mask changes during training
    if steps < update_every:
        raise ValueError(f"steps ({steps}) must be at least update_every ({update_every}).")
    d = TASK_DEFAULTS.get(task, TASK_DEFAULTS["moth"])
    widths = list(widths or d["widths"])
    sizes = [data["n_in"], *widths, data["n_out"]]
    counts = S.layer_counts(sizes, density)
    total = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    st = S.SparseSettings(
        method=updates if updates in S.DYNAMIC else "static",
        regrow="degrees" if method in PRESERVING else "free",
        activation=activation,
        optimizer="adam",
        learning_rate=float(learning_rate or d["learning_rate"]),
        batch_size=int(batch_size or d["batch_size"]),
        loss=data["loss"],
        update_every=int(update_every),
        zeta=float(zeta),
        rigl_stop=float(rigl_stop),
        total_steps=int(steps),
    )
    keys = network_keys(int(seed), range(n_networks))
    train = (jax.numpy.asarray(data["train"][0]), jax.numpy.asarray(data["train"][1]))
    t0 = time.perf_counter()
    init_masks = None
    gen = None
    if method in ("motif", "anti-motif", *PRESERVING):
        gen = motif_masks(sizes, counts, n_networks, seed, target, anti=method == "anti-motif")
        init_masks = gen.masks
    elif method == "prune":
        init_masks = [np.ones((n_networks, a, b), bool) for a, b in zip(sizes[:-1], sizes[1:])]
    state = S.sparse_init(
        keys, sizes, st, total if method == "prune" else counts, init, initial_masks=init_masks
    )
    flops = np.zeros(n_networks)
    n_chunks = steps // update_every
    plan = [("train", update_every, total)] * n_chunks
    if method == "prune":
        for j in (1, 2, 3):
            dens = density ** (j / 3)
            plan.append(("prune", 1.0 - dens, None))
            plan += [("train", update_every, None)] * max(1, (steps // 4) // update_every)
    n_updates = 0
    live = list(total if method == "prune" else counts)
    for c, (kind, arg, _) in enumerate(plan):
        check_cancel(cancel, "the study resumes from its CSV (finished methods are kept)")
        if kind == "prune":
            s = float(arg) if arg < 1 - density else 1.0 - density  # exact last level
            masks = prune_ensemble(
                state["params"], state["masks"], s, mode="layerwise", bias_pruning="none"
            )
            from mothlab.nets import mlp

            state = dict(
                state,
                masks=masks,
                params=mlp.apply_masks(state["params"], masks),
                opt=reset_pruned_state(st.opt, state["opt"], masks),
            )
            live = [int(np.asarray(m[0]).sum()) for m in masks["w"]]
            continue
        state, _ = S.train_steps(state, keys, train, int(arg), st)
        flops += S.training_flops(sizes, live, st.batch_size, int(arg))
        # SET: update after every chunk but the last; RigL: while its cosine fraction is > 0
        last = c >= n_chunks - 1
        rigl_on = (
            updates == "rigl"
            and float(S.rigl_fraction(int(state["step"][0]), steps, zeta, rigl_stop)) > 0
        )
        if not last and (updates == "set" or rigl_on):
            state, _ = S.topology_update(state, keys, train, st)
            n_updates += 1
            if updates == "rigl":
                flops += S.training_flops(sizes, live, st.batch_size, 0, method="rigl", n_updates=1)
        report(progress, (c + 1) / len(plan), f"{task} {method}: chunk {c + 1}/{len(plan)}")
    masks = [np.asarray(m) for m in state["masks"]["w"]]
    for m, k in zip(masks, counts):
        if not np.all(m.reshape(n_networks, -1).sum(1) == k):
            raise RuntimeError(f"{method} ended with a density other than requested (bug).")
    loss, acc = _evaluate(state["params"], state["masks"], *data["test"], activation, data["loss"])
    z = profile_of(masks)
    secs = time.perf_counter() - t0
    rows = []
    for i in range(n_networks):
        row = {
            "task": task,
            "method": method,
            "density": density,
            "network": i,
            "weights": int(sum(counts)),
            "test_loss": loss[i],
            "test_accuracy": acc[i] if data["loss"] == "xent" else "",
            "train_gflops": flops[i] / 1e9,
            "steps": int(state["step"][i]),
            "n_updates": n_updates,
            "seconds": round(secs / n_networks, 3),
        }
        row.update({f"z_{k}": z[i, j] for j, k in enumerate(MATCHED)})
        if gen is not None:
            row["generator_distance"] = gen.distance
        rows.append(row)
    return rows


FIELDS = (
    [
        "task",
        "method",
        "density",
        "network",
        "weights",
        "test_loss",
        "test_accuracy",
        "train_gflops",
        "steps",
        "n_updates",
        "seconds",
    ]
    + [f"z_{k}" for k in MATCHED]
    + ["generator_distance"]
)


def read_rows(path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def compare(
    out,
    *,
    tasks=TASKS,
    methods=None,
    densities=(0.1,),
    n_networks: int = 16,
    steps: int = 3000,
    update_every: int = 250,
    seed: int = 0,
    dataset=None,
    n_samples: int | None = None,
    progress=None,
    cancel=None,
) -> list[dict]:
    """Run the study; append each finished (task, density, method) group to ``out`` (CSV) and
    skip the groups already there (resume). Returns all rows (as read back from the CSV)."""
    methods = list(methods or study_methods())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["task"], float(r["density"]), r["method"]) for r in read_rows(out)}
    groups = [(t, d, m) for t in tasks for d in densities for m in methods]
    report(
        progress,
        0.0,
        f"{len(groups)} groups of {n_networks} networks "
        f"({len(done & set(groups))} already in {out.name})",
    )
    datas = {}
    for g, (task, dens, method) in enumerate(groups):
        if (task, float(dens), method) in done:
            continue
        if task not in datas:
            datas[task] = load_task(
                task,
                dataset=dataset,
                out_dir=out.parent,
                n_samples=n_samples,
                seed=seed,
                cancel=cancel,
            )
        lo, hi = g / len(groups), (g + 1) / len(groups)

        def sub(ev, lo=lo, hi=hi):
            if progress is not None and ev.fraction is not None:
                report(progress, lo + ev.fraction * (hi - lo), ev.message)

        rows = run_method(
            method,
            datas[task],
            density=float(dens),
            n_networks=n_networks,
            steps=steps,
            update_every=update_every,
            seed=seed,
            task=task,
            progress=sub,
            cancel=cancel,
        )
        new = not out.exists()
        with out.open("a", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            if new:
                w.writeheader()
            for r in rows:
                w.writerow({k: r.get(k, "") for k in FIELDS})
    report(progress, 1.0, f"study done: {out}")
    return read_rows(out)


def summary(rows) -> list[dict]:
    """Median and quartiles per (task, density, method) of test loss, accuracy and GFLOPs."""
    groups = {}
    for r in rows:
        groups.setdefault((r["task"], float(r["density"]), r["method"]), []).append(r)
    out = []
    for (task, dens, method), rs in groups.items():
        loss = np.array([float(r["test_loss"]) for r in rs])
        acc = np.array(
            [
                float(r["test_accuracy"]) if r["test_accuracy"] not in ("", None) else np.nan
                for r in rs
            ]
        )
        fl = np.array([float(r["train_gflops"]) for r in rs])
        row = {
            "task": task,
            "density": dens,
            "method": method,
            "n": len(rs),
            "weights": int(rs[0]["weights"]),
            "median_loss": float(np.median(loss)),
            "q25_loss": float(np.quantile(loss, 0.25)),
            "q75_loss": float(np.quantile(loss, 0.75)),
            "median_accuracy": float(np.median(acc)) if np.isfinite(acc).any() else None,
            "median_gflops": float(np.median(fl)),
        }
        for k in MATCHED:
            with np.errstate(all="ignore"):
                row[f"median_z_{k}"] = float(np.nanmedian([float(r[f"z_{k}"]) for r in rs]))
        out.append(row)
    return out
