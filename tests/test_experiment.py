"""The experiment runner: store layout, resume after cancel, bad configs, sharding, as-published."""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mothlab.nets import ExperimentConfig, load_experiment, run_experiment
from mothlab.nets.experiment import optimal_level_from
from mothlab.nets.pruning import n_kept
from mothlab.progress import Cancelled


def _split(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.5, 0.5, (n, 10)).astype(np.float32)
    y = np.stack([np.sin(3 * x[:, i]) * 0.3 + 0.1 * x[:, i + 1] for i in range(7)], 1)
    return x, y.astype(np.float32)


DATA = {"train": _split(300, 0), "val": _split(80, 1), "test": _split(100, 2)}


def _config(**kw):
    # a warm-up + cosine schedule continued across levels: resume must restore its step count
    base = dict(
        widths=[6, 5],
        n_networks=3,
        schedule=[0.0, 0.5, 0.8],
        learning_rate=1e-2,
        batch_size=16,
        chunk_steps=20,
        es_window=20,
        es_every=10,
        max_steps_per_level=60,
        eval_batch=64,
        train_eval_samples=100,
        threshold=0.02,
        lr_schedule="warmup_cosine",
        lr_warmup_steps=10,
        lr_restart="continued",
    )
    base.update(kw)
    return ExperimentConfig(**base)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    out = tmp_path_factory.mktemp("exp") / "full.zarr"
    return run_experiment(_config(), out, data=DATA)


def test_store_contents_nested_masks_and_losses(full):
    exp = load_experiment(full.path)
    assert exp.complete and exp.levels_done == 3 and exp.n_networks == 3
    assert exp.layer_sizes == [10, 6, 5, 7]
    assert exp.test_loss.shape == (3, 3) and np.isfinite(exp.test_loss).all()
    prev = None
    for i, s in enumerate(exp.sparsity_levels):
        masks, weights = exp.masks(i), exp.weights(i)
        for m, w in zip(masks, weights):
            assert m.dtype == bool and m.shape == w.shape and m.shape[0] == 3
            assert (m.sum((1, 2)) == n_kept(m.shape[1] * m.shape[2], s)).all()
            assert (w[~m] == 0).all() and (w[m] != 0).mean() > 0.9
        if prev is not None:
            assert all(not (m & ~p).any() for m, p in zip(masks, prev))
        prev = masks
        for mb, b in zip(exp.bias_masks(i), exp.biases(i)):
            assert (mb.sum(1) == n_kept(mb.shape[1], s)).all() and (b[~mb] == 0).all()
    assert exp.optimal_level(0.02).shape == (3,)
    h = exp.loss_history(0)
    assert h["val"].shape[1] == 3 and h["steps"][0] == 20
    assert exp.header["counting_rule"] and exp.header["seeds"]["experiment"] == 0
    assert not exp.as_published and "AS PUBLISHED" not in repr(exp)


def test_cancel_then_resume_equals_uninterrupted(full, tmp_path):
    out = tmp_path / "resumed.zarr"
    calls = {"n": 0}

    def cancel():  # stop in the middle of level 1 (the 2nd level)
        calls["n"] += 1
        return calls["n"] == 5

    with pytest.raises(Cancelled, match="resume"):
        run_experiment(_config(), out, data=DATA, cancel=cancel)
    part = load_experiment(out)
    assert not part.complete and 0 < part.levels_done < 3
    assert np.isnan(part.test_loss[part.levels_done :]).all()
    with pytest.raises(ValueError, match="not done yet"):
        part.masks(2)
    with pytest.raises(ValueError, match="different config"):
        run_experiment(_config(seed=5), out, data=DATA)
    res = run_experiment(_config(), out, data=DATA)
    assert res.complete
    for name in ("test_loss", "val_loss", "train_loss", "steps"):
        np.testing.assert_array_equal(getattr(res, name), getattr(full, name))
    for i in range(3):
        for a, b in zip(res.weights(i) + res.masks(i), full.weights(i) + full.masks(i)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(widths=[]), "at least one hidden layer"),
        (dict(schedule=[0.0, 0.5, 0.3]), "strictly increasing"),
        (dict(schedule=[0.0, 1.0]), r"outside \[0, 1\)"),
        (dict(schedule=[-0.1, 0.5]), r"outside \[0, 1\)"),
        (dict(threshold=0.0), "threshold must be > 0"),
    ],
)
def test_bad_configs_refused(kw, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        run_experiment(_config(**kw), tmp_path / "x.zarr", data=DATA)


def test_mismatched_dataset_refused(tmp_path):
    bad = dict(DATA, train=(DATA["train"][0][:, :9], DATA["train"][1]))
    with pytest.raises(ValueError, match="9 inputs"):
        run_experiment(_config(), tmp_path / "x.zarr", data=bad)


def test_optimal_level_rules():
    losses = np.array(
        [
            [1e-4, 1e-4, 1e-4, 2e-3],
            [1e-4, 2e-3, 1e-4, 1e-4],
            [1e-4, 1e-4, 2e-3, 1e-4],
            [1e-4, np.nan, 1e-4, 1e-4],
            [2e-3, 1e-4, 1e-4, 1e-4],
        ]
    ).T  # (L=4 levels, 5 networks)
    assert optimal_level_from(losses, 1e-3).tolist() == [2, 0, 1, 0, -1]
    # the original rule (defect 5): the last level under threshold, whatever came before
    assert optimal_level_from(losses, 1e-3, rule="last").tolist() == [2, 3, 3, 3, 3]


def test_presets_validate():
    for name in ("paper", "small", "classroom", "tiny", "tensorflow"):
        cfg = ExperimentConfig.preset(name).validate()
        assert cfg.layer_sizes[0] == 10 and cfg.layer_sizes[-1] == 7
    assert ExperimentConfig.preset("small").n_networks >= 16
    assert ExperimentConfig.preset("tensorflow").optimizer == "rmsprop"
    with pytest.raises(ValueError, match="unknown preset"):
        ExperimentConfig.preset("huge")
    cfg = ExperimentConfig.preset("tiny")
    assert (
        ExperimentConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))).to_dict() == cfg.to_dict()
    )


