"""``mothlab report``: an experiment's figures (PNG) and tables on one HTML page.

``build_report(experiment, out_dir)`` writes ``loss_vs_sparsity.png``, ``loss_distribution.png``,
``input_connectivity.png`` (+ the motif figures when the experiment holds motif results) and
``index.html`` (summary, optimal counts per level, Table 1, input connectivity, ghost/dead nodes).
A partial (running or crashed) experiment gives a report of its finished levels.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np


def _fmt(v, digits=3):
    if v is None:
        return "—"
    if isinstance(v, float | np.floating):
        return "—" if not np.isfinite(v) else f"{v:.{digits}g}"
    return html.escape(str(v))


def _table(header, rows) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def summary(exp, threshold: float | None = None) -> dict:
    """Headline numbers: dense median loss, breakdown, optimal counts, θ̇₀ connectivity."""
    from mothlab.analysis import sparsity as sp

    t = sp._threshold(exp, threshold)
    tab = sp.loss_table(exp, "test")
    counts = sp.optimal_counts(exp, t)
    out = {"networks": exp.n_networks, "architecture": "-".join(map(str, exp.layer_sizes)),
           "levels_done": exp.levels_done, "levels": len(exp.sparsity_levels),
           "complete": exp.complete, "as_published": exp.as_published, "threshold": t,
           "dense_median_test_loss": float(tab["median"][0]) if exp.levels_done else None,
           "breakdown_level": sp.breakdown_level(exp, t),
           "optimal_counts": {f"{100 * s:.0f}%": int(c)
                              for s, c in zip(counts["sparsity"], counts["count"]) if c},
           "no_optimal_level": counts["none"]}
    b = out["breakdown_level"]
    out["breakdown_sparsity"] = float(exp.sparsity_levels[b]) if b >= 0 else None
    if exp.levels_done and (counts["optimal_level"] >= 0).any():
        conn = sp.input_connectivity(exp, "optimal")
        rows = conn[(conn >= 0).all(axis=1)]
        out["inputs_cut_fraction"] = (rows == 0).mean(axis=0).round(3).tolist()
    return out


def _motif_figures(exp, out_dir: Path) -> list[str]:
    """Motif figures when motif results exist (written by the motif engineer's module)."""
    names = []
    try:
        from mothlab.analysis.experiment_motifs import load_motif_results
        from mothlab.figures import motifs as mf
    except Exception:  # noqa: BLE001 - motif analysis is optional for a report
        return names
    for null in ("edges", "live_nodes", "degrees"):
        try:
            res = load_motif_results(exp, null)
        except Exception:  # noqa: BLE001
            res = None
        if res is None:
            continue
        for fname, fn in (("zscore_distributions", getattr(mf, "zscore_distributions", None)),
                          ("zscore_vs_sparsity", getattr(mf, "zscore_vs_sparsity", None))):
            if fn is None:
                continue
            try:
                fig = fn(res, experiment=exp)
                name = f"motifs_{null}_{fname}.png"
                fig.savefig(out_dir / name, dpi=120)
                names.append(name)
            except Exception:  # noqa: BLE001 - one failing figure must not sink the report
                continue
    return names


def build_report(experiment, out_dir=None, threshold: float | None = None) -> Path:
    """Write the report of ``experiment`` (an Experiment or a path) into ``out_dir`` (default:
    ``<experiment>-report`` beside it); return the path of ``index.html``."""
    from mothlab.analysis import sparsity as sp
    from mothlab.data import INPUT_LABELS
    from mothlab.figures import sparsity as fs

    exp = sp._exp(experiment)
    out_dir = Path(out_dir) if out_dir else exp.path.with_name(exp.path.stem + "-report")
    out_dir.mkdir(parents=True, exist_ok=True)
    if exp.levels_done == 0:
        raise ValueError(f"{exp.path} has no finished level yet; wait for the first level or "
                         "resume the run.")
    t = sp._threshold(exp, threshold)
    figs = []
    for name, fn in (("loss_vs_sparsity.png", lambda: fs.loss_vs_sparsity(exp, threshold=t)),
                     ("loss_distribution.png", lambda: fs.loss_distribution(exp, threshold=t)),
                     ("input_connectivity.png", lambda: fs.input_connectivity(exp))):
        fn().savefig(out_dir / name, dpi=120)
        figs.append(name)
    figs += _motif_figures(exp, out_dir)

    s = summary(exp, t)
    tab = sp.loss_table(exp, "test")
    counts = sp.optimal_counts(exp, t)
    done = exp.levels_done
    parts = [f"<h1>mothlab experiment: {html.escape(exp.path.name)}</h1>"]
    if exp.as_published:
        parts.append('<p class="warn"><b>AS PUBLISHED:</b> this run reproduces defects 1–6 of '
                     "the original code on purpose: "
                     + html.escape("; ".join(exp.header.get("published_defects", []))) + "</p>")
    if not exp.complete:
        parts.append(f'<p class="warn">Unfinished: {done} of {len(exp.sparsity_levels)} levels '
                     "done.</p>")
    cfg = exp.config
    dev = exp.header.get("device", {})
    parts.append(_table(["field", "value"], [
        ["architecture", s["architecture"]], ["networks", s["networks"]],
        ["activation / init", f"{cfg.activation} / {cfg.init}"],
        ["optimizer", f"{cfg.optimizer}, lr {cfg.learning_rate:g}, batch {cfg.batch_size}"],
        ["pruning", f"{cfg.pruning}, biases: {cfg.bias_pruning}"],
        ["dataset", exp.header.get("dataset", {}).get("path", "in memory")],
        ["device", f"{dev.get('kind')} × {dev.get('n_devices')}"],
        ["run time (s)", exp.header.get("run_seconds", sum(x["seconds"] for x in
                                                          exp.header.get("timings", [])))],
        ["threshold", t], ["dense median test loss", s["dense_median_test_loss"]],
        ["breakdown (median back over threshold)", "—" if s["breakdown_sparsity"] is None
         else f"{100 * s['breakdown_sparsity']:.0f} %"],
        ["no optimal level", f"{s['no_optimal_level']} networks"]]))
    parts += [f'<figure><img src="{f}" alt="{f}"></figure>' for f in figs]
    parts.append("<h2>Loss and optimally sparse networks per level</h2>")
    from mothlab.nets.experiment import optimal_level_from

    last = optimal_level_from(tab["loss"][:done], t, rule="last")
    last_counts = np.bincount(last[last >= 0], minlength=done)
    parts.append("<p>Optimally sparse: the sparsest level with it and every denser level under "
                 "the threshold (paper's rule). Also shown: the sparsest level under the "
                 "threshold whatever the denser levels did (useful when the dense networks are "
                 "still undertrained).</p>")
    parts.append(_table(["level", "sparsity %", "median test loss", "25 %", "75 %",
                         "optimally sparse", "sparsest under threshold"],
                        [[i, f"{100 * tab['sparsity'][i]:.0f}", tab["median"][i], tab["q25"][i],
                          tab["q75"][i], int(counts["count"][i]), int(last_counts[i])]
                         for i in range(done)]))
    rw = sp.remaining_weights(exp, threshold=t)
    parts.append(f"<h2>Table 1: remaining weights at the optimal level "
                 f"({len(rw['networks'])} networks)</h2>")
    parts.append(_table(["layer", "weights", "mean left", "variance", "min", "max"],
                        [[rw["layers"][l], int(rw["total"][l]), rw["mean"][l], rw["var"][l],
                          rw["min"][l], rw["max"][l]] for l in range(len(rw["layers"]))]))
    if (counts["optimal_level"] >= 0).any():
        conn = sp.input_connectivity(exp, "optimal")
        rows = conn[(conn >= 0).all(axis=1)]
        parts.append("<h2>Input connectivity at the optimal level (Fig 5)</h2>")
        parts.append(_table(["input", "mean connections", "sd", "networks with input cut"],
                            [[INPUT_LABELS[j], float(rows[:, j].mean()), float(rows[:, j].std()),
                              f"{int((rows[:, j] == 0).sum())} / {len(rows)}"]
                             for j in range(conn.shape[1])]))
        gd_rows = []
        for lvl in np.unique(counts["optimal_level"][counts["optimal_level"] >= 0]):
            nets = np.flatnonzero(counts["optimal_level"] == lvl)
            gd = sp.ghost_dead_nodes([m[nets] for m in exp.masks(int(lvl))],
                                     [b[nets] for b in exp.bias_masks(int(lvl))])
            gd_rows.append([f"{100 * exp.sparsity_levels[lvl]:.0f} %", len(nets),
                            float(np.mean([g.sum(1).mean() for g in gd["ghost"]])),
                            float(np.mean([d.sum(1).mean() for d in gd["dead"]])),
                            float(np.mean(gd["n_removed"]))])
        parts.append("<h2>Ghost and dead hidden nodes at the optimal level</h2>")
        parts.append(_table(["level", "networks", "ghost per layer (mean)",
                             "dead per layer (mean)", "removed in all (fixed point)"], gd_rows))
    style = ("body{font-family:sans-serif;max-width:1000px;margin:auto}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
             "padding:2px 8px;text-align:right}img{max-width:100%}.warn{color:#a00}")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(exp.path.name)}"
            f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>")
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
