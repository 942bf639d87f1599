"""Z-scores: analytic vs sampled, undefined where the null has no variance, seeds, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mothlab.analysis.motifs import MOTIFS, count_motifs
from mothlab.analysis.zscores import ZScores, zscores


def net(seed=0, n=3, widths=(5, 12, 10, 4), p=0.3):
    rng = np.random.default_rng(seed)
    masks = [rng.random((n, a, b)) < p for a, b in zip(widths[:-1], widths[1:])]
    biases = [rng.random((n, b)) < 0.5 for b in widths[1:]]
    return masks, biases


def test_analytic_edges_zscores_and_undefined_edge_count():
    masks, biases = net()
    z = zscores(masks, biases, null="edges")
    assert isinstance(z, ZScores) and z.z.shape == (3, len(MOTIFS))
    assert z.n_random == 0 and set(z.method.values()) == {"analytic"}
    e = z.column("edges")
    assert z.undefined[:, e].all() and np.isnan(z.z[:, e]).all()  # edge count is fixed
    assert not z.undefined[:, z.column("bifan")].any()
    c = count_motifs(masks, biases)
    assert (z.counts[:, z.column("bifan")] == c["bifan"]).all()
    ok = ~z.undefined
    with np.errstate(divide="ignore", invalid="ignore"):
        assert np.allclose(z.z[ok], ((z.counts - z.mean) / z.sd)[ok])
    assert np.array_equal(z.ci_low[ok], z.z[ok])  # exact moments: no sampling uncertainty
    text = repr(z)
    assert "undefined" in text and "bifan" in text
    d = z.to_dict()
    assert d["z"][0][e] is None  # NaN is not written as a number


def test_sampled_edges_agree_with_analytic():
    masks, biases = net(seed=1, n=1)
    za = zscores(masks, biases, null="edges")
    zs = zscores(masks, biases, null="edges", analytic=False, n_random=3000, seed=3)
    ok = ~za.undefined[0]
    assert np.allclose(zs.mean[0, ok], za.mean[0, ok], rtol=0.05)
    assert np.allclose(zs.sd[0, ok], za.sd[0, ok], rtol=0.1)
    # the bootstrap interval contains the exact z for most motifs
    inside = (zs.ci_low[0, ok] <= za.z[0, ok]) & (za.z[0, ok] <= zs.ci_high[0, ok])
    assert inside.mean() >= 0.6


@pytest.mark.parametrize("null", ["live_nodes", "degrees", "as_published"])
def test_sampled_nulls_run_seeded_and_flag_fixed_counts(null):
    masks, biases = net(seed=2, n=2)
    a = zscores(masks, biases, null=null, n_random=60, seed=7)
    b = zscores(masks, biases, null=null, n_random=60, seed=7)
    np.testing.assert_array_equal(a.z, b.z)
    assert a.n_random == 60 and set(a.method.values()) == {"sampled"}
    if null in ("live_nodes", "degrees"):
        assert a.undefined[:, a.column("edges")].all()
    if null == "degrees":  # degree sums and chain2 = Σ indeg·outdeg are fixed by the null
        for k in ("diverging2", "converging3", "chain2"):
            assert a.undefined[:, a.column(k)].all()
    ok = ~a.undefined
    assert np.isfinite(a.z[ok]).all() and np.isnan(a.z[~ok]).all()
    assert (a.ci_low[ok] <= a.ci_high[ok]).all()


def test_zero_variance_null_reports_undefined_not_number():
    dense = [np.ones((3, 4), bool), np.ones((4, 2), bool)]
    z = zscores(dense, null="edges")
    assert z.undefined.all() and np.isnan(z.z).all()
    assert all(math.isnan(r["median_z"]) for r in z.summary())
    assert "undefined" in repr(z)


def test_pairs_chains_are_sampled_under_analytic_null():
    masks, biases = net(seed=4, n=1)
    z = zscores(masks, biases, null="edges", chains="pairs", n_random=50)
    assert z.method["chain2"] == "sampled" and z.method["bifan"] == "analytic"


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(null="uniform"), "null"),
        (dict(n_random=1, null="live_nodes"), "n_random"),
        (dict(confidence=1.5), "confidence"),
        (dict(chains="x"), "chains"),
    ],
)
def test_bad_arguments(kw, match):
    masks, biases = net(n=1)
    with pytest.raises(ValueError, match=match):
        zscores(masks, biases, **kw)
