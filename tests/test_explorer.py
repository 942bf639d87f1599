"""The explorer, the motifs tab, the plots and the report, checked against the analysis API run
independently (``mothlab.analysis`` on ``load_experiment``), without a server."""

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import mothlab.analysis as A  # noqa: E402
from mothlab import plots  # noqa: E402
from mothlab.ui import common  # noqa: E402


@pytest.fixture(scope="module")
def other_experiment(tmp_path_factory):
    """A second tiny experiment, different from the first (other seed, other widths)."""
    from synthetic import synthetic_splits

    from mothlab.nets import ExperimentConfig, run_experiment

    out = tmp_path_factory.mktemp("other") / "other.zarr"
    cfg = ExperimentConfig.preset(
        "tiny", widths=[6, 5], seed=7, schedule=[0.0, 0.3, 0.6, 0.8], threshold=2e-3
    )
    run_experiment(cfg, out, data=synthetic_splits(seed=3))
    return out


@pytest.fixture
def two_experiments(tmp_path, monkeypatch, tiny_experiment, other_experiment):
    """A fresh process-wide catalog listing copies of both experiments."""
    exp_dir = tmp_path / "experiments"
    exp_dir.mkdir()
    shutil.copytree(tiny_experiment, exp_dir / "tiny.zarr")
    shutil.copytree(other_experiment, exp_dir / "other.zarr")
    monkeypatch.setenv("MOTHLAB_EXPERIMENTS", str(exp_dir))
    monkeypatch.setattr(common, "ASSETS", tmp_path / "no-assets")
    monkeypatch.setattr(common, "_CATALOG", None)
    return exp_dir


def _truth(path):
    from mothlab.nets import load_experiment

    return A.sparsity_result(load_experiment(path))


# -- plots -----------------------------------------------------------------------------------


def _fake_result(threshold=2.5e-3):
    loss = np.array([[5e-4, 6e-4, 8e-4], [2e-3, 9e-4, 7e-4], [4e-2, 3e-3, 2e-3]])
    conn = np.array([[3, 0, 1], [0, 0, 0]])
    return SimpleNamespace(
        sparsity=np.array([0.0, 0.5, 0.9]),
        levels_done=3,
        threshold=threshold,
        loss=loss,
        n_networks=3,
        layer_sizes=(2, 4, 1),
        optimal_counts=lambda rule: np.array([1, 1, 1]),
        optimal_level=lambda rule: np.array([0, 1, 2]),
        input_connectivity=lambda level: conn,
    )


def _threshold_curve(el):
    return next(e for e in el if e.group == "Threshold")


def test_loss_plot_draws_the_experiments_threshold_in_both_backends():
    el = plots.loss_vs_sparsity(_fake_result(2.5e-3), level=1)
    assert set(_threshold_curve(el).dimension_values(1)) == {2.5e-3}
    assert "threshold 0.0025" in el.label
    fig = plots.render(el, "bokeh")
    assert fig.title.text == el.label and type(fig.y_scale).__name__ == "LogScale"
    assert fig.legend and all(lg in fig.right for lg in fig.legend)  # legend outside the data
    mpl = plots.render(el, "matplotlib")
    ax = mpl.axes[0]
    assert ax.get_yscale() == "log" and ax.get_title() == el.label
    ys = [set(line.get_ydata()) for line in ax.get_lines()]
    assert {2.5e-3} in ys


def test_histogram_names_its_rule_and_counts_every_network():
    r = _fake_result()
    for rule, text in A.SELECTION_RULES.items():
        el = plots.optimal_histogram(r, rule)
        assert rule in el.label and text in el.label.replace("\n", " ")
        total = sum(int(sum(b.dimension_values(1))) for b in el)
        assert total == r.n_networks


def test_heatmap_has_a_colour_bar_and_a_full_title():
    from bokeh.models import ColorBar

    el = plots.input_heatmap(_fake_result(), 2, ("a", "b"))
    fig = plots.render(el, "bokeh")
    assert any(isinstance(m, ColorBar) for m in fig.right)
    assert fig.title.text == el.label and "hidden layer 1 at 90% sparsity" in el.label
    np.testing.assert_array_equal(el.dimension_values("connections"), [3, 0, 1, 0, 0, 0])
    mpl = plots.render(el, "matplotlib")
    assert len(mpl.axes) == 2  # the map and its colour bar


