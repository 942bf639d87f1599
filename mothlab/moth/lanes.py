"""The CPU kernel of :func:`~mothlab.moth.integrate.simulate`: the same step, one flight per lane,
compiled by numba.

Why
---
The JAX kernel (:func:`~mothlab.moth.integrate._chunk_kernel`) runs on the CPU without XLA's
fusion pass, each of its ~1,000 operations per step one pass over the chunk: a single flight
waits on ~45 steps × ~1,000 dispatched operations, a large batch on memory. Here a flight is one
straight-line scalar function per step, its values in registers, one flight after another in
threads over lanes: no dispatch, no traffic beyond the state.

One source of truth
-------------------
Nothing of the scheme is written twice. The step is *traced*: :func:`scalar_source` turns the
jaxpr of the very functions the JAX kernel runs (``_derived``, ``_control_terms``, ``_step``,
``_kahan_add``, with a scalar lane) into Python source, one assignment per scalar operation in
the jaxpr's order, and numba compiles that. A change to the tableau, the φ-functions or the
right-hand side reaches both kernels. Only the elementary functions differ (numba calls the C
Cephes' polynomials in plain arithmetic, see :data:`_MATH`, where XLA has its own), so the two
kernels agree to round-off, not to the bit (``tests/test_moth.py`` bounds the difference and
checks both against the stiff reference).

Vectorized, not per-flight scalar: the lane loop runs over a block of :data:`BLOCK` flights
inside each step, so LLVM vectorizes it (AVX2: 8 float32 lanes). A per-flight scalar kernel
(C library sin/cos/exp, threads over flights) ran 31-37 k flights/s against 122-132 k/s for the
block form in one process (65,536 float32 flights, 2026-12-02 05:40 UTC, load 3.5). Every lane
computes the same IEEE operations whether it runs in a vector or in the loop's scalar remainder
(no fast-math, no contraction), and padding lanes repeat a real flight: a flight's result is
bit-identical alone, in a batch and in any chunking (tested).

The compiled module is written under the compile cache (its file named by the source's hash),
so numba keeps the machine code on disk: compiling takes ~15-30 s once per machine and step.
"""

from __future__ import annotations

import os
import sys
import threading
from functools import lru_cache

import numpy as np

__all__ = ["scalar_source", "module_source", "lane_module", "BLOCK"]

_BINARY = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
_COMPARE = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
_UNARY = {"sin": "np.sin", "cos": "np.cos", "exp": "np.exp", "sqrt": "np.sqrt", "abs": "abs"}