def test_as_published_flag_in_header(tmp_path):
    exp = run_experiment(
        _config(as_published=True, schedule=[0.0, 0.5]), tmp_path / "p.zarr", data=DATA
    )
    assert exp.as_published and exp.header["as_published"] is True
    assert len(exp.header["published_defects"]) == 6 and "AS PUBLISHED" in repr(exp)


def test_sharded_over_four_cpu_devices(full, tmp_path):
    script = textwrap.dedent(f"""
        import jax, numpy as np, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        assert len(jax.local_devices()) == 4, jax.local_devices()
        from test_experiment import DATA, _config
        from mothlab.nets import run_experiment
        exp = run_experiment(_config(), {str(tmp_path / "sharded.zarr")!r}, data=DATA)
        np.save({str(tmp_path / "loss.npy")!r}, exp.test_loss)
        print(exp.header["n_padded"], exp.header["device"]["n_devices"])
    """)
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu"
    )
    r = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split()[-2:] == ["4", "4"]  # 3 networks padded to 4, on 4 devices
    loss = np.load(tmp_path / "loss.npy")
    # same networks, same seeds: the sharded run agrees with the single-device one
    # (not bit-identical across device counts: XLA's partitioned kernels round differently;
    # measured relative difference ~1e-7)
    np.testing.assert_allclose(loss, full.test_loss, rtol=1e-4)


def test_cli_config_from_preset_flags_and_file(tmp_path):
    from mothlab.cli import build_parser
    from mothlab.cli.train import build_config

    cfg_file = tmp_path / "c.json"
    cfg_file.write_text(json.dumps({"widths": [20, 10], "n_networks": 5}))
    p = build_parser()
    a = p.parse_args(
        [
            "train",
            "--preset",
            "small",
            "--out",
            "x.zarr",
            "--n-networks",
            "48",
            "--schedule",
            "0,0.5,0.9",
            "--widths",
            "30-30-8",
        ]
    )
    cfg = build_config(a)
    assert cfg.n_networks == 48 and cfg.schedule == [0.0, 0.5, 0.9] and cfg.widths == [30, 30, 8]
    assert cfg.learning_rate == ExperimentConfig.preset("small").learning_rate
    cfg = build_config(p.parse_args(["train", "--config", str(cfg_file), "--out", "y.zarr"]))
    assert cfg.widths == [20, 10] and cfg.n_networks == 5
    with pytest.raises(ValueError, match="strictly increasing"):
        build_config(
            p.parse_args(
                ["train", "--preset", "tiny", "--out", "z.zarr", "--schedule", "0,0.5,0.5"]
            )
        )


def test_progress_events_capped_networks_and_the_split_api(tmp_path):
    from mothlab.nets.experiment import open_run, train_level, write_level
    from mothlab.progress import Progress

    events = []
    # es_window 40 > the 40-step cap: the stop rule can never fire, every network is capped
    cfg = _config(max_steps_per_level=40, es_window=40, schedule=[0.0, 0.5])
    exp = run_experiment(cfg, tmp_path / "c.zarr", data=DATA, progress=events.append)
    assert all(isinstance(e, Progress) for e in events)
    assert events[0].fraction == 0.0 and events[-1].fraction == 1.0
    fr = [e.fraction for e in events]
    assert all(b >= a for a, b in zip(fr, fr[1:])), fr
    chunks = [e.payload for e in events if e.payload.get("losses") is not None]
    assert {
        "level",
        "n_levels",
        "sparsity",
        "step",
        "losses",
        "train_losses",
        "stopped",
        "eta_s",
        "capped",
    } <= set(chunks[0])
    assert all(c["eta_s"] is None for c in chunks if c["level"] == 0)  # no honest ETA yet
    assert all(c["eta_s"] is not None for c in chunks if c["level"] == 1)
    assert exp.capped.shape == (2, 3) and exp.capped.all()
    assert chunks[-1]["capped"] == 3 and "3 at the step cap" in events[-2].message
    assert [t["capped"] for t in exp.header["timings"]] == [3, 3]
    # the parts compose to the same run; the last level's optimizer state is dropped at the end
    run = open_run(cfg, tmp_path / "parts.zarr", data=DATA)
    for i in range(run.n_levels):
        write_level(run, train_level(run, i))
    assert run.levels_done == 2
    np.testing.assert_array_equal(load_experiment(tmp_path / "parts.zarr").test_loss, exp.test_loss)
    assert "opt" not in exp._g["levels/1"] and "opt" not in exp._g["levels/0"]


