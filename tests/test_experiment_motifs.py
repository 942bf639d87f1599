"""Experiment-level motif analysis: stored per level in the experiment store, resumable,
cancellable; on a fake experiment object and on a real tiny experiment."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from mothlab.analysis.experiment_motifs import (
    analyse_experiment,
    load_motif_results,
    optimal_summary,
)
from mothlab.analysis.motifs import MOTIFS, count_motifs


class FakeExperiment:
    """The attributes of mothlab.nets.Experiment that the motif analysis uses."""

    def __init__(self, path, n_networks=3, widths=(4, 9, 8, 3), levels=(0.0, 0.5, 0.8), seed=0):
        self.path = path
        zarr.open_group(str(path), mode="w")
        rng = np.random.default_rng(seed)
        self.sparsity_levels = np.asarray(levels)
        self.n_networks = n_networks
        self.layer_sizes = list(widths)
        self.levels_done = len(levels)
        self._m = [[rng.random((n_networks, a, b)) >= s for a, b in zip(widths[:-1], widths[1:])]
                   for s in levels]
        self._b = [[np.ones((n_networks, b), bool) for b in widths[1:]] for _ in levels]
        self.test_loss = np.array([[1e-4] * n_networks, [5e-4] * n_networks,
                                   [[2e-3, 5e-4, 2e-3][i % 3] for i in range(n_networks)]])

    def masks(self, level):
        return self._m[level]

    def bias_masks(self, level):
        return self._b[level]

    def optimal_level(self, threshold=1e-3):
        ok = self.test_loss < threshold
        return np.where(ok.all(0), 2, np.where(ok[:2].all(0), 1, -1))


def test_analysis_is_stored_and_matches_direct_counts(tmp_path):
    exp = FakeExperiment(tmp_path / "exp.zarr")
    assert load_motif_results(exp, "edges") is None
    events = []
    res = analyse_experiment(exp, null="edges", progress=events.append)
    assert res.done.all() and len(events) == 3 * 3
    assert events[-1]["level"] == 2 and events[-1]["network"] == 3
    for level in range(3):
        c = count_motifs(exp.masks(level), exp.bias_masks(level))
        for k in MOTIFS:
            assert (res.counts[k][level] == c[k]).all()
    assert np.isnan(res.z["edges"]).all() and res.undefined["edges"].all()
    again = load_motif_results(str(exp.path), "edges")
    for k in MOTIFS:
        np.testing.assert_array_equal(again.z[k], res.z[k])
    g = zarr.open_group(str(exp.path), mode="r")["motifs/edges"]
    meta = g.attrs["mothlab_motifs"]
    assert meta["settings"]["null"] == "edges" and meta["motifs"] == list(MOTIFS)
    assert all(t is not None for t in meta["timings_s"])
    lvl = res.at_level(1)
    assert lvl.z.shape == (3, len(MOTIFS))
    rows = optimal_summary(exp, res)
    assert {r["motif"] for r in rows} == set(MOTIFS)
    assert rows[MOTIFS.index("bifan")]["n"] == 3


def test_cancel_leaves_prefix_and_resume_completes_it(tmp_path):
    exp = FakeExperiment(tmp_path / "exp.zarr", n_networks=2)
    calls = []

    def cancel():
        return len(calls) >= 3  # after the first network of level 1

    res = analyse_experiment(exp, null="live_nodes", n_random=20, progress=calls.append,
                             cancel=cancel)
    assert res.done.tolist() == [True, False, False]
    seen = []
    res2 = analyse_experiment(exp, null="live_nodes", n_random=20, progress=seen.append)
    assert res2.done.all()
    assert {e["level"] for e in seen} == {1, 2}  # level 0 was not recomputed
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


def test_bad_null_and_missing_store(tmp_path):
    exp = FakeExperiment(tmp_path / "exp.zarr")
    with pytest.raises(ValueError, match="null"):
        analyse_experiment(exp, null="nope")
    with pytest.raises(FileNotFoundError):
        load_motif_results(tmp_path / "missing.zarr")


@pytest.fixture(scope="module")
def tiny_experiment(tmp_path_factory):
    from mothlab.nets import ExperimentConfig, run_experiment

    path = tmp_path_factory.mktemp("tiny") / "tiny.zarr"
    return run_experiment(ExperimentConfig.preset("tiny"), path)


def test_real_tiny_experiment(tiny_experiment):
    exp = tiny_experiment
    res = analyse_experiment(exp, null="edges")
    L = len(exp.sparsity_levels)
    assert res.done.all() and res.z["bifan"].shape == (L, exp.n_networks)
    c = count_motifs(exp.masks(L - 1), exp.bias_masks(L - 1))
    assert (res.counts["biparallel"][L - 1] == c["biparallel"]).all()
    res_b = analyse_experiment(exp.path, null="live_nodes", n_random=30)
    assert res_b.done.all()
    assert load_motif_results(exp.path, "edges") is not None


def test_figures_from_fake_experiment(tmp_path):
    from mothlab.figures.motifs import zscore_distributions, zscore_vs_sparsity

    exp = FakeExperiment(tmp_path / "exp.zarr")
    res = analyse_experiment(exp, null="edges")
    f2 = zscore_distributions(res, "optimal", experiment=exp)
    f3 = zscore_vs_sparsity(res, experiment=exp)
    f2.savefig(tmp_path / "f2.png")
    f3.savefig(tmp_path / "f3.png")
    assert (tmp_path / "f2.png").stat().st_size > 1000 and len(f3.axes) == 2
    with pytest.raises(ValueError, match="experiment"):
        zscore_distributions(res, "optimal")


def test_cli_on_real_tiny_experiment(tiny_experiment, tmp_path, capsys):
    from mothlab.cli import main

    rc = main(["motifs", str(tiny_experiment.path), "--null", "edges", "degrees",
               "--n-random", "20", "--no-progress", "--figures", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0 and "null 'degrees'" in out and "bifan" in out
    assert (tmp_path / "motifs_degrees_fig3.png").exists()
    assert main(["motifs", str(tmp_path / "nope.zarr"), "--no-progress"]) == 2


def test_summary_falls_back_to_near_best_level_when_none_is_optimal(tmp_path):
    from mothlab.analysis.experiment_motifs import summary_levels

    exp = FakeExperiment(tmp_path / "exp.zarr")
    exp.test_loss = np.array([[0.02, 0.02, 0.02], [0.0105, 0.03, 0.011], [0.04, 0.0108, 0.05]])
    res = analyse_experiment(exp, null="edges")
    levels, basis = summary_levels(exp, res)
    assert levels.tolist() == [1, 2, 1] and "10%" in basis
    rows = optimal_summary(exp, res)
    assert rows[0]["basis"] == basis and rows[MOTIFS.index("bifan")]["n"] == 3
