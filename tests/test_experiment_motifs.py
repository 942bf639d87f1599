"""Experiment-level motif analysis: stored per level in the experiment store (through
mothlab.store), resumable, cancellable with Cancelled; old stores read under the new null names;
summaries at the optimal level state their networks and refuse below the minimum."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from mothlab import store
from mothlab.analysis import MIN_NETWORKS, motif_result, motif_summary, sparsity_result
from mothlab.analysis.experiment_motifs import analyse_experiment, load_motif_results
from mothlab.analysis.motifs import MOTIFS, count_motifs
from mothlab.progress import Cancelled, Progress


class FakeExperiment:
    """The attributes of mothlab.nets.Experiment that the motif analysis uses, over a real
    (empty) experiment store."""

    def __init__(self, path, n_networks=3, widths=(4, 9, 8, 3), levels=(0.0, 0.5, 0.8), seed=0):
        self.path = path
        store.create_store(path, "experiment", {})
        rng = np.random.default_rng(seed)
        self.sparsity_levels = np.asarray(levels)
        self.n_networks = n_networks
        self.layer_sizes = list(widths)
        self.levels_done = len(levels)
        self._m = [
            [rng.random((n_networks, a, b)) >= s for a, b in zip(widths[:-1], widths[1:])]
            for s in levels
        ]
        self._b = [[np.ones((n_networks, b), bool) for b in widths[1:]] for _ in levels]
        # paper's rule: network 0 → level 1, network 1 → level 2, network 2 → level 1
        self.test_loss = np.array(
            [
                [1e-4] * n_networks,
                [5e-4] * n_networks,
                [[2e-3, 5e-4, 2e-3][i % 3] for i in range(n_networks)],
            ]
        )

    def masks(self, level):
        return self._m[level]

    def bias_masks(self, level):
        return self._b[level]


def test_analysis_is_stored_through_the_store_and_matches_direct_counts(tmp_path):
    exp = FakeExperiment(tmp_path / "exp.zarr")
    assert load_motif_results(exp, "edges_live_nodes") is None
    events = []
    res = analyse_experiment(exp, null="edges_live_nodes", progress=events.append)
    assert all(isinstance(e, Progress) for e in events)
    assert events[0].fraction == 0.0 and events[-1].fraction == 1.0
    fr = [e.fraction for e in events]
    assert fr == sorted(fr)  # monotone over the whole analysis
    last_net = [e for e in events if e.payload.get("network") == 3]
    assert last_net[-1].payload["level"] == 2 and last_net[-1].payload["n_levels"] == 3
    for level in range(3):
        c = count_motifs(exp.masks(level), exp.bias_masks(level))
        for k in MOTIFS:
            assert (res.counts[k][level] == c[k]).all()
    assert np.isnan(res.z["edges"]).all() and res.undefined["edges"].all()
    assert res.n_networks == 3 and res.null == "edges_live_nodes"
    again = motif_result(str(exp.path), "edges_live_nodes")
    for k in MOTIFS:
        np.testing.assert_array_equal(again.z[k], res.z[k])
    root, _ = store.open_store(exp.path, "experiment", mode="r")
    g, meta = store.open_subgroup(root, "motifs/edges_live_nodes", "motifs")
    assert meta["settings"]["null"] == "edges_live_nodes" and meta["motifs"] == list(MOTIFS)
    assert all(t is not None for t in meta["timings_s"]) and meta["complete"] is True
    assert res.at_level(1).z.shape == (3, len(MOTIFS))
    # the old name is accepted and means the same null
    assert motif_result(exp, "edges").null == "edges_live_nodes"


def test_whole_layer_null_differs_from_live_node_null(tmp_path):
    exp = FakeExperiment(tmp_path / "exp.zarr", n_networks=2)
    live = analyse_experiment(exp, null="edges_live_nodes")
    whole = analyse_experiment(exp, null="edges_whole_layer")
    # at 80 % sparsity ghost/dead removal shrinks the live layers, so the means differ
    assert not np.allclose(live.mean["chain3"][2], whole.mean["chain3"][2])
    np.testing.assert_array_equal(live.counts["bifan"], whole.counts["bifan"])
    assert whole.settings["n_random"] == 0  # exact moments, no sampling


def test_cancel_raises_cancelled_leaves_prefix_and_resume_completes_it(tmp_path):
    exp = FakeExperiment(tmp_path / "exp.zarr", n_networks=2)
    events = []

    def cancel():  # once level 1 has started
        return any(e.payload.get("level") == 1 for e in events)

    with pytest.raises(Cancelled, match="resume"):
        analyse_experiment(
            exp, null="live_nodes", n_random=20, progress=events.append, cancel=cancel
        )
    res = load_motif_results(exp, "live_nodes")
    assert res.done.tolist() == [True, False, False]
    seen = []
    res2 = analyse_experiment(exp, null="live_nodes", n_random=20, progress=seen.append)
    assert res2.done.all()
    assert {e.payload["level"] for e in seen if "level" in e.payload} == {1, 2}  # 0 kept
    np.testing.assert_array_equal(res2.z["bifan"][0], res.z["bifan"][0])
    with pytest.raises(ValueError, match="other settings"):
        analyse_experiment(exp, null="live_nodes", n_random=30)
    res3 = analyse_experiment(exp, null="live_nodes", n_random=30, overwrite=True)
    assert res3.settings["n_random"] == 30


def test_incomplete_experiment_analyses_its_finished_levels(tmp_path):
    exp = FakeExperiment(tmp_path / "exp.zarr")
    exp.levels_done = 2
    res = analyse_experiment(exp, null="degrees", n_random=10)
    assert res.done.tolist() == [True, True, False]
    exp.levels_done = 3
    res = analyse_experiment(exp, null="degrees", n_random=10)
    assert res.done.all()


def test_old_store_layout_reads_as_edges_live_nodes(tmp_path):
    """Stores written before the rename hold motifs/edges with the header "mothlab_motifs"."""
    exp = FakeExperiment(tmp_path / "exp.zarr", n_networks=2)
    new = analyse_experiment(exp, null="edges_live_nodes")
    root, _ = store.open_store(exp.path, "experiment")
    old = root.require_group("motifs/edges")
    for f in ("counts", "mean", "sd", "z", "ci_low", "ci_high", "undefined", "done"):
        src = root[f"motifs/edges_live_nodes/{f}"]
        old.create_array(f, data=np.asarray(src[...]))
    old.attrs["mothlab_motifs"] = {
        "schema_version": 1,
        "motifs": list(MOTIFS),
        "settings": {"null": "edges", "analytic": True, "chains": "paths"},
        "sparsity_levels": [0.0, 0.5, 0.8],
    }
    del root["motifs/edges_live_nodes"]
    got = load_motif_results(exp, "edges_live_nodes")
    assert got is not None and got.null == "edges_live_nodes"
    np.testing.assert_array_equal(got.z["bifan"], new.z["bifan"])
    assert got.at_level(0).method["bifan"] == "analytic"


def test_motif_summary_states_networks_and_refuses_below_minimum(tmp_path):
    exp = FakeExperiment(tmp_path / "exp.zarr", n_networks=6)
    res = analyse_experiment(exp, null="edges_live_nodes")
    rows = motif_summary(exp, "edges_live_nodes", rule="paper")
    bifan = rows[MOTIFS.index("bifan")]
    opt = np.array([1, 2, 1, 1, 2, 1])  # from the hand-made losses, paper's rule
    want = res.z["bifan"][opt, np.arange(6)]
    assert bifan["n_networks"] == bifan["n_defined"] == 6 and bifan["levels"] == [1, 2]
    assert rows[MOTIFS.index("edges")]["n_defined"] == 0  # the edge count is fixed: no z
    assert math.isclose(bifan["median_z"], float(np.median(want)))
    assert "6 of 6 networks" in bifan["basis"] and "paper" in bifan["basis"]
    # "sparsest" rule: every network's sparsest level under the threshold
    rows_s = motif_summary(exp, "edges", rule="sparsest")
    assert rows_s[0]["rule"] == "sparsest" and rows_s[0]["null"] == "edges_live_nodes"
    # only two networks reach the threshold at the dense level → refuse below the minimum
    exp.test_loss = np.array([[1e-4, 1e-4, 2e-3, 2e-3, 2e-3, 2e-3]] * 3)
    with pytest.raises(ValueError, match=rf"only 2 of 6 networks.*at least {MIN_NETWORKS}"):
        motif_summary(exp, "edges_live_nodes")
    assert motif_summary(exp, "edges_live_nodes", min_networks=2)[0]["n_networks"] == 2
    with pytest.raises(ValueError, match="no motif analysis"):
        motif_summary(exp, "degrees")


def test_bad_null_and_missing_store(tmp_path):
    exp = FakeExperiment(tmp_path / "exp.zarr")
    with pytest.raises(ValueError, match="null"):
        analyse_experiment(exp, null="nope")
    with pytest.raises(FileNotFoundError):
        load_motif_results(tmp_path / "missing.zarr")


def test_real_tiny_experiment(tiny_experiment, tmp_path):
    # a copy: the session's tiny experiment is shared, and other tests expect it unanalysed
    tiny_experiment = Path(shutil.copytree(tiny_experiment, tmp_path / "tiny.zarr"))
    from mothlab.nets import load_experiment

    exp = load_experiment(tiny_experiment)
    res = analyse_experiment(exp, null="edges_whole_layer")
    L = len(exp.sparsity_levels)
    assert res.done.all() and res.z["bifan"].shape == (L, exp.n_networks)
    c = count_motifs(exp.masks(L - 1), exp.bias_masks(L - 1))
    assert (res.counts["biparallel"][L - 1] == c["biparallel"]).all()
    assert load_motif_results(tiny_experiment, "edges_whole_layer") is not None


def test_figures_from_fake_experiment(tmp_path):
    from mothlab import plots

    exp = FakeExperiment(tmp_path / "exp.zarr")
    res = analyse_experiment(exp, null="edges_live_nodes")
    f2 = plots.render(
        plots.zscore_distributions(res, None, sparsity_result=sparsity_result(exp)), "matplotlib"
    )
    f3 = plots.render(plots.zscore_vs_sparsity(res), "matplotlib")
    f2.savefig(tmp_path / "f2.png")
    assert (tmp_path / "f2.png").stat().st_size > 1000 and len(f3.axes) == 1


def test_cli_on_real_tiny_experiment(tiny_experiment, tmp_path, capsys):
    tiny_experiment = Path(shutil.copytree(tiny_experiment, tmp_path / "tiny.zarr"))
    from mothlab.cli import main

    rc = main(
        [
            "motifs",
            str(tiny_experiment),
            "--null",
            "edges_live_nodes",
            "degrees",
            "--n-random",
            "20",
            "--no-progress",
            "--min-networks",
            "1",
            "--figures",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "null 'degrees'" in out and "bifan" in out
    assert "networks have an optimal level under the 'paper' rule" in out
    assert (tmp_path / "motifs_degrees_fig3.png").exists()
    assert main(["motifs", str(tmp_path / "nope.zarr"), "--no-progress"]) == 2