def test_every_colour_comes_from_the_one_palette():
    allowed = set(plots.PALETTE) | set(plots.COLORS.values())
    used = {st["color"] for st in plots.STYLE.values() if "color" in st}
    assert used <= allowed
    for m in A.MOTIFS:
        assert plots.motif_style(m)["color"] in allowed


# -- the explorer ------------------------------------------------------------------------------


def test_graph_data_against_masks():
    from mothlab.ui.explorer import EDGE_COLORS, EDGE_KINDS, graph_data

    m0 = np.array([[1, 0, 0], [1, 1, 0]], bool)  # hidden node 2 has no input: ghost
    m1 = np.array([[1], [0], [1]], bool)  # hidden node 1 has no output: dead
    w0 = np.where(m0, np.array([[0.5, 0, 0], [-1.0, 2.0, 0]]), 0)
    w1 = np.where(m1, np.array([[1.0], [0], [-3.0]]), 0)
    g = graph_data([m0, m1], [w0, w1], A.node_states([m0, m1]))
    assert g["n_edges"] == [3, 2] and g["n_shown"] == [3, 2]
    assert list(g["nodes"]["state"][2:5]) == ["live", "dead", "ghost"]
    colors = [EDGE_COLORS[k] for k in g["edges"]["kind"]]
    # edges into the dead node and out of the ghost node are grey; others by sign
    assert colors.count(plots.COLORS["grey"]) == 2
    assert plots.COLORS["blue"] in colors and plots.COLORS["vermillion"] in colors
    assert [EDGE_KINDS[k] for k in g["edges"]["kind"][:3]] == list(EDGE_KINDS)


def test_graph_data_subsamples_huge_layers_keeping_the_strongest():
    from mothlab.ui.explorer import graph_data

    rng = np.random.default_rng(0)
    m = [rng.random((40, 300)) < 0.9, rng.random((300, 7)) < 0.9]
    w = [np.where(mm, rng.normal(size=mm.shape), 0) for mm in m]
    g = graph_data(m, w, max_edges=1000)
    assert g["n_edges"][0] == m[0].sum() and g["n_shown"][0] == 1000
    drawn = np.sort(g["edges"]["width"][:1000])
    strongest = np.sort(np.abs(w[0][m[0]]))[-1000:]
    np.testing.assert_allclose(drawn, 0.5 + 2.0 * strongest / np.abs(w[0]).max())


def test_explorer_opens_where_the_story_is(two_experiments):
    from mothlab.ui.explorer import ExplorerView

    view = ExplorerView()
    view.experiment = "tiny"
    truth = _truth(two_experiments / "tiny.zarr")
    level, network = truth.level_to_show("paper")
    assert (view.level, view.network) == (level, f"network {network}")
    assert truth.caption(level, network, "paper") in view.caption.object.replace("&#x27;", "'")
    assert len(view.src_edges.data["x0"]) == sum(
        int(m[network].sum()) for m in truth.experiment.masks(level)
    )


def test_switching_experiments_never_mixes_them(two_experiments):
    from mothlab.ui.explorer import ExplorerView

    view = ExplorerView()
    seen = []
    for label in ("tiny", "other", "tiny", "other"):
        view.experiment = label
        truth = _truth(two_experiments / f"{label}.zarr")
        for level in range(truth.levels_done):
            view.level_slider.value = level
            net = int(view.network.split()[-1])
            caption = view.caption.object.replace("&#x27;", "'")
            assert truth.caption(level, net, view.rule) in caption, (label, level)
            masks = truth.experiment.masks(level)
            assert len(view.src_edges.data["x0"]) == sum(int(m[net].sum()) for m in masks)
            assert len(view.src_nodes.data["x"]) == sum(truth.layer_sizes)
            heat = view.inputs._sources[0].data["zvalues"]
            np.testing.assert_array_equal(heat, truth.input_connectivity(level).ravel())
            seen.append((label, level))
    assert len(seen) == 2 * (3 + 4)


def test_a_slider_step_moves_the_plots_as_a_fresh_render_would(two_experiments):
    from mothlab.ui.explorer import ExplorerView, glyph_source

    view = ExplorerView()
    view.experiment = "other"
    for level in (0, 3, 1):
        view.level = level
        heat, cut = view.inputs.elements(view.shown)
        for fig, el in ((view.inputs.heat.object, heat), (view.inputs.cut.object, cut)):
            fresh = glyph_source(plots.render(el)).data
            for k, v in glyph_source(fig).data.items():
                np.testing.assert_array_equal(np.asarray(v), np.asarray(fresh[k]), err_msg=k)
            assert fig.title.text == el.label
        assert view.losses.marker.location == pytest.approx(100 * view.shown.sparsity)


