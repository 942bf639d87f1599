"""Benchmarks' cross-checks: igraph's motif census equals mothlab's raw counts; the README's
performance section is rebuilt from records."""

import json
from pathlib import Path

import numpy as np
import pytest

from mothlab.analysis.motifs import count_motifs
from mothlab.bench.motifs import IGRAPH_SHAPES, igraph_counts, igraph_graph, pruned_network

#: the machine header of a bench record, for the records these tests make up
MACHINE = {
    "device": "cpu (cpu)",
    "cpu": "x",
    "cores": 2,
    "memory_gib": 24,
    "load_start": [1.0],
    "load_end": [2.0],
    "versions": {"jax": "0"},
    "gpu": "not measured",
}


@pytest.mark.parametrize(
    "widths, sparsity, seed", [((10, 40, 40, 40, 8, 7), 0.8, 0), ((6, 12, 12, 5), 0.5, 1)]
)
def test_igraph_census_equals_raw_counts(widths, sparsity, seed):
    masks = pruned_network(widths, sparsity, seed)
    raw = count_motifs(masks, None, remove_ghost_dead=False)
    g = igraph_graph(masks)
    got = {**igraph_counts(g, 3), **igraph_counts(g, 4)}
    assert set(got) == set(IGRAPH_SHAPES)
    assert got == {k: int(raw[k]) for k in got}
    assert min(got.values()) > 0  # every motif occurs: the comparison is not vacuous


def test_readme_section_rebuilt_from_records(tmp_path):
    from mothlab.bench.readme import replace_section, section

    rec = {
        "bench": "motifs",
        "command": "mothlab bench motifs",
        **MACHINE,
        "date": "2026-12-01 22:00 UTC",
        "table": [
            dict(
                task="exact counts",
                mothlab_s=0.005,
                other_s=0.3,
                ratio=60.0,
                target="",
                note="loops",
            )
        ],
        "summary": "summary: ok",
        "figures": {},
    }
    (tmp_path / "motifs.json").write_text(json.dumps(rec))
    from mothlab.bench import read_records

    text = section(read_records(tmp_path))
    assert "| exact counts | 0.005 | 0.30 | 60× |" in text and "load average at start 1.0" in text
    readme = "# x\n\n## Performance\n\nOLD TEXT\n\n## Development\n\nkeep\n"
    new = replace_section(readme, text)
    assert (
        "OLD TEXT" not in new and new.endswith("## Development\n\nkeep\n") and "summary: ok" in new
    )
    assert np.isfinite(rec["table"][0]["ratio"])


def test_a_bench_without_its_own_renderer_gets_its_table(tmp_path):
    """`bench fly` (and any later bench) is rendered from its record's rows as written."""
    from mothlab.bench import read_records
    from mothlab.bench.readme import section

    rec = json.loads((Path(__file__).parents[1] / "assets/bench/motifs.json").read_text())
    rec.update(
        bench="fly",
        command="mothlab bench fly",
        table=[
            {"method": "Python loop", "flights/s": "0.88", "× Python loop": "1×"},
            {"method": "mothlab", "flights/s": "40.80", "× Python loop": "46×"},
        ],
        summary="summary: 41 closed-loop flights/s",
    )
    (tmp_path / "fly.json").write_text(json.dumps(rec))
    text = section(read_records(tmp_path))
    block = text[text.index("### `mothlab bench fly`") :]
    assert "| method | flights/s | × Python loop |\n|---|---|---|\n" in block
    assert "| mothlab | 40.80 | 46× |" in block and "> summary: 41 closed-loop" in block


def test_simulate_section_states_each_goal(tmp_path):
    """The simulate part of the README section: its rows, ratios and met / not-met goals come from
    the record's figures (a made-up record: numbers here are not measurements)."""
    from mothlab.bench import read_records
    from mothlab.bench.readme import section

    row = dict(method="m", setup="s", flights_per_s=1000.0, worst=1e-6, median=1e-7, compile_s=1.0)
    figures = dict(
        reference_vs_radau_worst=1e-12,
        f32_vs_original=60.0,
        f32_vs_best_peer=30.0,
        best_peer_f32="diffrax Kvaerno5",
        f64_vs_accurate_original=4.0,
        f64_vs_best_peer=3.5,
        best_peer_f64="diffrax Kvaerno5 tight",
        f32_flights_per_s=1000.0,
        f64_flights_per_s=100.0,
        f32_worst=1e-6,
        f64_worst=1e-8,
        original_worst=1e-2,
        single_flight_ms=2.0,
        single_flight_original_ms=1.0,
        curve=[dict(n=1, flights_per_s=10.0), dict(n=64, flights_per_s=500.0)],
    )
    rec = {
        "bench": "simulate",
        "command": "mothlab bench simulate",
        **MACHINE,
        "date": "2026-12-02 04:00 UTC",
        "table": [dict(row, method="diffrax Kvaerno5")],
        "summary": "summary: ok",
        "figures": figures,
    }
    (tmp_path / "simulate.json").write_text(json.dumps(rec))
    text = section(read_records(tmp_path))
    assert "| float32 ≥ 50× the original as it ran | 60× | met |" in text
    assert "| float32 ≥ 40× diffrax at equal error | 30× | not met |" in text
    assert "| one flight at least as fast as numba + odeint | 0.50× its speed | not met |" in text
    assert "| float32 ≥ 20 % of the 2-core CPU's limit" in text and "| 0.0% | not met |" in text
    assert "1: 10, 64: 500" in text
