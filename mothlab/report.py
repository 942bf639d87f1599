"""``mothlab report``: an experiment's figures (PNG) and tables on one HTML page.

Built from the analysis API (:func:`mothlab.analysis.sparsity_result`,
:func:`~mothlab.analysis.motif_result`, :func:`~mothlab.analysis.motif_summary`) and the plots of
:mod:`mothlab.plots` rendered with matplotlib — the same definitions the app draws with Bokeh.
Every optimal level is given under both selection rules (:data:`mothlab.analysis.SELECTION_RULES`),
each named; the threshold is the experiment's own unless ``threshold`` says otherwise.
A partial (running or crashed) experiment gives a report of its finished levels.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

import mothlab.analysis as A
from mothlab import plots
from mothlab.data import INPUT_LABELS

#: networks whose node states the ghost/dead table counts at most (each needs its masks)
MAX_NODE_STATE_NETWORKS = 200


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


def _rule_name(rule: str) -> str:
    return f"{rule} rule ({A.SELECTION_RULES[rule]})"


def summary(experiment, threshold: float | None = None) -> dict:
    """Headline numbers: dense median loss, breakdown, optimal counts under each selection rule,
    the share of networks that lost each input at their optimal level (paper's rule)."""
    r = A.sparsity_result(experiment, threshold)
    exp = r.experiment
    out = {
        "networks": r.n_networks,
        "architecture": "-".join(map(str, r.layer_sizes)),
        "levels_done": r.levels_done,
        "levels": len(r.sparsity),
        "complete": exp.complete,
        "as_published": exp.as_published,
        "threshold": r.threshold,
        "dense_median_test_loss": float(r.median[0]) if r.levels_done else None,
        "breakdown_level": r.breakdown_level(),
        "reaching_threshold": r.n_reaching(),
    }
    b = out["breakdown_level"]
    out["breakdown_sparsity"] = float(r.sparsity[b]) if b >= 0 else None
    for rule in A.SELECTION_RULES:
        counts = r.optimal_counts(rule)
        out[f"optimal_counts_{rule}"] = {
            f"{100 * s:g}%": int(c) for s, c in zip(r.sparsity, counts) if c
        }
        out[f"no_optimal_level_{rule}"] = r.n_without(rule)
    conn = r.input_connectivity("paper")  # (n_inputs, n_networks), −1: no optimal level
    cols = conn[:, (conn >= 0).all(axis=0)]
    if cols.size:
        out["inputs_cut_fraction"] = (cols == 0).mean(axis=1).round(3).tolist()
    return out


def _save(element, out_dir: Path, name: str) -> str:
    fig = plots.render(element, "matplotlib")
    fig.savefig(out_dir / name, dpi=110, bbox_inches="tight")
    return name


def _node_state_rows(r, rule: str) -> list[list]:
    opt = r.optimal_level(rule)
    code = {s: A.NODE_STATES.index(s) for s in ("ghost", "dead", "removed")}
    rows = []
    for lv in np.unique(opt[opt >= 0]):
        nets = np.flatnonzero(opt == lv)[:MAX_NODE_STATE_NETWORKS]
        counts = {k: [] for k in code}
        for net in nets:
            hidden = np.concatenate(r.node_states(int(lv), int(net))[1:-1])
            for k, c in code.items():
                counts[k].append(int((hidden == c).sum()))
        rows.append([r.level_label(int(lv)), len(nets), *(float(np.mean(counts[k])) for k in code)])
    return rows


def _motif_section(r, out_dir: Path, rule: str) -> tuple[list[str], list[str]]:
    """Figures and HTML of every null the experiment holds an analysis for."""
    figs, parts = [], []
    level = int(r.level_to_show(rule)[0])
    for null in A.NULLS:
        try:
            res = A.motif_result(r.experiment, null)
        except FileNotFoundError:  # an experiment held in memory: no store, no motif results
            return figs, parts
        if res is None or not np.asarray(res.done).any():
            continue
        label = A.NULL_LABELS.get(null, null)
        parts.append(
            f"<h2>Motifs under the null “{html.escape(label)}”</h2>"
            f"<p>{html.escape(A.NULLS[null])}</p>"
        )
        figs.append(_save(plots.zscore_vs_sparsity(res), out_dir, f"motifs_{null}_vs_sparsity.png"))
        try:
            rows = A.motif_summary(r.experiment, null, rule=rule, threshold=r.threshold)
        except ValueError as err:
            parts.append(
                f"<p class='warn'>No summary at the optimal level: {html.escape(str(err))}</p>"
            )
            done = np.flatnonzero(res.done)
            lv = int(done[np.argmin(np.abs(done - level))])
            figs.append(
                _save(
                    plots.zscore_distributions(res, lv), out_dir, f"motifs_{null}_distributions.png"
                )
            )
            continue
        figs.append(
            _save(
                plots.zscore_distributions(res, None, sparsity_result=r, rule=rule),
                out_dir,
                f"motifs_{null}_distributions.png",
            )
        )
        rows = [x for x in rows if x["n_defined"]]
        if rows:
            parts.append(f"<p>z at {html.escape(rows[0]['basis'])}.</p>")
        parts.append(
            _table(
                ["motif", "networks", "median z", "z > 0", "z < 0"],
                [
                    [
                        A.MOTIF_LABELS.get(x["motif"], x["motif"]),
                        x["n_defined"],
                        f"{x['median_z']:+.2f}",
                        f"{100 * x['frac_positive']:.0f} %",
                        f"{100 * x['frac_negative']:.0f} %",
                    ]
                    for x in rows
                ],
            )
        )
    return figs, parts


# -- the comparison study (issue 12) ---------------------------------------------------------

#: motif z-scores the comparison table shows (all eight are in the z-score figure)
_COMPARE_Z = ("diverging2", "converging2", "bifan", "biparallel")


def compare_csv(path) -> Path | None:
    """The study CSV that ``path`` names (the CSV itself, or a folder holding ``compare.csv``),
    or None when ``path`` is not a comparison store."""
    p = Path(path)
    if p.is_file() and p.suffix == ".csv":
        return p
    if p.is_dir() and (p / "compare.csv").is_file() and not (p / "zarr.json").exists():
        return p / "compare.csv"
    return None


def _paired(rows, task, density, method, ref) -> tuple[int, int, float | None]:
    """Networks of ``method`` with a lower test loss than the same-seed network of ``ref``,
    networks paired, and the two-sided Wilcoxon signed-rank p (None below 6 pairs)."""

    def by_net(m):
        return {
            int(r["network"]): float(r["test_loss"])
            for r in rows
            if r["task"] == task and float(r["density"]) == density and r["method"] == m
        }

    a, b = by_net(method), by_net(ref)
    nets = sorted(set(a) & set(b))
    if not nets:
        return 0, 0, None
    d = np.array([a[i] - b[i] for i in nets])
    p = None
    if len(nets) >= 6 and np.any(d != 0):
        from scipy.stats import wilcoxon

        p = float(wilcoxon(d).pvalue)
    return int((d < 0).sum()), len(nets), p


def _tile(paths, out: Path, cols: int = 2) -> Path:
    """One PNG of ``paths`` side by side, ``cols`` per row (README figures)."""
    from PIL import Image

    ims = [Image.open(p).convert("RGB") for p in paths]
    w, h = max(i.width for i in ims), max(i.height for i in ims)
    rows = -(-len(ims) // cols)
    sheet = Image.new("RGB", (w * min(cols, len(ims)), h * rows), "white")
    for k, im in enumerate(ims):
        sheet.paste(im, ((k % cols) * w, (k // cols) * h))
    sheet.save(out)
    return out


def build_compare_report(study, out_dir=None) -> Path:
    """The report of a comparison study (``mothlab compare``; its CSV or the folder holding
    ``compare.csv``): per task and density, the test loss (and digits accuracy) of every network
    per method, loss against training FLOPs, and the motif z-scores each method ends with —
    the HoloViews builders of :mod:`mothlab.plots` (the one palette) rendered with matplotlib —
    plus a table of medians and paired comparisons (same seeds) against ``static`` and
    ``prune``. Also writes ``sparse_loss.png``, ``sparse_flops.png`` and ``sparse_zscores.png``
    (every task and density side by side, for the README). Returns the path of ``index.html``.
    """
    from mothlab.analysis import sparse_study as SS

    csv_path = compare_csv(study)
    if csv_path is None:
        raise ValueError(
            f"{study} is not a comparison study: give its compare.csv or the folder holding "
            "it (made by `mothlab compare --out DIR`)."
        )
    rows = SS.read_rows(csv_path)
    if not rows:
        raise ValueError(f"{csv_path} has no finished group yet; run `mothlab compare` first.")
    out_dir = Path(out_dir) if out_dir else csv_path.parent / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    keys = sorted({(r["task"], float(r["density"])) for r in rows})
    summ = SS.summary(rows)
    parts = [f"<h1>mothlab comparison study: {html.escape(str(csv_path))}</h1>"]
    parts.append(
        "<p>Sparse from the start (static, SET, RigL, motif-guided and anti-motif masks, motif "
        "masks with degree-preserving SET/RigL) against train-then-prune, every method at "
        "exactly the same number of weights per layer; one row of the CSV per network; the "
        "same seeds (initial weights, batches) for every method, so networks are paired. "
        "FLOPs count sparse arithmetic (6 per live weight per sample; RigL's dense-gradient "
        "passes added). z-scores: null 'same edge count per layer' (exact moments), final "
        "weight masks.</p>"
    )
    figs = {"loss": [], "flops": [], "zscores": []}
    for task, dens in keys:
        tag = f"{task}_{dens:g}"
        parts.append(f"<h2>{html.escape(task)}, density {dens:g}</h2>")
        sub = [x for x in summ if x["task"] == task and x["density"] == dens]
        methods = [m for m in SS.study_methods() if any(x["method"] == m for x in sub)]
        sub = sorted(sub, key=lambda x: methods.index(x["method"]))
        has_acc = any(x["median_accuracy"] is not None for x in sub)
        header = ["method", "networks", "weights", "median test loss", "25 %", "75 %"]
        header += ["median accuracy"] if has_acc else []
        header += ["GFLOPs", *[f"z {A.MOTIF_LABELS.get(k, k)}" for k in _COMPARE_Z]]
        header += ["better than static (paired)", "better than prune (paired)"]
        table = []
        for x in sub:
            row = [
                x["method"],
                x["n"],
                x["weights"],
                x["median_loss"],
                x["q25_loss"],
                x["q75_loss"],
            ]
            if has_acc:
                row.append(x["median_accuracy"])
            row += [x["median_gflops"], *[x[f"median_z_{k}"] for k in _COMPARE_Z]]
            for ref in ("static", "prune"):
                if x["method"] == ref or ref not in methods:
                    row.append("—")
                    continue
                win, n, p = _paired(rows, task, dens, x["method"], ref)
                row.append(f"{win}/{n}" + (f", p = {p:.2g}" if p is not None else ""))
            table.append(row)
        parts.append(_table(header, table))
        names = [_save(plots.compare_distribution(rows, task, dens), out_dir, f"loss_{tag}.png")]
        figs["loss"].append(names[-1])
        if has_acc:
            names.append(
                _save(
                    plots.compare_distribution(rows, task, dens, "test_accuracy"),
                    out_dir,
                    f"accuracy_{tag}.png",
                )
            )
        names.append(_save(plots.compare_flops(rows, task, dens), out_dir, f"flops_{tag}.png"))
        figs["flops"].append(names[-1])
        names.append(_save(plots.compare_zscores(rows, task, dens), out_dir, f"zscores_{tag}.png"))
        figs["zscores"].append(names[-1])
        parts += [f'<figure><img src="{f}" alt="{f}"></figure>' for f in names]
    for kind, names in figs.items():
        _tile([out_dir / n for n in names], out_dir / f"sparse_{kind}.png")
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:2px 8px;text-align:right}img{max-width:100%}"
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>comparison study</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def build_report(
    experiment, out_dir=None, threshold: float | None = None, rule: str = "paper"
) -> Path:
    """Write the report of ``experiment`` (an Experiment or a path) into ``out_dir`` (default:
    ``<experiment>-report`` beside it); return the path of ``index.html``. A comparison study
    (its ``compare.csv`` or the folder holding it) gets :func:`build_compare_report`.

    ``threshold``: None → the experiment's own. ``rule``: the selection rule the figures at "the
    optimal level" use (:data:`mothlab.analysis.SELECTION_RULES`); the tables give both.
    """
    if isinstance(experiment, (str, Path)) and compare_csv(experiment) is not None:
        return build_compare_report(experiment, out_dir)
    if rule not in A.SELECTION_RULES:
        raise ValueError(f"rule must be one of {list(A.SELECTION_RULES)}, got {rule!r}")
    r = A.sparsity_result(experiment, threshold)
    exp = r.experiment
    if r.levels_done == 0:
        raise ValueError(
            f"{exp.path} has no finished level yet; wait for the first level or resume the run."
        )
    out_dir = (
        Path(out_dir) if out_dir else Path(exp.path).with_name(Path(exp.path).stem + "-report")
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    level, network = r.level_to_show(rule)
    figs = [_save(plots.loss_vs_sparsity(r, level=level), out_dir, "loss_vs_sparsity.png")]
    figs += [
        _save(plots.optimal_histogram(r, rl), out_dir, f"optimal_sparsity_{rl}.png")
        for rl in A.SELECTION_RULES
    ]
    figs.append(
        _save(plots.input_heatmap(r, level, INPUT_LABELS), out_dir, "input_connectivity.png")
    )
    figs.append(_save(plots.inputs_cut(r, level, INPUT_LABELS), out_dir, "inputs_cut.png"))
    motif_figs, motif_parts = _motif_section(r, out_dir, rule)

    s = summary(exp, r.threshold)
    done = r.levels_done
    parts = [f"<h1>mothlab experiment: {html.escape(Path(exp.path).name)}</h1>"]
    if exp.as_published:
        parts.append(
            '<p class="warn"><b>AS PUBLISHED:</b> this run reproduces defects 1–6 of '
            "the original code on purpose: "
            + html.escape("; ".join(exp.header.get("published_defects", [])))
            + "</p>"
        )
    if not exp.complete:
        parts.append(f'<p class="warn">Unfinished: {done} of {len(r.sparsity)} levels done.</p>')
    cfg = exp.config
    dev = exp.header.get("device", {})
    parts.append(
        _table(
            ["field", "value"],
            [
                ["architecture", s["architecture"]],
                ["networks", s["networks"]],
                ["activation / init", f"{cfg.activation} / {cfg.init}"],
                ["optimizer", f"{cfg.optimizer}, lr {cfg.learning_rate:g}, batch {cfg.batch_size}"],
                ["pruning", f"{cfg.pruning}, biases: {cfg.bias_pruning}"],
                ["dataset", exp.header.get("dataset", {}).get("path", "in memory")],
                ["device", f"{dev.get('kind')} × {dev.get('n_devices')}"],
                [
                    "run time (s)",
                    exp.header.get(
                        "run_seconds", sum(x["seconds"] for x in exp.header.get("timings", []))
                    ),
                ],
                [
                    "threshold",
                    f"{r.threshold:g}"
                    + (" (the experiment's)" if threshold is None else " (given)"),
                ],
                ["dense median test loss", s["dense_median_test_loss"]],
                [
                    "networks under the threshold at some level",
                    f"{s['reaching_threshold']} of {r.n_networks}",
                ],
                *[
                    [f"no optimal level, {_rule_name(rl)}", f"{r.n_without(rl)} networks"]
                    for rl in A.SELECTION_RULES
                ],
                [
                    "breakdown (median back over threshold)",
                    "—"
                    if s["breakdown_sparsity"] is None
                    else f"{100 * s['breakdown_sparsity']:g} %",
                ],
            ],
        )
    )
    parts.append(
        f"<p>Shown first (as in the app): {html.escape(r.caption(level, network, rule))}"
        f" — {html.escape(r.level_to_show(rule).reason)}.</p>"
    )
    parts += [f'<figure><img src="{f}" alt="{f}"></figure>' for f in figs]
    parts.append("<h2>Loss and optimally sparse networks per level</h2>")
    parts.append(
        "<p>Selection rules: "
        + "; ".join(
            f"<b>{html.escape(k)}</b>: {html.escape(v)}" for k, v in A.SELECTION_RULES.items()
        )
        + ".</p>"
    )
    counts = {rl: r.optimal_counts(rl) for rl in A.SELECTION_RULES}
    parts.append(
        _table(
            [
                "level",
                "sparsity" if r.method == "prune" else "where in training (density)",
                "median test loss",
                "25 %",
                "75 %",
                "networks at a step cap",
                *[f"optimally sparse ({rl} rule)" for rl in A.SELECTION_RULES],
            ],
            [
                [
                    i,
                    r.level_label(i),
                    r.median[i],
                    r.q25[i],
                    r.q75[i],
                    int(r.capped[i]),
                    *[int(counts[rl][i]) for rl in A.SELECTION_RULES],
                ]
                for i in range(done)
            ],
        )
    )
    for rl in A.SELECTION_RULES:
        t1 = r.table1(rl)
        parts.append(
            f"<h2>Table 1: remaining weights at the optimal level, {_rule_name(rl)} "
            f"({len(t1['networks'])} networks)</h2>"
        )
        parts.append(
            _table(
                ["layer", "weights", "mean left", "variance", "min", "max"],
                [
                    [
                        t1["layers"][l],
                        int(t1["total"][l]),
                        t1["mean"][l],
                        t1["var"][l],
                        t1["min"][l],
                        t1["max"][l],
                    ]
                    for l in range(len(t1["layers"]))
                ],
            )
        )
    conn = r.input_connectivity(rule)
    cols = conn[:, (conn >= 0).all(axis=0)]
    if cols.size:
        parts.append(
            f"<h2>Input connectivity at the optimal level, {_rule_name(rule)} "
            f"(Fig 5; {cols.shape[1]} networks)</h2>"
        )
        parts.append(
            _table(
                ["input", "mean connections", "sd", "networks with input cut"],
                [
                    [
                        INPUT_LABELS[j],
                        float(cols[j].mean()),
                        float(cols[j].std()),
                        f"{int((cols[j] == 0).sum())} / {cols.shape[1]}",
                    ]
                    for j in range(cols.shape[0])
                ],
            )
        )
        parts.append(
            f"<h2>Ghost and dead hidden nodes at the optimal level, {_rule_name(rule)}"
            f"</h2><p>Per network (at most {MAX_NODE_STATE_NETWORKS} networks per "
            "level), from mothlab.analysis node states.</p>"
        )
        parts.append(
            _table(
                ["level", "networks", "ghost (mean)", "dead (mean)", "removed with them (mean)"],
                _node_state_rows(r, rule),
            )
        )
    parts += motif_parts
    parts += [f'<figure><img src="{f}" alt="{f}"></figure>' for f in motif_figs]
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:auto}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:2px 8px;text-align:right}img{max-width:100%}.warn{color:#a00}"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>"
        f"{html.escape(Path(exp.path).name)}</title><style>{style}</style></head><body>"
        f"{''.join(parts)}</body></html>"
    )
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