def test_both_selection_rules_are_named_where_the_optimum_is_shown(two_experiments):
    from mothlab.ui.explorer import ExplorerView

    view = ExplorerView()
    view.experiment = "tiny"
    for rule, text in A.SELECTION_RULES.items():
        view.rule = rule
        assert text in view.losses.hist.object.title.text.replace("\n", " ")
        assert text in view.losses.summary.object
        assert f"'{rule}' rule" in view.caption.object.replace("&#x27;", "'")


def test_a_new_threshold_recounts_the_optimal_levels(two_experiments):
    from mothlab.ui.explorer import ExplorerView

    view = ExplorerView()
    view.experiment = "other"
    assert view.threshold == 2e-3  # the experiment's own
    view.threshold = 5e-2
    truth = A.sparsity_result(two_experiments / "other.zarr", threshold=5e-2)
    bars = view.losses.hist.object
    assert f"{int(truth.optimal_counts('paper').sum())} of {truth.n_networks}" in bars.title.text
    assert view.shown.opened.result.threshold == 5e-2
    view.experiment = "tiny"  # another experiment opens at its own threshold
    assert view.threshold == _truth(two_experiments / "tiny.zarr").threshold


def test_all_networks_is_a_choice_with_its_own_caption(two_experiments):
    from mothlab.ui.explorer import ALL, ExplorerView

    view = ExplorerView()
    view.experiment = "tiny"
    view.network = ALL
    truth = _truth(two_experiments / "tiny.zarr")
    union = sum(int(m.any(0).sum()) for m in truth.experiment.masks(view.level))
    assert f"{union:,} edges kept by at least one network" in view.caption.object


def test_explorer_corrupted_experiment_is_a_message(two_experiments):
    from mothlab.ui.explorer import ExplorerView

    broken = two_experiments / "broken.zarr"
    shutil.copytree(two_experiments / "tiny.zarr", broken)
    chunk = next(
        p for p in sorted((broken / "levels" / "0").rglob("*")) if p.is_file() and "/c/" in str(p)
    )
    chunk.unlink()  # a missing chunk: the store's manifest refuses it on open
    view = ExplorerView()
    view.experiment = "broken"
    assert view.exp is None and view._message.visible
    assert "broken" in view._message.object and view._message.alert_type == "danger"
    view.experiment = "tiny"  # the session keeps working
    assert view.exp is not None and not view._message.visible


# -- the motifs tab ----------------------------------------------------------------------------


@pytest.fixture
def shipped(tmp_path, monkeypatch, tiny_experiment):
    """The tiny experiment as a shipped asset (read-only for mothlab) and an empty experiments
    folder of the user's."""
    assets = tmp_path / "assets"
    assets.mkdir()
    shutil.copytree(tiny_experiment, assets / "tiny.zarr")
    user = tmp_path / "experiments"
    user.mkdir()
    monkeypatch.setenv("MOTHLAB_EXPERIMENTS", str(user))
    monkeypatch.setenv("MOTHLAB_ASSETS", str(assets))
    monkeypatch.setattr(common, "ASSETS", assets)
    monkeypatch.setattr(common, "_CATALOG", None)
    return assets / "tiny.zarr", user


def test_motifs_panel_without_results_offers_analysis_and_names_the_null(two_experiments):
    from mothlab import jobs
    from mothlab.ui.motifs import MotifPanel

    panel = MotifPanel("A", runner=jobs.JobRunner(), owner="me")
    panel.experiment = "tiny"
    assert panel.result is None and panel.run_button.visible
    for null, text in A.NULLS.items():
        panel.null = null
        assert text in panel.null_doc.object.replace("&#x27;", "'")
    with pytest.raises(ValueError):
        panel.n_random = 100_000  # beyond the bounds: refused, not queued


