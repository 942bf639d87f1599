"""mothlab.analysis.sparsity, the sparsity figures and the report, on hand-made experiments."""

from pathlib import Path

import numpy as np
import pytest

from mothlab.analysis import sparsity as sp
from mothlab.nets import ExperimentConfig
from mothlab.nets.experiment import optimal_level_from


class FakeExperiment:
    """The Experiment interface over arrays (brute-force checkable)."""

    def __init__(self, masks_per_level, test_loss, bias_masks=None):
        self._m = masks_per_level
        self._b = bias_masks
        self.test_loss = np.asarray(test_loss, float)
        self.val_loss = self.test_loss
        self.train_loss = self.test_loss
        L, n = self.test_loss.shape
        self.n_networks = n
        self.sparsity_levels = np.linspace(0, 0.9, L)
        self.levels_done = L
        self.complete = True
        self.as_published = False
        m0 = masks_per_level[0]
        self.layer_sizes = [m0[0].shape[1]] + [m.shape[2] for m in m0]
        self.config = ExperimentConfig(
            widths=self.layer_sizes[1:-1], schedule=list(self.sparsity_levels)
        )
        self.path = Path("fake.zarr")
        self.header = {"device": {}, "timings": []}

    def masks(self, level):
        return self._m[level]

    def bias_masks(self, level):
        if self._b is None:
            return [np.ones(m.shape[::2], bool) for m in self._m[level]]
        return self._b[level]

    def optimal_level(self, threshold=1e-3):
        return optimal_level_from(self.test_loss, threshold)


def _random_masks(rng, sizes, n, density):
    return [rng.random((n, a, b)) < density for a, b in zip(sizes[:-1], sizes[1:])]


@pytest.fixture
def fake():
    rng = np.random.default_rng(0)
    sizes = [10, 6, 5, 7]
    levels = [_random_masks(rng, sizes, 4, d) for d in (1.0, 0.6, 0.3)]
    loss = np.array([[5e-4, 6e-4, 4e-4, 2e-3], [7e-4, 2e-3, 5e-4, 1e-4], [3e-3, 3e-3, 8e-4, 1e-4]])
    return FakeExperiment(levels, loss)


def test_loss_table_and_optimal_counts(fake):
    tab = sp.loss_table(fake)
    np.testing.assert_allclose(tab["median"], np.median(fake.test_loss, axis=1))
    c = sp.optimal_counts(fake, 1e-3)
    assert c["optimal_level"].tolist() == [1, 0, 2, -1]
    assert c["count"].tolist() == [1, 1, 1] and c["none"] == 1
    assert sp.breakdown_level(fake, 1e-3) == 2  # medians 5.5e-4, 6e-4, 1.9e-3
    with pytest.raises(ValueError, match="threshold"):
        sp.optimal_counts(fake, 0.0)


def test_remaining_weights_table1(fake):
    rw = sp.remaining_weights(fake, threshold=1e-3)
    opt = fake.optimal_level(1e-3)
    used = np.flatnonzero(opt >= 0)
    ref = np.array([[fake.masks(opt[i])[l][i].sum() for l in range(3)] for i in used])
    np.testing.assert_array_equal(rw["counts"], ref)
    np.testing.assert_allclose(rw["mean"], ref.mean(0))
    np.testing.assert_allclose(rw["var"], ref.var(0))
    assert rw["total"].tolist() == [60, 30, 35] and rw["layers"][0] == "10→6"
    assert sp.remaining_weights(fake, levels=0)["mean"].tolist() == [60, 30, 35]


def test_input_connectivity_brute_force(fake):
    conn = sp.input_connectivity(fake, 1)
    m0 = fake.masks(1)[0]
    for i in range(4):
        for j in range(10):
            assert conn[i, j] == sum(m0[i, j, k] for k in range(m0.shape[2]))
    opt = sp.input_connectivity(fake, "optimal")
    assert (opt[3] == -1).all() and (opt[1] == 6).all()  # network 1 optimal at the dense level


