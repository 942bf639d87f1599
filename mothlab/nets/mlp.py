"""Ensemble MLP: many small networks stored with a leading network axis.

Parameters are a dict ``{"w": [W_0, ..., W_{L-1}], "b": [b_0, ..., b_{L-1}]}`` with
``W_l`` of shape ``(n_networks, n_l, n_{l+1})`` and ``b_l`` of shape ``(n_networks, n_{l+1})``
(float32). Masks have the same structure with bool leaves. The functions here act on ONE network
(no leading axis) and are ``jax.vmap``-ed over the network axis by the trainer, so a network's
arithmetic never mixes with another's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


@jax.custom_jvp
def fast_arctan(x):
    """``arctan`` in float32 from a polynomial with range reduction (Cephes ``atanf``), within
    2 ulp of the exact value for every input: XLA's CPU ``atan`` is a scalar library call per
    element that does not vectorise, and made the 10-50-50-50-8-7 training step 3-4x slower than
    with ``tanh`` (measured 2026-12-02 on the 2-core CPU). Its derivative is the exact
    ``1 / (1 + x²)``, not the polynomial's.
    """
    x = jnp.asarray(x)
    a = jnp.abs(x)
    big = a > 2.414213562373095  # tan(3π/8): reduce with π/2 - arctan(1/a)
    mid = (a > 0.4142135623730951) & ~big  # tan(π/8): reduce with π/4 + arctan((a-1)/(a+1))
    one = jnp.ones((), x.dtype)
    # the reduced argument -1/a, (a-1)/(a+1) or a/1 as ONE division (IEEE division is correctly
    # rounded and a/1 == a, so the same bits as the three cases apart; tested)
    num = jnp.where(big, -one, jnp.where(mid, a - one, a))
    r = num / jnp.where(big, a, jnp.where(mid, a + one, one))
    y0 = jnp.where(big, jnp.pi / 2, jnp.where(mid, jnp.pi / 4, 0.0)).astype(x.dtype)
    z = r * r
    p = ((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z - 3.33329491539e-1
    return jnp.sign(x) * (y0 + p * z * r + r)


@fast_arctan.defjvp
def _fast_arctan_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return fast_arctan(x), t / (1 + x * x)


#: Hidden activations by name. ``arctan`` is :func:`fast_arctan` (same function to float32
#: round-off, see there).
ACTIVATIONS = {"arctan": fast_arctan, "tanh": jnp.tanh}


def init_network(key, layer_sizes, init: str = "paper"):
    """Initial parameters of one network (no leading axis).

    ``paper``: W ~ N(0, 1)/5 (SCIENCE.md §3); ``glorot``: N(0, 2/(n_in+n_out));
    ``he``: N(0, 2/n_in). Biases are 0. Layer ``l`` draws ``jax.random.normal(k_l, (n_in,
    n_out))`` with ``k_l = jax.random.split(key, n_layers)[l]``.

    With JAX's partitionable threefry (its default) a draw of shape ``(a, b)`` is the first
    ``a·b`` numbers of a flat draw with the same key, so all layers come from one vmapped draw
    and one random-number program instead of one per layer (cold compile of the ensemble's
    initial state: 4.9 s instead of 22.7 s at load 5-9, 2026-12-02). Run op by op the weights
    are the same numbers (tested); inside one compiled program XLA fuses the scaling
    differently, and about half of them differ by one float32 ulp from the per-layer draws.
    """
    scales = []
    for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        if init == "paper":
            scales.append(0.2)
        elif init == "glorot":
            scales.append(float(np.sqrt(2.0 / (n_in + n_out))))
        elif init == "he":
            scales.append(float(np.sqrt(2.0 / n_in)))
        else:
            raise ValueError(f"unknown init {init!r}; choose paper, glorot or he.")
    keys = jax.random.split(key, len(layer_sizes) - 1)
    shapes = list(zip(layer_sizes[:-1], layer_sizes[1:]))
    if jax.config.jax_threefry_partitionable:
        size = max(a * b for a, b in shapes)
        flat = jax.vmap(lambda k: jax.random.normal(k, (size,), jnp.float32))(keys)
        draws = [flat[l, : a * b].reshape(a, b) for l, (a, b) in enumerate(shapes)]
    else:
        draws = [jax.random.normal(k, s, jnp.float32) for k, s in zip(keys, shapes)]
    ws = [sc * d for sc, d in zip(scales, draws)]
    bs = [jnp.zeros((n_out,), jnp.float32) for _, n_out in shapes]
    return {"w": ws, "b": bs}


def init_ensemble(keys, layer_sizes, init: str = "paper"):
    """Parameters for keys ``(n_networks, 2)`` → leaves with a leading network axis."""
    return jax.vmap(lambda k: init_network(k, layer_sizes, init))(keys)


def full_masks(params):
    """All-True masks with the structure of ``params``."""
    return jax.tree.map(lambda a: jnp.ones(a.shape, bool), params)


def apply_masks(params, masks):
    """``params * masks`` leaf by leaf (pruned entries become exactly 0)."""
    return jax.tree.map(lambda p, m: jnp.where(m, p, jnp.zeros((), p.dtype)), params, masks)


def forward(params, masks, x, activation: str = "arctan"):
    """One network's outputs for inputs ``x`` (batch, n_in) → (batch, n_out).

    Weights and biases are multiplied by their masks inside the forward pass, so the gradient of
    a pruned weight is exactly 0 and a pruned weight has no effect even if its raw value drifts.
    ``masks=None`` uses ``params`` as they are (for a caller that keeps pruned entries at exactly
    0 itself, as the trainer does: the same outputs without the mask multiply).
    """
    act = ACTIVATIONS[activation]
    p = params if masks is None else apply_masks(params, masks)
    h = x
    n = len(p["w"])
    for i, (w, b) in enumerate(zip(p["w"], p["b"])):
        h = h @ w + b
        if i < n - 1:
            h = act(h)
    return h


def _act_vjp(activation: str, z, a, g):
    """Cotangent of a hidden layer's pre-activation ``z`` (output ``a``) from the output's ``g``:
    the same arithmetic as JAX's own rules (``fast_arctan``'s jvp, ``tanh``'s ``1 - a²``)."""
    if activation == "arctan":
        return g / (1 + z * z)
    if activation == "tanh":
        return g * (1 - a * a)
    raise ValueError(f"unknown activation {activation!r}; choose {', '.join(ACTIVATIONS)}.")