def test_progress_fraction_is_proportional_to_the_step_budget(tmp_path):
    # the dense level has 6x the steps of a pruned one; es_window = the dense cap, so no stop
    # rule fires and every level runs to its cap: the fraction must then be exactly (steps
    # done) / (step budget), 120 / 160 after the dense level (the old level count said 1/3)
    events = []
    cfg = _config(
        schedule=[0.0, 0.5, 0.8],
        dense_max_steps=120,
        max_steps_per_level=20,
        es_window=120,
        lr_schedule="cosine",
        lr_restart="per_level",
    )
    run_experiment(cfg, tmp_path / "p.zarr", data=DATA, progress=events.append)
    fr = [e.fraction for e in events]
    assert fr[0] == 0.0 and fr[-1] == 1.0
    assert all(b >= a for a, b in zip(fr, fr[1:])), fr
    budget, caps = 160, [120, 20, 20]
    chunks = [e for e in events if e.payload.get("losses") is not None]
    for e in chunks:
        lv = e.payload["level"]
        done = sum(caps[:lv]) + e.payload["step"]
        # tolerance: 1e-9 (float round-off); a level that stops early would count whole
        assert abs(e.fraction - done / budget) < 1e-9, (lv, e.payload["step"], e.fraction)
    after_dense = [e.fraction for e in chunks if e.payload["level"] == 1]
    assert after_dense and min(after_dense) > 120 / budget


def test_as_published_keeps_biases_at_the_dense_level(tmp_path):
    exp = run_experiment(
        _config(as_published=True, schedule=[0.0, 0.15]), tmp_path / "b.zarr", data=DATA
    )
    assert all(m.all() for m in exp.bias_masks(0)) and all(m.all() for m in exp.masks(0))
    for m in exp.masks(1):  # the original's cutoff keeps one weight fewer than the exact rule
        assert (m.sum((1, 2)) <= n_kept(m.shape[1] * m.shape[2], 0.15) - 1).all()


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--widths=-5"], "widths"),
        (["--widths", "50-0"], "at least 1"),
        (["--learning-rate", "inf"], "learning_rate must be a finite number"),
        (["--learning-rate", "nan"], "learning_rate must be a finite number"),
        (["--learning-rate", "0"], "learning_rate must be more than 0"),
        (["--n-networks", "2.5"], "n_networks must be a whole number"),
        (["--es-rule", "sometimes"], "invalid choice"),
    ],
)
def test_cli_flags_refuse_bad_values(argv, match, capsys):
    from mothlab.cli import build_parser

    with pytest.raises(SystemExit) as err:
        build_parser().parse_args(["train", "--out", "x.zarr", *argv])
    assert err.value.code == 2
    assert re.search(match, capsys.readouterr().err)


@pytest.mark.parametrize(
    "content, match",
    [
        ("[1, 2]", "must hold a JSON object.*got a list"),
        ('{"n_networks": 4, "colour": "red"}', r"unknown fields \['colour'\]"),
        ("{bad json", "not valid JSON"),
        ('{"learning_rate": "fast"}', "invalid configuration.*learning_rate"),
    ],
)
def test_cli_config_file_refused_in_one_line(content, match, tmp_path):
    f = tmp_path / "c.json"
    f.write_text(content)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mothlab",
            "train",
            "--config",
            str(f),
            "--out",
            str(tmp_path / "o.zarr"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=os.getcwd()),
    )
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and re.search(match, r.stderr), r.stderr


def test_non_finite_config_numbers_refused_naming_the_field():
    with pytest.raises(ValueError, match="learning_rate must be a finite number"):
        ExperimentConfig.preset("tiny", learning_rate=float("inf")).validate()
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        ExperimentConfig.preset("tiny", threshold=float("nan")).validate()


def test_cli_flags_are_generated_from_the_config(capsys):
    from mothlab.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = capsys.readouterr().out
    for field in ExperimentConfig.param:
        if field != "name":
            assert "--" + field.replace("_", "-") in text, field
    assert "warm-up over lr_warmup_steps" in text  # the param's doc is the help text
    assert "``" not in text and ":class:" not in text  # plain words, not reST