def test_ghost_dead_nodes():
    # hidden layer 1 node 0: no input (ghost); node 1: no output (dead); node 2 fine
    m = [np.array([[0, 1, 1]], bool), np.array([[1], [0], [1]], bool), np.array([[1]], bool)]
    m = [x[None] for x in m]
    gd = sp.ghost_dead_nodes(m)
    assert gd["ghost"][0][0].tolist() == [True, False, False]
    assert gd["dead"][0][0].tolist() == [False, True, False]
    assert gd["removed"][0][0].tolist() == [True, True, False]


def test_both_selection_rules_on_a_hand_made_loss_table():
    t = 1e-3
    loss = np.array(
        [
            [5e-4, 2e-3, 5e-4, 5e-4, np.nan],
            [2e-3, 5e-4, 5e-4, 5e-4, 5e-4],
            [5e-4, 5e-4, 1e-3, 5e-4, 5e-4],  # 1e-3 itself is not under
            [2e-3, 2e-3, 2e-3, 5e-4, 5e-4],
        ]
    )
    # paper: sparsest level with it and every denser level under the threshold
    assert sp.optimal_levels(loss, t, "paper").tolist() == [0, -1, 1, 3, -1]
    # sparsest: sparsest level under the threshold, whatever came before
    assert sp.optimal_levels(loss, t, "sparsest").tolist() == [2, 2, 1, 3, 3]
    assert set(sp.SELECTION_RULES) == {"paper", "sparsest"}
    with pytest.raises(ValueError, match="rule"):
        sp.optimal_levels(loss, t, "last")


def test_sparsity_result_tables_rules_states_and_caps(fake):
    r = sp.sparsity_result(fake, 1e-3)
    assert r.optimal_level("paper").tolist() == [1, 0, 2, -1]
    assert r.optimal_level("sparsest").tolist() == [1, 0, 2, 2]
    assert r.optimal_counts("paper").tolist() == [1, 1, 1]
    assert r.optimal_counts("sparsest").tolist() == [1, 1, 2]
    assert r.n_without("paper") == 1 and r.n_reaching() == 4 and r.breakdown_level() == 2
    assert r.optimal_sentence("paper") == (
        "3 of 4 networks have an optimal level under the 'paper' rule (sparsest level with it and "
        "every denser level under the threshold 1e-3), median 45 %; 4 of 4 reach the "
        "threshold at some level."
    )
    assert r.optimal_sentence("sparsest").startswith(
        "4 of 4 networks"
    ) and "median 45 %" in r.optimal_sentence("sparsest")
    assert r.capped.tolist() == [0, 0, 0]  # the store predates caps
    with pytest.raises(ValueError, match="read-only"):
        r.loss[0, 0] = 1.0  # shared by every view: frozen
    fake.capped = np.array([[0, 1, 0, 1], [1, 1, 0, 0], [0, 0, 0, 0]], bool)
    assert sp.sparsity_result(fake).capped.tolist() == [2, 2, 0]
    t1 = r.table1("sparsest")
    ref = np.array(
        [[fake.masks(lv)[l][i].sum() for l in range(3)] for i, lv in enumerate([1, 0, 2, 2])]
    )
    np.testing.assert_array_equal(t1["counts"], ref)
    conn = r.input_connectivity(1)
    assert conn.shape == (10, 4)
    np.testing.assert_array_equal(conn, fake.masks(1)[0].sum(axis=2).T)
    assert (r.input_connectivity("paper")[:, 3] == -1).all()


def test_node_states_codes_by_hand():
    m = [np.array([[0, 1, 1, 1]]), np.array([[1], [0], [1], [1]]), np.array([[1]])]
    b = [np.array([1, 0, 0, 0]), np.zeros(1), np.zeros(1)]
    G, D, L, R = sp.GHOST, sp.DEAD, sp.LIVE, sp.REMOVED
    # hidden-1 node 0 has no input edge: a ghost, unless its bias feeds it
    assert sp.node_states(m)[1].tolist() == [G, D, L, L]
    assert sp.node_states(m, b)[1].tolist() == [L, D, L, L]
    # removed: had an input and an output, but its only target was a ghost
    m2 = [np.array([[1, 0]]), np.array([[1, 0], [0, 1]]), np.array([[1], [0]])]
    st = sp.node_states(m2)
    assert st[0].tolist() == [sp.INPUT] and st[-1].tolist() == [sp.OUTPUT]
    assert st[1].tolist() == [L, G] and st[2].tolist() == [L, D]
    m3 = [np.array([[1, 1]]), np.array([[1, 0], [0, 1]]), np.array([[1], [0]])]
    assert sp.node_states(m3)[1].tolist() == [L, R] and sp.NODE_STATES[R] == "removed"