def test_motif_analysis_from_the_tab_is_an_analysis_job_and_fills_the_plots(two_experiments):
    from mothlab import jobs
    from mothlab.ui.motifs import MotifPanel

    runner = jobs.JobRunner()
    panel = MotifPanel("A", runner=runner, owner="session a")
    panel.experiment = "tiny"
    job = panel.start_analysis()
    assert (job.kind, job.pool, job.owner) == ("motifs", "analysis", "session a")
    assert job.wait(120), "motif analysis did not finish"
    assert job.state == "done", job.error
    panel.refresh()
    truth = A.motif_result(two_experiments / "tiny.zarr", panel.null)
    assert panel.result is not None and not panel.run_button.visible
    level = panel.level
    assert np.asarray(truth.done)[level]
    shown = [e for e in plots.zscore_distributions(truth, level) if e.group == "Motif"]
    assert panel.fig_level.object.title.text == plots.zscore_distributions(truth, level).label
    assert sum(len(e) for e in shown) > 0
    assert "null: " + A.NULL_LABELS[panel.null] in panel.fig_sparsity.object.title.text
    panel.at = "each network's optimal level"
    assert A.SELECTION_RULES[panel.rule] in panel.fig_level.object.title.text.replace("\n", " ")
    # another session opening the same experiment finds the stored results at once
    other = MotifPanel("B", runner=runner, owner="session b")
    other.experiment = "tiny"
    assert other.result is not None


def test_analysis_of_a_shipped_store_goes_beside_it_never_into_it(shipped):
    from mothlab import jobs
    from mothlab.ui.motifs import MotifPanel

    asset, user = shipped
    panel = MotifPanel("A", runner=jobs.JobRunner(), owner="me")
    assert panel._entries[panel.experiment] == str(asset)

    def files():  # the session's tiny experiment may carry results of earlier tests: compare
        return {
            p.relative_to(asset): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in asset.rglob("*")
            if p.is_file()
        }

    before = files()
    job = panel.start_analysis()
    assert job.wait(120) and job.state == "done", job.error
    panel.refresh()
    assert files() == before  # the shipped store is untouched
    assert A.motif_result(user / "tiny.zarr", panel.null) is not None
    assert Path(panel._entries[panel.experiment]) == user / "tiny.zarr"
    assert panel.result is not None


def test_a_running_analysis_is_cancelled_by_its_owner_only(two_experiments):
    import threading

    from mothlab import jobs
    from mothlab.ui.motifs import MotifPanel

    runner = jobs.JobRunner()
    release = threading.Event()

    def busy(progress, cancel):  # holds the analysis pool's one worker
        release.wait(30)

    hold = runner.submit(busy, name="busy", kind="motifs", owner="x", pool="analysis")
    panel = MotifPanel("A", runner=runner, owner="me")
    panel.experiment = "tiny"
    panel.null = "degrees"
    job = panel.start_analysis()  # queued behind the busy job: the analysis pool has one worker
    stranger = MotifPanel("B", runner=runner, owner="someone else")
    stranger.job = job
    stranger.cancel_analysis()
    assert job.state == "queued" and stranger._message.visible
    panel.cancel_analysis()
    assert job.wait(10) and job.state == "cancelled"
    release.set()
    hold.wait(10)
    panel.refresh()
    assert not panel.cancel_button.visible and "cancelled" in panel._message.object


# -- the report --------------------------------------------------------------------------------


def test_report_draws_the_experiments_threshold_and_names_both_rules(
    other_experiment, tmp_path, monkeypatch
):
    from mothlab import report

    drawn = []
    render = plots.render
    monkeypatch.setattr(
        plots, "render", lambda el, *a, **k: drawn.append(el) or render(el, *a, **k)
    )
    index = report.build_report(other_experiment, tmp_path / "rep", rule="sparsest")
    text = index.read_text()
    truth = _truth(other_experiment)
    assert truth.threshold == 2e-3  # the experiment's own, not the paper's 1e-3
    loss = next(el for el in drawn if el.group == "LossPlot")
    assert set(_threshold_curve(loss).dimension_values(1)) == {2e-3}
    assert "0.002 (the experiment&#x27;s)" in text or "0.002 (the experiment's)" in text
    for rule, desc in A.SELECTION_RULES.items():
        assert html_escape(desc) in text and f"optimally sparse ({rule} rule)" in text
        assert (tmp_path / "rep" / f"optimal_sparsity_{rule}.png").stat().st_size > 1000
    level, network = truth.level_to_show("sparsest")
    assert html_escape(truth.caption(level, network, "sparsest")) in text


def html_escape(s):
    import html

    return html.escape(s)
