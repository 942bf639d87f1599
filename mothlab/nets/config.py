"""Configuration of a train-and-prune Monte Carlo experiment (SCIENCE.md §3).

:class:`ExperimentConfig` is a ``param.Parameterized`` class: every field has bounds and docs, so
the CLI, the app and Python share one validated description of an experiment. ``validate()``
checks the things param cannot (schedule order, layer count) with errors that say how to fix them.
"""

from __future__ import annotations

import json
import math
import re

import param

#: Absolute per-layer sparsities of the paper: 0, 15, 25, ..., 85, 90, 91, ..., 98 %.
PAPER_SCHEDULE: tuple[float, ...] = (0.0, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85) + tuple(
    round(0.90 + 0.01 * i, 2) for i in range(9)
)

N_INPUTS = 10
N_OUTPUTS = 7


def zhu_gupta_schedule(
    final: float, n_levels: int, initial: float = 0.0, power: float = 3.0
) -> list[float]:
    """The Zhu–Gupta polynomial schedule ``s_i = s_f + (s_0 - s_f)(1 - i/(n-1))^power``.

    Returns ``n_levels`` sparsities (fractions in [0, 1)), starting at ``initial`` and ending at
    ``final``; rounded to 1e-6 and made strictly increasing (duplicates are dropped).
    """
    if not 0.0 <= initial < final < 1.0:
        raise ValueError(
            f"Zhu–Gupta schedule needs 0 <= initial < final < 1, got initial={initial}"
            f", final={final}; pick sparsities as fractions, e.g. final=0.95."
        )
    if n_levels < 2:
        raise ValueError(f"Zhu–Gupta schedule needs n_levels >= 2, got {n_levels}.")
    out: list[float] = []
    for i in range(n_levels):
        s = final + (initial - final) * (1.0 - i / (n_levels - 1)) ** power
        s = round(s, 6)
        if not out or s > out[-1]:
            out.append(s)
    return out