def test_level_to_show_and_caption_are_true(fake):
    r = sp.sparsity_result(fake, 1e-3)
    # paper's optimal levels [1, 0, 2, -1]: lower median level 1, network 0 is optimal there
    shown = r.level_to_show("paper")
    level, net = shown
    assert (level, net) == (1, 0) and "median optimal level" in shown.reason
    left = int(sum(m[0].sum() for m in fake.masks(1)))
    cap = r.caption(level, net)
    assert cap.startswith(
        f"network 0 at {100 * fake.sparsity_levels[1]:.4g} %: {left:,} of 125 weights left"
    )
    assert "test loss 7e-4, under the threshold 1e-3" in cap and "its optimal level" in cap
    assert "over the threshold" in r.caption(2, 0)  # 3e-3 at level 2
    # "sparsest": levels [1, 0, 2, 2] → lower median 1
    assert tuple(r.level_to_show("sparsest")) == (1, 0)
    # no network reaches the threshold: the level of lowest median loss, said so
    fake.test_loss = fake.test_loss + 1.0
    fb = sp.sparsity_result(fake, 1e-3).level_to_show("paper")
    assert fb.level == 0 and "no network reaches the threshold" in fb.reason
    assert fb.network in (0, 1)  # median of 1.0005, 1.0006, 1.0004, 1.002 lies between them


def test_figures_and_report(fake, tmp_path):
    from mothlab import plots
    from mothlab.data import INPUT_LABELS
    from mothlab.report import build_report, summary

    r = sp.sparsity_result(fake)
    for el in (
        plots.loss_vs_sparsity(r),
        plots.optimal_histogram(r, "paper"),
        plots.input_heatmap(r, 1, INPUT_LABELS),
    ):
        plots.render(el, "matplotlib").savefig(tmp_path / "f.png")
        assert (tmp_path / "f.png").stat().st_size > 1000
    index = build_report(fake, tmp_path / "rep")
    text = index.read_text()
    assert "Table 1" in text and "θ̇₀" in text and "loss_vs_sparsity.png" in text
    assert (tmp_path / "rep" / "optimal_sparsity_sparsest.png").exists()
    s = summary(fake)
    assert s["breakdown_level"] == 2 and s["no_optimal_level_paper"] == 1
    fake.as_published = True
    assert "AS PUBLISHED" in build_report(fake, tmp_path / "rep2").read_text()


def test_level_to_show_and_caption_on_a_real_tiny_experiment(tiny_experiment):
    from mothlab.nets import load_experiment

    exp = load_experiment(tiny_experiment)
    r = sp.sparsity_result(tiny_experiment)
    assert r.threshold == exp.config.threshold and r.levels_done == exp.levels_done
    np.testing.assert_array_equal(r.loss, exp.test_loss)
    for rule in sp.SELECTION_RULES:
        level, net = shown = r.level_to_show(rule)
        opt = r.optimal_level(rule)
        if (opt >= 0).any():
            assert opt[net] == level  # a network that is optimally sparse there
        else:
            assert "no network reaches" in shown.reason
        masks = exp.masks(level)
        left = sum(int(m[net].sum()) for m in masks)
        total = sum(m.shape[1] * m.shape[2] for m in masks)
        cap = r.caption(level, net, rule)
        assert cap.startswith(f"network {net} at ") and f"{left:,} of {total:,} weights" in cap
        under = exp.test_loss[level, net] < exp.config.threshold
        assert ("under the threshold" in cap) == bool(under)
        states = r.node_states(level, net)
        assert [len(s) for s in states] == exp.layer_sizes