class _Emitter:
    """Translates a jaxpr into scalar Python statements: every array value becomes a numpy
    object array of names (one per element); structural primitives only rearrange names."""

    def __init__(self, prefix: str, functions=None):
        self.prefix = prefix
        self.functions = {**_UNARY, **(functions or {})}
        self.lines: list[str] = []
        self.consts: dict[str, object] = {}
        self._const_names: dict[tuple, str] = {}
        self.count = 0
        self.indent = 1

    def fresh(self) -> str:
        self.count += 1
        return f"t{self.count}"

    def emit(self, text: str) -> None:
        self.lines.append("    " * self.indent + text)

    def const(self, value) -> np.ndarray:
        arr = np.asarray(value)
        out = np.empty(arr.shape, dtype=object)
        for idx, v in np.ndenumerate(arr):
            key = (arr.dtype.str, v.item() if hasattr(v, "item") else v)
            if key not in self._const_names:
                name = f"{self.prefix}{len(self._const_names)}"
                self._const_names[key] = name
                self.consts[name] = arr.dtype.type(v)
            out[idx] = self._const_names[key]
        return out

    def read(self, env, atom):
        from jax.extend.core import Literal

        if isinstance(atom, Literal):
            return self.const(atom.val)
        return env[atom]

    def elementwise(self, fmt, *operands) -> np.ndarray:
        ops = np.broadcast_arrays(*operands)
        out = np.empty(ops[0].shape, dtype=object)
        for idx in np.ndindex(out.shape):
            name = self.fresh()
            self.emit(f"{name} = " + fmt.format(*(o[idx] for o in ops)))
            out[idx] = name
        return out

    def run(self, jaxpr, consts, args) -> list[np.ndarray]:
        env = {}
        for v, c in zip(jaxpr.constvars, consts):
            env[v] = self.const(c)
        for v, a in zip(jaxpr.invars, args):
            env[v] = a
        for eqn in jaxpr.eqns:
            ins = [self.read(env, a) for a in eqn.invars]
            outs = self.primitive(eqn, ins)
            for v, o in zip(eqn.outvars, outs):
                env[v] = o
        return [self.read(env, a) for a in jaxpr.outvars]

    def primitive(self, eqn, ins) -> list[np.ndarray]:
        name, p = eqn.primitive.name, eqn.params
        if name in _BINARY:
            return [self.elementwise("{} " + _BINARY[name] + " {}", *ins)]
        if name in _COMPARE:
            return [self.elementwise("{} " + _COMPARE[name] + " {}", *ins)]
        if name in self.functions:
            return [self.elementwise(self.functions[name] + "({})", *ins)]
        if name == "neg":
            return [self.elementwise("-{}", *ins)]
        if name == "and":
            return [self.elementwise("{} and {}", *ins)]
        if name == "integer_pow":
            y = p["y"]
            if y < 1:
                raise NotImplementedError(f"integer_pow with y = {y}")
            return [self.elementwise(" * ".join(["{0}"] * y), *ins)]
        if name == "select_n":
            if len(ins) != 3:
                raise NotImplementedError("select_n with more than two cases")
            return [self.elementwise("{2} if {0} else {1}", *ins)]
        if name == "convert_element_type":
            src = eqn.invars[0].aval.dtype
            dst = np.dtype(p["new_dtype"])
            if src == dst:
                return [ins[0]]
            kind = {"f": f"np.{dst.name}", "i": "int", "b": "bool"}[dst.kind]
            return [self.elementwise(kind + "({})", *ins)]
        if name == "broadcast_in_dim":
            x, shape, dims = ins[0], p["shape"], p["broadcast_dimensions"]
            expanded = [1] * len(shape)
            for d, s in zip(dims, x.shape):
                expanded[d] = s
            return [np.broadcast_to(x.reshape(expanded), shape)]
        if name == "reshape":
            return [ins[0].reshape(p["new_sizes"])]
        if name == "squeeze":
            return [np.squeeze(ins[0], axis=tuple(p["dimensions"]))]
        if name == "slice":
            strides = p["strides"] or (1,) * len(p["start_indices"])
            sl = tuple(
                slice(a, b, s) for a, b, s in zip(p["start_indices"], p["limit_indices"], strides)
            )
            return [ins[0][sl]]
        if name == "concatenate":
            return [np.concatenate(ins, axis=p["dimension"])]
        if name == "stack":
            return [np.stack(ins, axis=p["axis"])]
        if name == "reduce_and":
            x, axes = ins[0], tuple(p["axes"])
            if not axes:
                return [x]
            moved = np.moveaxis(x, axes, range(len(axes))).reshape(-1, *np.delete(x.shape, axes))
            out = np.empty(moved.shape[1:], dtype=object)
            for idx in np.ndindex(out.shape):
                out[idx] = self.elementwise(
                    " and ".join("{}" for _ in range(moved.shape[0])),
                    *(moved[(k, *idx)] for k in range(moved.shape[0])),
                )[()]
            return [out]
        if name in ("jit", "pjit", "closed_call", "core_call"):
            closed = p.get("jaxpr") or p.get("call_jaxpr")
            return self.run(closed.jaxpr, closed.consts, ins)
        if name == "cond":
            return self.cond(eqn, ins)
        raise NotImplementedError(f"primitive {name!r} is not translated to scalar code")

    def cond(self, eqn, ins):
        index, operands = ins[0], ins[1:]
        if index.shape != ():
            raise NotImplementedError("cond on a non-scalar index")
        outs = [np.empty(v.aval.shape, dtype=object) for v in eqn.outvars]
        for o in outs:
            for idx in np.ndindex(o.shape):
                o[idx] = self.fresh()
        branches = eqn.params["branches"]
        for b, closed in enumerate(branches):
            head = "if" if b == 0 else ("else" if b == len(branches) - 1 else "elif")
            test = f" {index[()]} == {b}" if head != "else" else ""
            self.emit(f"{head}{test}:")
            self.indent += 1
            res = self.run(closed.jaxpr, closed.consts, operands)
            for o, r in zip(outs, res):
                for idx in np.ndindex(o.shape):
                    self.emit(f"{o[idx]} = {r[idx]}")
            self.indent -= 1
        return outs


