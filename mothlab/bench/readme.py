"""``mothlab bench readme``: rebuild the README's "## Performance" section from the JSON records
that ``mothlab bench simulate|train|motifs`` write under ``assets/bench/`` (no figure typed by hand).
"""

from __future__ import annotations

from pathlib import Path

from mothlab.bench import RECORDS, read_records

HEADING = "## Performance"


def register(sub) -> None:
    p = sub.add_parser(
        "readme", help="rebuild README's performance section from the records", description=__doc__
    )
    p.add_argument("--readme", default=str(RECORDS.parents[1] / "README.md"))
    p.add_argument("--records", default=str(RECORDS))
    p.add_argument(
        "--check",
        action="store_true",
        help="only report whether the section is up to date (exit 1 if not)",
    )
    p.set_defaults(func=run)


def _g(x, fmt="{:,.0f}"):
    return "—" if x is None else fmt.format(x)


def _header(rec) -> str:
    load = rec.get("load_start") or []
    return (
        f"`{rec['command']}` — {rec['date']}, {rec['device']} ({rec['cpu']}, {rec['cores']} "
        f"cores, {rec.get('memory_gib', '?')} GiB), load average at start "
        f"{', '.join(map(str, load)) or '?'}, at end {', '.join(map(str, rec.get('load_end') or [])) or '?'}; "
        f"jax {rec['versions'].get('jax', '?')}. GPU: {rec.get('gpu', 'not measured')}."
    )


def _simulate(rec) -> list[str]:
    f = rec["figures"]
    out = ["### Simulation (`mothlab bench simulate`)", "", _header(rec), ""]
    if rec.get("note"):  # an annotation added to a record after its run (never a figure)
        out += [f"**Note:** {rec['note']}", ""]
    out.append(
        "| method | flights/s | worst error | median error | compile (s) | mothlab float32 is |"
    )
    out.append("|---|---|---|---|---|---|")
    f32 = f["f32_flights_per_s"]
    for r in rec["table"]:
        out.append(
            f"| {r['method']} ({r['setup']}) | {r['flights_per_s']:,.0f} | "
            f"{r['worst']:.1e} | {r['median']:.1e} | {r['compile_s']:.1f} | "
            f"{f32 / r['flights_per_s']:.1f}× |"
        )
    if not any(r["method"].startswith("diffrax") for r in rec["table"]):
        out += [
            "",
            "diffrax rows: not in this record (it was run with `--skip-diffrax`); the "
            "float32/float64 goals against diffrax are therefore not shown here.",
        ]
    out += [
        "",
        "Errors: final state, divided by each variable's range over the samples, against "
        f"mothlab float64 at 5,120 steps, itself within {f['reference_vs_radau_worst']:.0e} of "
        "scipy Radau (rtol 1e-10) in the same run.",
        "",
    ]
    out.append("Headline ratios (same run, same samples):")
    out.append("")
    out.append(
        f"- float32 vs the original as it ran (numba + odeint, default tolerances): "
        f"**{f['f32_vs_original']:.0f}×** faster, worst error {f['f32_worst']:.1e} against "
        f"{f['original_worst']:.1e}."
    )
    if f.get("f32_vs_best_peer"):
        out.append(
            f"- float32 vs the best peer at its error ({f['best_peer_f32']}): "
            f"**{f['f32_vs_best_peer']:.0f}×**."
        )
    out.append(
        f"- float64 (`precise=True`, worst {f['f64_worst']:.1e}) vs the accurate original "
        f"(odeint, mxstep 5000): **{f['f64_vs_accurate_original']:.1f}×**."
    )
    if f.get("f64_vs_best_peer"):
        out.append(
            f"- float64 vs the best accurate peer ({f['best_peer_f64']}): "
            f"**{f['f64_vs_best_peer']:.1f}×**."
        )
    out.append(
        f"- one 41-frame flight (the app's case): {f['single_flight_ms']:.2f} ms, numba + "
        f"odeint {f['single_flight_original_ms']:.2f} ms."
    )
    out.append(
        "- batch-size curve (float32 flights/s): "
        + ", ".join(f"{c['n']:,}: {c['flights_per_s']:,.0f}" for c in f["curve"])
        + "."
    )
    out += [
        "",
        "| goal (issue 13) | measured here | |",
        "|---|---|---|",
        _goal("float32 ≥ 50× the original as it ran", f.get("f32_vs_original"), 50, "{:.0f}×"),
        _goal("float32 ≥ 40× diffrax at equal error", f.get("f32_vs_best_peer"), 40, "{:.0f}×"),
        _goal(
            "float64 ≥ 3× odeint with mxstep raised",
            f.get("f64_vs_accurate_original"),
            3,
            "{:.1f}×",
        ),
        _goal("float64 ≥ 3× the best accurate peer", f.get("f64_vs_best_peer"), 3, "{:.1f}×"),
        _goal(
            "one flight at least as fast as numba + odeint",
            (f["single_flight_original_ms"] / f["single_flight_ms"])
            if f.get("single_flight_ms")
            else None,
            1,
            "{:.2f}× its speed",
        ),
        _goal(
            "float32 ≥ 20 % of the 2-core CPU's limit (issue 13 estimates ~3 M flights/s from "
            "the step's flop count)",
            f.get("f32_flights_per_s", 0) / 3e6 if f.get("f32_flights_per_s") else None,
            0.2,
            "{:.1%}",
        ),
        "| GPU: 10 M S3 flights ≤ 0.5 s, and diffrax on the same GPU | not measured (no GPU "
        "lent) | |",
    ]
    out += ["", f"> {rec['summary']}", ""]
    return out