def mse_grads_and_eval(params, x, y, x_eval, y_eval, activation: str = "arctan"):
    """``(mse(x, y), its gradient, mse(x_eval, y_eval))`` of ONE network with ``params`` as they
    are (no masks), the forward pass of both row sets through each layer as one matrix product.

    What the trainer's fused step needs (the validation loss of the network after update ``k``
    is the forward of the weights that step ``k+1`` trains, see :mod:`mothlab.nets.training`):
    one product of ``len(x) + len(x_eval)`` rows per layer instead of two, and the backward pass
    over the ``len(x)`` training rows only (hand-written, the chain rule of :func:`mse`; tested
    equal to ``jax.value_and_grad(mse)`` and ``mse`` to float32 round-off).
    """
    act = ACTIVATIONS[activation]
    b = x.shape[0]
    n = len(params["w"])
    h = jnp.concatenate([x, x_eval])
    inputs, pre, post = [], [], []
    for i, (w, bias) in enumerate(zip(params["w"], params["b"])):
        inputs.append(h[:b])
        h = h @ w + bias
        if i < n - 1:
            pre.append(h[:b])
            h = act(h)
            post.append(h[:b])
    out, out_eval = h[:b], h[b:]
    loss = jnp.mean((out - y) ** 2)
    eval_loss = jnp.mean((out_eval - y_eval) ** 2)
    g = (2.0 / out.size) * (out - y)
    gw, gb = [None] * n, [None] * n
    for i in range(n - 1, -1, -1):
        gw[i] = inputs[i].T @ g
        gb[i] = jnp.sum(g, axis=0)
        if i > 0:
            g = _act_vjp(activation, pre[i - 1], post[i - 1], g @ params["w"][i].T)
    return loss, {"w": gw, "b": gb}, eval_loss


def mse(params, masks, x, y, activation: str = "arctan"):
    """Mean squared error over the batch and all outputs (the paper's loss); ``masks`` as in
    :func:`forward` (None: ``params`` as they are)."""
    return jnp.mean((forward(params, masks, x, activation) - y) ** 2)


def n_weights(layer_sizes) -> list[int]:
    """Weights per layer, e.g. [4000, 160000, 160000, 6400, 112] for the paper's network."""
    return [a * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:])]


def flops_per_step(layer_sizes, batch: int, val_batch: int = 0) -> float:
    """FLOPs of one training step of one network: ~6 per weight per sample (forward 2, backward
    4) plus 2 per weight per validation sample."""
    w = sum(n_weights(layer_sizes))
    return 6.0 * w * batch + 2.0 * w * val_batch