def scalar_source(fn, example_args, name: str, functions=None) -> tuple[str, dict]:
    """Python source of a function ``name(*scalars) -> tuple`` computing ``fn`` on one lane:
    ``fn`` is traced on ``example_args`` (a pytree of arrays, each leaf a flight's array), its
    inputs and outputs flattened in pytree order. Returns (source, constants it reads)."""
    import jax

    closed = jax.make_jaxpr(fn)(*example_args)
    em = _Emitter(f"{name.upper()}_", functions)
    args, params = [], []
    for v in closed.jaxpr.invars:
        arr = np.empty(v.aval.shape, dtype=object)
        for idx in np.ndindex(arr.shape):
            arr[idx] = f"a{len(params)}"
            params.append(arr[idx])
        args.append(arr)
    outs = em.run(closed.jaxpr, closed.consts, args)
    flat = [str(o[idx]) for o in outs for idx in np.ndindex(o.shape)]
    src = "\n".join(
        [f"def {name}({', '.join(params)}):", *em.lines, f"    return ({', '.join(flat)},)", ""]
    )
    return src, em.consts


# --- the traced functions ------------------------------------------------------------------


_N_CONST = 17  # BodyConstants fields
_N_DERIVED = 16  # _Derived fields
_N_CTL = 4  # control terms
_N_STATE = 16  # q, v and their compensations, 4 each
#: values per lane kept between steps: state, control terms, derived constants
LANE_VALUES = _N_STATE + _N_CTL + _N_DERIVED


# --- elementary functions the loop vectorizer can see through ----------------------------------


def _bitcast(typingctx, i):
    from llvmlite import ir
    from numba import types

    width = i.bitwidth
    ftype = types.float32 if width == 32 else types.float64

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType() if width == 32 else ir.DoubleType())

    return ftype(i), codegen


_BITCAST = []


def bitcast_intrinsic():
    """numba intrinsic: the float with the bits of an int32 (int64), for 2ⁿ in ``_exp``."""
    if not _BITCAST:
        from numba.extending import intrinsic

        _BITCAST.append(intrinsic(_bitcast))
    return _BITCAST[0]


#: sin, cos and exp in arithmetic only (Cody-Waite reduction and the polynomials of Cephes,
#: S. L. Moshier), so that the lane loop holds no call and vectorizes: the C library's functions
#: are opaque calls that keep LLVM's loop vectorizer out. ``F`` is the lane dtype.
_MATH = {
    "float32": """
@JIT
def _reduce(x):
    ax = abs(x)
    y = np.floor(ax * F(1.2732395447351628))
    y = y + (y - F(2.0) * np.floor(y * F(0.5)))
    r = ((ax - y * F(0.78515625)) - y * F(2.4187564849853515625e-4)) - y * F(
        3.77489497744594108e-8
    )
    q = y * F(0.5) - F(4.0) * np.floor(y * F(0.125))
    z = r * r
    ps = ((F(-1.9515295891e-4) * z + F(8.3321608736e-3)) * z - F(1.6666654611e-1)) * z * r + r
    pc = (
        ((F(2.443315711809948e-5) * z - F(1.388731625493765e-3)) * z + F(4.166664568298827e-2))
        * z
        * z
        - F(0.5) * z
        + F(1.0)
    )
    return q, ps, pc


""",
    "float64": """
@JIT
def _reduce(x):
    ax = abs(x)
    y = np.floor(ax * F(1.27323954473516268615))
    y = y + (y - F(2.0) * np.floor(y * F(0.5)))
    r = (
        (ax - y * F(7.85398125648498535156e-1)) - y * F(3.77489470793079817668e-8)
    ) - y * F(2.69515142907905952645e-15)
    q = y * F(0.5) - F(4.0) * np.floor(y * F(0.125))
    z = r * r
    s5 = (F(1.58962301576546568060e-10) * z - F(2.50507477628578072866e-8)) * z
    s5 = ((s5 + F(2.75573136213857245213e-6)) * z - F(1.98412698295895385996e-4)) * z
    ps = r + r * z * ((s5 + F(8.33333333332211858878e-3)) * z - F(1.66666666666666307295e-1))
    c5 = (F(-1.13585365213876817300e-11) * z + F(2.08757008419747316778e-9)) * z
    c5 = ((c5 - F(2.75573141792967388112e-7)) * z + F(2.48015872888517045348e-5)) * z
    pc = F(1.0) - F(0.5) * z + z * z * (
        (c5 - F(1.38888888888730564116e-3)) * z + F(4.16666666666665929218e-2)
    )
    return q, ps, pc


""",
}