def _goal(what, value, target, fmt) -> str:
    if value is None:
        return f"| {what} | not in this record | not shown |"
    return f"| {what} | {fmt.format(value)} | {'met' if value >= target else 'not met'} |"


def _train(rec) -> list[str]:
    f = rec["figures"]
    nd = f.get("devices")
    rows = rec["table"]
    if rows and rows[0].get("peak_gflops") is not None:
        peak = "the faster layout in each case's turns: " + "; ".join(
            f"{r['case'].split()[0]} {r.get('case_peak_gflops', r['peak_gflops']):.1f} GFLOP/s"
            + (
                " ("
                + ", ".join(f"{k} {v:.0f}" for k, v in r["peak_gflops_by_layout"].items())
                + ")"
                if r.get("peak_gflops_by_layout")
                else ""
            )
            for r in rows
        )
        if rows[0].get("case_peak_gflops") is not None:
            peak += f"; the fractions are of the run's highest, {f['peak_gflops']:.1f} GFLOP/s"
    else:
        peak = f"{f['peak_gflops']:.1f} GFLOP/s"
    out = [
        "### Training (`mothlab bench train`)",
        "",
        _header(rec),
        "",
        f"Large-matmul peak ({f['peak_size']}³ float32, same run, timed in turns with the "
        f"steps), {peak}. Batch {f['batch']}. FLOPs per "
        "network-step: 6 × weights × batch (paper width: 6 × 330,512 × 128 = 254 MFLOP), plus "
        "2 × weights × validation batch for mothlab (85 MFLOP: its step also evaluates the "
        "validation loss that early stopping compares). "
        + (
            f"The process presents the CPU as {nd} XLA devices (one per core, as `mothlab train` "
            "does); mothlab's network axis is sharded over them; *plain JAX* is the ensemble step "
            "a user writes (einsum over the network axis, optax adam, `lax.scan`, `jnp.arctan`) "
            "on the default device, *plain sharded* the same with mothlab's sharding, *plain + "
            "validation* (information, equal work) the plain step plus the validation pass the "
            "early stopping needs, as a user would add it. mothlab "
            "uses its polynomial arctan (within 2 ulp). Ratios are in network-steps/s."
            if nd
            else ""
        ),
        "",
        "| case | networks | mothlab network-steps/s | GFLOP/s | mothlab, one device | "
        "plain JAX network-steps/s | GFLOP/s | plain sharded | mothlab / plain | "
        "mothlab / plain sharded | plain + validation | mothlab / plain + validation | "
        "mothlab / peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def opt(r, key, fmt):
        return fmt.format(r[key]) if r.get(key) is not None else "—"

    for r in rows:
        out.append(
            f"| {r['case']} | {r['networks']} | {r['mothlab_net_steps_per_s']:,.0f} | "
            f"{r['mothlab_gflops']:.1f} | {opt(r, 'mothlab_one_device_net_steps_per_s', '{:,.0f}')}"
            f" | {r['plain_net_steps_per_s']:,.0f} | {r['plain_gflops']:.1f} | "
            f"{opt(r, 'plain_sharded_net_steps_per_s', '{:,.0f}')} | "
            f"{r['ratio_to_plain']:.2f}× | {opt(r, 'ratio_to_plain_sharded', '{:.2f}×')} | "
            f"{opt(r, 'plain_with_validation_net_steps_per_s', '{:,.0f}')} | "
            f"{opt(r, 'ratio_to_plain_with_validation', '{:.2f}×')} | "
            f"{r['mothlab_fraction_of_peak']:.0%} |"
        )
    out.append("| GPU (bfloat16/TF32) | — | not measured (no GPU lent) | | | | | | | | | | |")
    paper = [r for r in rows if r["case"].startswith("paper")]
    if paper:
        r = paper[-1]
        out += [
            "",
            "| goal (issue 13, paper width, CPU) | measured here | |",
            "|---|---|---|",
            _goal("≥ 1.2× the plain-JAX step", r["ratio_to_plain"], 1.2, "{:.2f}×"),
            _goal("≥ 70 % of the matmul peak", r["mothlab_fraction_of_peak"], 0.7, "{:.0%}"),
        ]
    out += ["", f"> {rec['summary']}", ""]
    return out


def _motifs(rec) -> list[str]:
    out = [
        "### Motifs (`mothlab bench motifs`)",
        "",
        _header(rec),
        "",
        "| task | mothlab (s) | other (s) | ratio | target | other is |",
        "|---|---|---|---|---|---|",
    ]
    for r in rec["table"]:
        other = "—" if r["other_s"] != r["other_s"] else f"{r['other_s']:.2f}"
        ratio = "—" if r["ratio"] != r["ratio"] else f"{r['ratio']:.3g}×"
        out.append(
            f"| {r['task']} | {r['mothlab_s']:.3f} | {other} | {ratio} | {r['target']} | "
            f"{r['note']} |"
        )
    out.append("| the same on a GPU | — | — | — | | not measured (no GPU lent) |")
    out += ["", f"> {rec['summary']}", ""]
    return out


def _app(rec) -> list[str]:
    """The app's latency (issue 8's goals: first page ≤ 5 s after ``panel serve app``, browser
    round trips ≤ 150 ms median, server-side slider work ≤ 50 ms)."""
    f = rec["figures"]
    out = ["### The app (`mothlab bench app`)", "", _header(rec), ""]
    out += ["| measurement | median (ms) | p95 (ms) | n |", "|---|---|---|---|"]
    for r in rec["table"]:
        out.append(
            f"| {r['measurement'].strip()} | {r['median_ms']:.1f} | {r['p95_ms']:.1f} | {r['n']} |"
        )
    if f.get("first_page_s") is not None:
        steps = [
            ("listening", f.get("listen_s")),
            ("HTML received", f.get("html_s")),
            (f"first page ({f.get('first_page_how')})", f.get("first_page_s")),
            ("first flight drawn (simulator compiled or loaded)", f.get("flight_drawn_s")),
        ]
        out += [
            "",
            "From `panel serve app` to: "
            + "; ".join(f"{name} {v:.1f} s" for name, v in steps if v is not None)
            + ".",
        ]

    def ms(group, key):
        v = (f.get(group) or {}).get(key)
        return None if v is None else v["median_ms"]

    def at_most(what, value, target, fmt):
        if value is None:
            return f"| {what} | not in this record | not shown |"
        return f"| {what} | {fmt.format(value)} | {'met' if value <= target else 'not met'} |"

    out += [
        "",
        "| goal (issue 8, this CPU) | measured here | |",
        "|---|---|---|",
        at_most("first page ≤ 5 s after `panel serve app`", f.get("first_page_s"), 5, "{:.1f} s"),
    ]
    for key, name in (
        ("flight_frame", "flight frame step"),
        ("flight_slider", "flight force slider"),
        ("explorer_slider", "explorer sparsity slider"),
    ):
        v = (f.get("browser") or {}).get(key)
        shown = None if v is None else v["median_ms"]
        p95 = "" if v is None else f" (p95 {v['p95_ms']:.0f} ms)"
        out.append(at_most(f"browser round trip ≤ 150 ms: {name}", shown, 150, "{:.0f} ms" + p95))
    out += [
        at_most("server ≤ 50 ms: explorer step", ms("server", "explorer_step"), 50, "{:.1f} ms"),
        at_most("server ≤ 50 ms: flight change", ms("server", "flight_change"), 50, "{:.1f} ms"),
        "",
        f"> {rec['summary']}",
        "",
    ]
    return out


def _table(rows: list[dict]) -> list[str]:
    """A record's table rows (dicts with the same keys, values as the bench formatted them) as
    Markdown; nothing for a record without rows."""
    if not rows:
        return []
    keys = list(rows[0])
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    out += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return out + [""]


def section(records: dict) -> str:
    """The README's performance section (heading included) from the records."""
    lines = [
        HEADING,
        "",
        "Generated by `mothlab bench readme` from the JSON records in `assets/bench/` that "
        "each `mothlab bench ...` run writes (device, date, load, versions, figures); every "
        "ratio compares runs made in the same process on the same inputs, so it holds on a "
        "shared machine even where absolute rates do not. Re-run a bench, then this command, "
        "to refresh it.",
        "",
    ]
    own = {"simulate": _simulate, "train": _train, "motifs": _motifs, "app": _app}
    for name, fn in own.items():
        if name in records:
            lines += fn(records[name])
        else:
            lines += [f"### `mothlab bench {name}`", "", "No record yet.", ""]
    for name, rec in records.items():  # records of other benches: their own table as written
        if name not in own:
            lines += [f"### `mothlab bench {name}`", "", _header(rec), ""]
            lines += _table(rec.get("table") or [])
            lines += [f"> {rec['summary']}", ""]
    lines += [
        "GPU rows: not measured (no GPU was lent to these sessions); the commands are the "
        "same with JAX's CUDA build installed.",
        "",
    ]
    return "\n".join(lines)


def replace_section(text: str, new: str) -> str:
    start = text.find("\n" + HEADING + "\n")
    if start < 0:
        return text.rstrip("\n") + "\n\n" + new
    start += 1
    nxt = text.find("\n## ", start + len(HEADING))
    end = len(text) if nxt < 0 else nxt + 1
    return text[:start] + new + "\n" + text[end:]


def run(args) -> int:
    path = Path(args.readme)
    text = path.read_text()
    new = replace_section(text, section(read_records(args.records)))
    if args.check:
        print("README performance section is " + ("up to date" if new == text else "stale"))
        return 0 if new == text else 1
    path.write_text(new)
    print(f"rebuilt {HEADING!r} in {path} from {args.records}")
    return 0