class ExperimentConfig(param.Parameterized):
    """One Monte Carlo experiment: ``n_networks`` MLPs trained and pruned level by level.

    Layer sizes are ``[10] + widths + [7]`` (the S3 inputs and outputs). Each network ``i`` draws
    its initial weights and its batches from ``(seed, i)`` only, so its result does not depend on
    which other networks are trained beside it (unless ``as_published``).
    """

    widths = param.List(
        default=[400, 400, 400, 16],
        item_type=int,
        doc="Hidden layer widths (at least one hidden layer = two weight layers).",
    )
    activation = param.Selector(
        default="arctan",
        objects=["arctan", "tanh"],
        doc="Hidden activation (paper text: arctan; authors' JAX code: tanh).",
    )
    init = param.Selector(
        default="paper",
        objects=["paper", "glorot", "he"],
        doc="Weight init: paper = N(0,1)/5; glorot/he = normal with the usual "
        "fan scaling. Biases start at 0.",
    )
    n_networks = param.Integer(default=1320, bounds=(1, None), doc="Networks in the ensemble.")
    seed = param.Integer(
        default=0, bounds=(0, 2**31 - 1), doc="Experiment seed; network i uses (seed, i)."
    )
    dataset = param.String(
        default=None,
        allow_None=True,
        doc="Path of a dataset store; None generates one of n_samples.",
    )
    n_samples = param.Integer(
        default=10_000_000,
        bounds=(100, None),
        doc="Samples to generate when dataset is None (20 ms flights).",
    )
    data_seed = param.Integer(
        default=0,
        bounds=(0, 2**31 - 1),
        doc="Seed of generated data, and of the train/val/test split.",
    )
    schedule = param.List(
        default=list(PAPER_SCHEDULE),
        item_type=float,
        doc="Absolute sparsities per level (fractions, increasing, in [0, 1)). "
        "The first level is usually 0 (dense training).",
    )
    pruning = param.Selector(
        default="layerwise",
        objects=["layerwise", "global"],
        doc="Magnitude pruning per layer (paper) or over all layers at once.",
    )
    bias_pruning = param.Selector(
        default="magnitude",
        objects=["magnitude", "none"],
        doc="Prune each layer's biases by their own magnitude at the level's sparsity, or never.",
    )
    optimizer = param.Selector(
        default="adam", objects=["adam", "rmsprop", "sgd"], doc="optax optimizer."
    )
    learning_rate = param.Number(
        default=5e-4,
        bounds=(0, None),
        inclusive_bounds=(False, True),
        doc="Learning rate (the peak of a schedule; paper: 5e-4).",
    )
    retrain_learning_rate = param.Number(
        default=None,
        allow_None=True,
        bounds=(0, None),
        inclusive_bounds=(False, True),
        doc="Learning rate (peak) of the levels after the "
        "first, i.e. retraining after pruning; None: "
        "learning_rate.",
    )
    lr_schedule = param.Selector(
        default="constant",
        objects=["constant", "cosine", "warmup_cosine"],
        doc="Learning-rate schedule: constant (paper), cosine decay to "
        "lr_decay_to times the learning rate, or a linear warm-up "
        "over lr_warmup_steps followed by that cosine decay.",
    )
    lr_decay_to = param.Number(
        default=0.01,
        bounds=(0, 1),
        doc="Final learning rate of a decaying schedule, as a fraction of learning_rate.",
    )
    lr_decay_steps = param.Integer(
        default=None,
        allow_None=True,
        bounds=(1, None),
        doc="Batches over which the schedule decays; None: the level's "
        "step cap (or the sum of all caps when continued).",
    )
    lr_warmup_steps = param.Integer(
        default=0, bounds=(0, None), doc="Warm-up batches of the warmup_cosine schedule."
    )
    lr_restart = param.Selector(
        default="per_level",
        objects=["per_level", "continued"],
        doc="Restart the schedule at every level, or continue it across levels.",
    )
    batch_size = param.Integer(default=128, bounds=(1, None), doc="Training batch size (samples).")
    val_batch_size = param.Integer(
        default=None,
        allow_None=True,
        bounds=(1, None),
        doc="Validation batch per training batch (None: batch_size).",
    )
    threshold = param.Number(default=1e-3, doc="Loss threshold (scaled MSE) of 'optimally sparse'.")
    es_window = param.Integer(
        default=1000,
        bounds=(2, None),
        doc="Early stopping: compare mean val loss of batches "
        "[-window, -window/2) with the last window/2.",
    )
    es_every = param.Integer(
        default=100, bounds=(1, None), doc="Early stopping: check every this many batches."
    )
    es_min_improvement = param.Number(
        default=0.01,
        bounds=(0, 1),
        doc="Early stopping: stop when the relative improvement is below this (paper: 1 %).",
    )
    es_rule = param.Selector(
        default="noise",
        objects=["noise", "paper"],
        doc="Early stopping rule: noise = stop only when the improvement is "
        "below es_min_improvement by more than es_z standard errors of "
        "the two window means; paper = stop when the measured improvement "
        "is below es_min_improvement (fooled by batch noise).",
    )
    es_z = param.Number(
        default=2.0,
        bounds=(0, 10),
        doc="Early stopping (noise rule): how many standard errors of margin.",
    )
    min_steps_per_level = param.Integer(
        default=0, bounds=(0, None), doc="Never stop a level before this many batches."
    )
    max_steps_per_level = param.Integer(
        default=100_000, bounds=(1, None), doc="Hard step limit per level (batches)."
    )
    dense_min_steps = param.Integer(
        default=None,
        allow_None=True,
        bounds=(0, None),
        doc="Never stop the first (dense) level before this many "
        "batches (skips early plateaus); None: "
        "min_steps_per_level.",
    )
    dense_max_steps = param.Integer(
        default=None,
        allow_None=True,
        bounds=(1, None),
        doc="Step limit of the first level (dense training); None: max_steps_per_level.",
    )
    chunk_steps = param.Integer(
        default=500,
        bounds=(1, None),
        doc="Batches per compiled chunk (progress/cancel granularity).",
    )
    eval_batch = param.Integer(
        default=16384, bounds=(1, None), doc="Samples per evaluation pass (memory bound)."
    )
    train_eval_samples = param.Integer(
        default=200_000,
        bounds=(1, None),
        doc="Training samples used to report train loss per level.",
    )
    as_published = param.Boolean(
        default=False,
        doc="Reproduce defects 1-6 of SCIENCE.md §5 on purpose (for comparison only).",
    )
    # ---------------------------------------------- sparse from the start (issue 12; nets.sparse)
    method = param.Selector(
        default="prune",
        objects=["prune", "static", "set", "rigl", "motif", "anti-motif"],
        doc="prune: train dense, then prune level by level (the papers). Sparse from the start, "
        "at `density`: static = a fixed random mask; set = drop the ζ smallest live weights "
        "and regrow at random every `update_every` steps; rigl = regrow where the dense "
        "gradient is largest, ζ cosine-decayed, stopped at `rigl_stop`; motif / anti-motif = "
        "a fixed mask whose motif z-scores match (oppose) `motif_target`.",
    )
    density = param.Number(
        default=0.1,
        bounds=(0.0, 1.0),
        inclusive_bounds=(False, True),
        doc="Sparse methods: fraction of each layer's weights kept (0.1 = 10 "
        "%, i.e. sparsity 90 %). Ignored by prune.",
    )
    allocation = param.Selector(
        default="uniform",
        objects=["uniform", "erdos-renyi"],
        doc="Sparse methods: density per layer, the same in every layer "
        "or Erdős–Rényi (∝ (n_in + n_out)/(n_in·n_out), same total).",
    )
    sparse_steps = param.Integer(
        default=20_000,
        bounds=(1, None),
        doc="Sparse methods: training steps in all (batches); the run is "
        "stored as sparse_steps / update_every levels.",
    )
    update_every = param.Integer(
        default=500,
        bounds=(1, None),
        doc="Sparse methods: steps between topology updates (SET/RigL); "
        "also the steps per stored level.",
    )
    zeta = param.Number(
        default=0.3,
        bounds=(0.0, 1.0),
        doc="SET/RigL: fraction of live weights dropped and regrown per update "
        "(RigL: its initial value, cosine-decayed).",
    )
    rigl_stop = param.Number(
        default=0.75,
        bounds=(0.0, 1.0),
        doc="RigL: stop topology updates after this fraction of sparse_steps.",
    )
    motif_target = param.Dict(
        default=None,
        allow_None=True,
        doc="motif/anti-motif: target z-score per motif (null 'edges'); "
        "None: mothlab.analysis.topology.DEFAULT_TARGET.",
    )

    # ------------------------------------------------------------------ derived
    @property
    def layer_sizes(self) -> list[int]:
        """``[10, *widths, 7]``."""
        return [N_INPUTS, *[int(w) for w in self.widths], N_OUTPUTS]

    @property
    def sparsity_levels(self) -> list[float]:
        return [float(s) for s in self.schedule]

    def validate(self) -> ExperimentConfig:
        """Raise ValueError naming the problem, the allowed range and the fix; return self."""
        for name, p in self.param.objects("existing").items():
            v = getattr(self, name)
            if isinstance(p, param.Number) and v is not None and not math.isfinite(v):
                lo, hi = p.bounds or (None, None)
                raise ValueError(
                    f"{name} must be a finite number (allowed: {_range(lo, hi)}), "
                    f"got {v}; give a number such as {p.default}."
                )
        if len(self.widths) < 1:
            raise ValueError(
                "widths must name at least one hidden layer (a network needs at "
                "least 2 weight layers), e.g. widths=[50, 50, 50, 8]."
            )
        if any(int(w) < 1 for w in self.widths):
            raise ValueError(f"widths must be positive integers, got {self.widths}.")
        sched = self.sparsity_levels
        if not sched:
            raise ValueError("schedule is empty; give at least one sparsity level, e.g. [0.0].")
        for s in sched:
            if not (0.0 <= s < 1.0) or math.isnan(s):
                raise ValueError(
                    f"schedule level {s} is outside [0, 1); levels are fractions of "
                    "pruned weights, e.g. 0.9 for 90 %."
                )
        for a, b in zip(sched, sched[1:]):
            if not b > a:
                raise ValueError(
                    f"schedule must be strictly increasing, got {a} then {b}; "
                    "sort the levels and drop duplicates."
                )
        if not (self.threshold > 0) or not math.isfinite(self.threshold):
            raise ValueError(
                f"threshold must be > 0 (a scaled MSE, paper: 1e-3), got {self.threshold}."
            )
        if self.es_window % 2:
            raise ValueError(
                f"es_window must be even (it is split in two halves), got {self.es_window}."
            )
        return self

    def to_dict(self) -> dict:
        """JSON-safe dict of all parameters (round-trips through :meth:`from_dict`)."""
        d = {k: v for k, v in self.param.values().items() if k != "name"}
        return json.loads(json.dumps(d))

    @classmethod
    def from_dict(cls, d: dict) -> ExperimentConfig:
        known = set(cls.param) - {"name"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config fields {sorted(unknown)}; allowed: {sorted(known)}.")
        return cls(**d)

    @classmethod
    def preset(cls, name: str, **overrides) -> ExperimentConfig:
        """A named configuration, optionally with fields overridden.

        - ``paper``: 1320 networks of 10-400-400-400-16-7, 10 M samples, paper schedule, Adam
          5e-4, batch 128 (SCIENCE.md §3; a GPU job).
        - ``tensorflow``: the paper's TensorFlow setting (RMSprop, batch 4096) at paper widths.
        - ``small``: 16 networks of 10-50-50-50-8-7 on the full schedule (S3 Fig), 200 k flights:
          dense 20 k batches of cosine decay 5e-3 -> 5e-5, pruned levels of 1 000 batches from
          1e-3. Measured 2026-12-02 00:46 UTC on the 2-core CPU (quiet, load 3.0 falling), with
          the dataset and an empty compile cache: 3:56 wall; median dense test loss 5.2e-4; 14 of
          16 optimally sparse under either rule (45 %: 9, 55 %: 5); README "Results on this
          machine".
        - ``classroom``: 8 networks of 10-50-50-50-8-7, 100 k flights, the full schedule: dense
          24 k batches of cosine decay 5e-3 -> 5e-5, pruned levels of 600 batches from 1e-3.
          Measured 2026-12-02 01:35 UTC on the 2-core CPU (quiet, load 2.5 falling), with the
          dataset and an empty compile cache: 1:56 wall; median dense test loss 3.7e-4; 8 of 8
          networks optimally sparse under either rule (all at 45 %); README "Results on this
          machine".
        - ``tiny``: 4 networks of 10-8-8-7, three levels; seconds (tests, app smoke test).
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}.")
        kw = dict(PRESETS[name])
        kw.update(overrides)
        return cls(**kw)


PRESETS: dict[str, dict] = {
    "paper": dict(
        widths=[400, 400, 400, 16],
        n_networks=1320,
        n_samples=10_000_000,
        max_steps_per_level=60_000,
        chunk_steps=1000,
        eval_batch=2048,
    ),
    "tensorflow": dict(
        widths=[400, 400, 400, 16],
        n_networks=1320,
        n_samples=10_000_000,
        optimizer="rmsprop",
        batch_size=4096,
        max_steps_per_level=20_000,
        chunk_steps=500,
        eval_batch=2048,
    ),
    # small/classroom, tuned by measurement on a shared 2-core CPU (README "Results on this
    # machine"): dense training is a fixed 20 k (classroom 24 k) batches of cosine decay
    # 5e-3 -> 5e-5 (measured on 8 networks, dense level only: 20 k batches give a median test
    # loss of 5.5e-4, 7 of 8 under 1e-3; 12 k batches 1.4e-3, 2 of 8; classroom on 100 k
    # flights: 16 k batches 5.5e-4, 6 of 8; 24 k batches 3.7e-4, 8 of 8); each pruned level
    # retrains with a restarted cosine from 1e-3 until the noise-aware stop or its cap.
    # chunk_steps divides every cap (a chunk past a cap is computed and thrown away)
    "small": dict(
        widths=[50, 50, 50, 8],
        n_networks=16,
        n_samples=200_000,
        learning_rate=5e-3,
        lr_schedule="cosine",
        lr_decay_to=0.01,
        retrain_learning_rate=1e-3,
        dense_min_steps=20_000,
        dense_max_steps=20_000,
        max_steps_per_level=1_000,
        es_window=400,
        es_every=100,
        chunk_steps=500,
        eval_batch=8192,
        train_eval_samples=40_000,
    ),
    "classroom": dict(
        widths=[50, 50, 50, 8],
        n_networks=8,
        n_samples=100_000,
        learning_rate=5e-3,
        lr_schedule="cosine",
        lr_decay_to=0.01,
        retrain_learning_rate=1e-3,
        dense_min_steps=24_000,
        dense_max_steps=24_000,
        max_steps_per_level=600,
        chunk_steps=300,
        eval_batch=8192,
        train_eval_samples=10_000,
        es_window=400,
        es_every=100,
    ),
    "tiny": dict(
        widths=[8, 8],
        n_networks=4,
        n_samples=2_000,
        schedule=[0.0, 0.5, 0.9],
        max_steps_per_level=200,
        chunk_steps=100,
        learning_rate=3e-3,
        es_window=100,
        es_every=50,
        eval_batch=1024,
        train_eval_samples=1000,
    ),
}


def _range(lo, hi) -> str:
    if lo is None and hi is None:
        return "any finite number"
    if hi is None:
        return f">= {lo}"
    if lo is None:
        return f"<= {hi}"
    return f"{lo} to {hi}"


def parse_widths(text: str) -> list[int]:
    """Hidden widths from text such as ``"50, 50, 50, 8"`` or ``"50-50-50-8"``: positive whole
    numbers separated by commas, spaces or single dashes (so ``"-5"`` is refused, not read as 5).

    >>> parse_widths("400-400-400-16")
    [400, 400, 400, 16]
    """
    text = str(text)
    if not text.strip():
        raise ValueError("hidden widths are empty; give at least one, e.g. 50, 50, 50, 8.")
    if not re.fullmatch(r"\s*\d+(?:\s*[,\s-]\s*\d+)*\s*", text):
        raise ValueError(
            f"hidden widths must be positive whole numbers separated by commas or "
            f"dashes, e.g. 50, 50, 50, 8 or 50-50-50-8; got {text!r}."
        )
    vals = [int(v) for v in re.findall(r"\d+", text)]
    if any(v < 1 for v in vals):
        raise ValueError(f"hidden widths must be at least 1 node each; got {text!r}.")
    return vals


def parse_schedule(text: str) -> list[float]:
    """Sparsity levels from text: fractions or percentages, e.g. ``"0, 0.5, 90%"``.

    >>> parse_schedule("0, 50%, 0.9")
    [0.0, 0.5, 0.9]
    """
    try:
        vals = [
            float(v.rstrip("%")) / (100 if v.endswith("%") else 1)
            for v in re.split(r"[,\s]+", text.strip())
            if v
        ]
    except ValueError:
        raise ValueError(
            f"the sparsity schedule must be numbers separated by commas (fractions "
            f"like 0.9 or percentages like 90%); got {text!r}."
        ) from None
    if not vals:
        raise ValueError("the sparsity schedule is empty; give sparsities such as 0, 0.5, 0.9.")
    return vals