#: exp in float64 for both dtypes: with a float32 exp (Cephes expf, within 1 ulp) the float32
#: kernel's errors over 2,000 S3 samples (seed 1, against float64 at 5,120 steps) were 1.77e-6
#: worst / 1.63e-7 median, against 1.46e-6 / 9.8e-8 with this one and 1.43e-6 / 1.0e-7 for the
#: JAX kernel (2026-12-02 05:50 UTC); it is 2 of ~1,200 operations per step.
_EXP = """
@JIT
def _exp(x):
    x = D(x)
    n = np.floor(x * D(1.4426950408889634073599) + D(0.5))
    r = x - n * D(6.93145751953125e-1)
    r = r - n * D(1.42860682030941723212e-6)
    rr = r * r
    px = r * (
        (D(1.26177193074810590878e-4) * rr + D(3.02994407707441961300e-2)) * rr
        + D(9.99999999999999999910e-1)
    )
    qx = (
        (D(3.00198505138664455042e-6) * rr + D(2.52448340349684104192e-3)) * rr
        + D(2.27265548208155028766e-1)
    ) * rr + D(2.00000000000000000009e0)
    p = D(1.0) + D(2.0) * (px / (qx - px))
    nc = max(n, D(-1022.0))
    scale = BITS((np.int64(nc) + np.int64(1023)) << np.int64(52))
    return F(p * scale if x > D(-708.0) else D(0.0))
"""

_TRIG = """
@JIT
def _sin(x):
    q, ps, pc = _reduce(x)
    s = pc if (q == F(1.0)) or (q == F(3.0)) else ps
    return -s if (q >= F(2.0)) != (x < F(0.0)) else s


@JIT
def _cos(x):
    q, ps, pc = _reduce(x)
    s = ps if (q == F(1.0)) or (q == F(3.0)) else pc
    return -s if (q == F(1.0)) or (q == F(2.0)) else s
"""

#: (The elementary functions are plain numba functions: LLVM inlines them into the lane loop;
#: numba's ``inline="always"`` gave the same speed and compiled in 22 s against 16 s, float32,
#: 2026-12-02 05:56 UTC, load 3.6.)

#: Flights per block, the lane loop's trip count: one AVX2 vector of float32 (two of float64).
#: 8, 16 and 32 ran at the same rate within the noise for 65,536 float32 flights (282-462 k/s,
#: 381-523 k/s, 342-493 k/s, interleaved in one process, 2026-12-02 06:09 UTC, load 3.6-4.2),
#: while one flight costs a whole block: 36-63 µs of kernel time at 8 against 71-138 at 16.
BLOCK = 8


def module_source(dtype_name: str, setup, step, block: int = BLOCK) -> str:
    """Source of the lane kernel module for one dtype, generated from the jaxprs of ``setup``
    ``(controls (3,), k 17-tuple) -> (control terms 4-tuple, derived 16-tuple)`` and ``step``
    ``(q, v, cq, cv (4,) each, ctl, d, h, branchless) -> (q, v, cq, cv)``: the JAX kernel's
    functions (:func:`mothlab.moth.integrate.lane_setup`, :func:`~mothlab.moth.integrate.lane_step`)."""
    import jax
    import jax.numpy as jnp

    dtype = np.dtype(dtype_name)
    fns = {"sin": "_sin", "cos": "_cos", "exp": "_exp"}
    with jax.enable_x64(dtype == np.float64):
        z = jnp.zeros((), dtype)
        z4 = jnp.zeros((4,), dtype)
        src_setup, c1 = scalar_source(
            setup, (jnp.zeros((3,), dtype), tuple(z for _ in range(_N_CONST))), "setup"
        )
        # branchless φ-functions: the lane loop has no branch (both branches computed, one
        # selected: the values of the JAX kernel's branch)
        src_step, c2 = scalar_source(
            lambda *a: step(*a, branchless=True),
            (
                z4,
                z4,
                z4,
                z4,
                tuple(z for _ in range(_N_CTL)),
                tuple(z for _ in range(_N_DERIVED)),
                z,
            ),
            "step",
            fns,
        )
    lines = src_step.splitlines()
    ret = lines[-1].strip()
    if not (ret.startswith("return (") and ret.endswith(",)")):
        raise AssertionError("unexpected generated step")
    outs = ret[len("return (") : -2].split(", ")
    if len(outs) != _N_STATE:
        raise AssertionError("unexpected generated step outputs")
    ind = " " * 16
    body = "\n".join(ind + ln[4:] for ln in lines[1:-1])
    B = block
    loads = "\n".join(f"{ind}a{j} = st[b, {j * B} + i]" for j in range(LANE_VALUES))
    stores = "\n".join(f"{ind}st[b, {j * B} + i] = {o}" for j, o in enumerate(outs))
    consts = "\n".join(f"{n} = F({float(v)!r})" for n, v in {**c1, **c2}.items())
    init_d = "\n".join(
        f"            st[b, {(_N_STATE + j) * B} + i] = r[{j}]" for j in range(_N_CTL + _N_DERIVED)
    )
    k_args = ", ".join(f"k[{j}]" for j in range(_N_CONST))
    head = f'''"""Generated by mothlab.moth.lanes.module_source({dtype_name!r}, ..., {B}) from the jaxpr
of mothlab.moth.integrate's step; do not edit (rewritten whenever the step changes)."""
import numba
import numpy as np

from mothlab.moth.lanes import bitcast_intrinsic

BITS = bitcast_intrinsic()
F = np.{dtype_name}
D = np.float64
B = {B}
JIT = numba.njit(cache=True, nogil=True, error_model="numpy")

{consts}
'''
    # st[b] holds block b's lanes, value-major: q0..q3, v0..v3, their compensations, the
    # control terms and the derived constants, B lanes each; the (8,) state is x, ẋ, y, ẏ, θ, θ̇,
    # φ, φ̇, so component c lives in row c // 2 + 4 (c % 2)
    driver = f'''

@JIT
def init(y0, controls, k, st, first, m):
    """Blocks of lane state for flights first … first+m-1 (padding lanes repeat the first)."""
    for b in range(st.shape[0]):
        for i in range(B):
            lane = b * B + i
            src = first + (lane if lane < m else 0)
            r = setup(controls[src, 0], controls[src, 1], controls[src, 2], {k_args})
            for c in range(8):
                st[b, (c // 2 + 4 * (c % 2)) * B + i] = y0[src, c]
            for c in range(8, 16):
                st[b, c * B + i] = 0
{init_d}


@JIT
def advance(st, hs, record, out, first, m, row):
    """Every block through the steps hs; after each step j with record[j] the states go to
    out[first + lane, row], row counting up from ``row``."""
    for b in range(st.shape[0]):
        rr = row
        for j in range(hs.shape[0]):
            a{LANE_VALUES} = hs[j]
            for i in range(B):
{loads}
{body}
{stores}
            if record[j]:
                for i in range(min(B, m - b * B)):
                    for c in range(8):
                        out[first + b * B + i, rr, c] = st[b, (c // 2 + 4 * (c % 2)) * B + i]
                rr += 1
'''
    math_src = _MATH[dtype_name] + _EXP + _TRIG
    return head + math_src + "\n\n@JIT\n" + src_setup + driver


def _cache_dir():
    from mothlab.runtime import compile_cache_dir

    return compile_cache_dir().parent / "lanes"


_BUILD_LOCK = threading.Lock()


def lane_module(dtype_name: str, setup, step, block: int = BLOCK):
    """The compiled lane kernel module for a dtype: its source is written to a file under the
    compile cache (named by the source's hash), so that numba keeps the machine code on disk
    and a second process loads it instead of compiling again. Threads asking at once (the app's
    sessions and jobs) wait for one build instead of each writing and compiling it."""
    with _BUILD_LOCK:
        return _lane_module(dtype_name, setup, step, block)


@lru_cache(maxsize=4)
def _lane_module(dtype_name, setup, step, block):
    import hashlib
    import importlib.util
    import tempfile
    from pathlib import Path

    src = module_source(dtype_name, setup, step, block)
    digest = hashlib.sha256(src.encode()).hexdigest()[:16]
    name = f"mothlab_lanes_{dtype_name}_{block}_{digest}"
    bases = (_cache_dir(), Path(tempfile.gettempdir()) / "mothlab-lanes", None)
    for base in bases:
        if base is None:  # nowhere to keep it: a fresh directory, compiled in this process only
            base = Path(tempfile.mkdtemp(prefix="mothlab-lanes-"))
        path = base / f"{name}.py"
        try:
            base.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_text() != src:
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(src)
                os.replace(tmp, path)  # atomic: a concurrent process reads old or new, whole
            break
        except OSError:
            continue
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # numba's cache finds a function's module by name
    spec.loader.exec_module(module)
    return module
