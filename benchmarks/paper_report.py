"""The paper experiment's table (markdown + JSON, Wilson 95% intervals) and figures (4a, 4b, 6, GRPO curve).

Reads what the evaluation stages of `benchmarks.paper` wrote (one `apr-env eval` JSON and one
records JSONL per point) and the GRPO run's ``metrics.csv``; summarises with `runtime.report`
(`summarize`, `wilson_interval`), so every number here is the runtime's.
"""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

from apr_env.protocols.self_consistency import answer_key
from benchmarks.paper_config import PaperConfig
from runtime.records import load_records
from runtime.report import summarize, wilson_interval


def _row(name: str, records: list[dict], point: dict, windows: tuple[int, ...]) -> dict:
    """One table row from episode records: accuracy (CI), windows, tokens, children per spawn, latency."""
    s = summarize(
        records, protocol=point["protocol"], knob="point", value=name, windows=list(windows), seconds=0
    )
    spawns = sum(r["metrics"]["num_spawns"] for r in records)
    children = sum(r["metrics"]["num_threads"] - 1 for r in records)
    return {
        "row": point["row"],
        "point": name,
        "condition": point.get("cond", {}),
        "episodes": s["episodes"],
        "accuracy": s["accuracy"],
        "accuracy_ci95": s["accuracy_ci95"],
        "accuracy_at_window": s["cumulative_accuracy"],
        "total_tokens": s["total_tokens"],
        "critical_path_tokens": s["critical_path_tokens"],
        "longest_thread_tokens": s["longest_thread_tokens"],
        "children_per_spawn": children / spawns if spawns else 0.0,
        "format_error_rate": sum(bool(r["format_errors"]) for r in records) / len(records),
        "latency_s": statistics.fmean(r["latency_s"] for r in records),
    }


def _best_of_n(samples: list[list[dict]], n: int) -> dict:
    """pass@N (any sample verified) and cons@N (majority claimed answer verified) over the first n samples."""
    per_problem = list(zip(*samples[:n]))
    passed = sum(any(r["correct"] for r in group) for group in per_problem)
    cons = 0
    for group in per_problem:
        claimed = [r for r in group if r["answer"]]
        if claimed:
            keys = [answer_key(r["answer"]) for r in claimed]
            best = max(claimed, key=lambda r: keys.count(answer_key(r["answer"])))
            cons += bool(best["correct"])
    m = len(per_problem)
    return {
        "row": "SoS+ best-of-N",
        "point": f"sos_bon_{n}",
        "condition": {"N": n},
        "episodes": m,
        "accuracy": passed / m,
        "accuracy_ci95": list(wilson_interval(passed, m)),
        "cons_at_n": cons / m,
        "cons_at_n_ci95": list(wilson_interval(cons, m)),
        "total_tokens": statistics.fmean(sum(r["metrics"]["total_tokens"] for r in g) for g in per_problem),
        "critical_path_tokens": statistics.fmean(
            max(r["metrics"]["critical_path_tokens"] for r in g) for g in per_problem
        ),
        "longest_thread_tokens": statistics.fmean(
            max(r["metrics"]["longest_thread_tokens"] for r in g) for g in per_problem
        ),
        "latency_s": statistics.fmean(max(r["latency_s"] for r in g) for g in per_problem),
    }


def _fmt_ci(row: dict) -> str:
    lo, hi = row["accuracy_ci95"]
    return f"{row['accuracy']:.3f} [{lo:.3f}, {hi:.3f}]"


def write_report(cfg: PaperConfig, run: Path, out: Path) -> dict:
    """Write table.json, table.md and the PNGs into `out`; return the paths and the rows."""
    rows: list[dict] = []
    for stage in ("eval_sos", "eval_apr", "eval_grpo"):
        points = json.loads((run / stage / "done.json").read_text())["summary"]["points"]
        samples = []
        for name, point in points.items():
            records = load_records(run / stage / f"{name}.jsonl")
            if name.startswith("sos_sample_"):
                samples.append(records)
                continue
            row = _row(name, records, point, cfg.windows)
            row["stage"] = stage
            row["command"] = point["command"]
            rows.append(row)
        for n in cfg.bon_ns:
            if len(samples) >= n:
                rows.append({**_best_of_n(samples, n), "stage": stage})
    curve = _grpo_curve(run / "grpo_apr" / "metrics.csv")
    found = claims(cfg, rows)
    probes = _probes(run)
    table = {"config": cfg.to_dict(), "rows": rows, "claims": found, "grpo_curve": curve, "probes": probes}
    (out / "table.json").write_text(json.dumps(table, indent=2) + "\n")
    (out / "table.md").write_text(_markdown(cfg, rows) + _claims_markdown(found) + _probes_markdown(probes))
    figures = _plots(cfg, rows, curve, out)
    return {
        "table": str(out / "table.json"),
        "markdown": str(out / "table.md"),
        "figures": figures,
        "rows": len(rows),
    }


def _at_window(row: dict, window: str) -> dict:
    """Accuracy of a row at one window, with its Wilson interval (counts from the fraction)."""
    n = row["episodes"]
    k = round(row["accuracy_at_window"][window] * n)
    return {"accuracy": k / n, "accuracy_ci95": list(wilson_interval(k, n)), "episodes": n}


def _verdict(higher: dict, lower: dict) -> str:
    """'holds' when `higher` beats `lower` with disjoint 95% intervals, else say how it fell short."""
    diff = higher["accuracy"] - lower["accuracy"]
    if diff <= 0:
        return "does not hold"
    if higher["accuracy_ci95"][0] > lower["accuracy_ci95"][1]:
        return "holds"
    return "direction holds, within noise (intervals overlap)"


def claims(cfg: PaperConfig, rows: list[dict]) -> list[dict]:
    """The issue's standard and the paper's orderings, checked on this run's rows.

    Accuracy comparisons state the two rows' accuracies with Wilson 95% intervals and a verdict
    (`_verdict`); a claim whose rows are missing is left out. Nothing here is tuned: the rows are
    whatever the evaluation stages measured on the held-out split.
    """
    by = {(r["stage"], r["point"]): r for r in rows}
    window = str(cfg.main_window)
    found: list[dict] = []

    def pick(*keys):
        return [by[k] for k in keys] if all(k in by for k in keys) else None

    for model, solver, name in (
        (("eval_sos", "sos_main"), ("eval_sos", "solver_serial"), "SoS+"),
        (("eval_apr", "apr_main"), ("eval_apr", "solver_apr"), "APR"),
    ):
        if pair := pick(model, solver):
            m, c = pair
            ratio = m["accuracy"] / c["accuracy"] if c["accuracy"] else 0.0
            found.append({
                "claim": f"the {name} SFT model learned: at least half its solver's accuracy, rare format errors",
                "values": {"model": m["accuracy"], "solver": c["accuracy"], "ratio": ratio,
                           "format_error_rate": m["format_error_rate"]},
                "verdict": "holds" if ratio >= 0.5 else "does not hold",
            })  # fmt: skip
    if pair := pick(("eval_apr", "apr_main"), ("eval_sos", "sos_main")):
        apr, sos = (_at_window(r, window) for r in pair)
        found.append({"claim": f"APR (SFT) > SoS+ (SFT) at an equal {window}-token window",
                      "values": {"apr": apr, "sos": sos}, "verdict": _verdict(apr, sos)})  # fmt: skip
    if pair := pick(("eval_grpo", "apr_main"), ("eval_apr", "apr_main")):
        rl, sft = (_at_window(r, window) for r in pair)
        found.append({"claim": f"GRPO improves APR (accuracy at the {window}-token window)",
                      "values": {"grpo": rl, "sft": sft}, "verdict": _verdict(rl, sft)})  # fmt: skip
        wide = pair[0]["children_per_spawn"] - pair[1]["children_per_spawn"]
        found.append({"claim": "GRPO widens the search (children per spawn)",
                      "values": {"grpo": pair[0]["children_per_spawn"], "sft": pair[1]["children_per_spawn"]},
                      "verdict": "holds" if wide > 0 else "does not hold"})  # fmt: skip
    sweeps = {
        name: sorted((r for r in rows if r["stage"] == stage and r.get("point", "").startswith(prefix)),
                     key=lambda r: r["total_tokens"])
        for name, stage, prefix in (("apr", "eval_apr", "apr_sub_call_budget_"),
                                    ("sos", "eval_sos", "sos_token_budget_"))
    }  # fmt: skip
    if all(len(v) >= 2 for v in sweeps.values()):
        slope = {
            k: 1000
            * (v[-1]["accuracy"] - v[0]["accuracy"])
            / max(v[-1]["total_tokens"] - v[0]["total_tokens"], 1)
            for k, v in sweeps.items()
        }
        found.append({"claim": "APR scales better with total tokens (accuracy gained per 1k tokens across each budget sweep)",
                      "values": slope, "verdict": "holds" if slope["apr"] > slope["sos"] else "does not hold"})  # fmt: skip
    if pair := pick(("eval_apr", "apr_main"), ("eval_sos", f"sos_bon_{min(cfg.bon_ns, default=0)}")):
        apr, bon = pair
        found.append({"claim": f"APR (SFT) > SoS+ best-of-{min(cfg.bon_ns)} (pass@N) at comparable total tokens",
                      "values": {"apr": {k: apr[k] for k in ("accuracy", "accuracy_ci95", "total_tokens")},
                                 "bon": {k: bon[k] for k in ("accuracy", "accuracy_ci95", "total_tokens")}},
                      "verdict": _verdict(apr, bon)})  # fmt: skip
    return found


def _claims_markdown(found: list[dict]) -> str:
    lines = ["", "| claim | verdict | values |", "|---|---|---|"]
    for c in found:
        lines.append(f"| {c['claim']} | **{c['verdict']}** | `{json.dumps(_rounded(c['values']))}` |")
    return "\n".join(lines) + "\n"


def _probes(run: Path) -> dict:
    """The probes each training stage recorded (exact operation results, teacher-forced; for the SFT
    models also the share of operands in the state when the model writes them after a solver prefix)."""
    found = {}
    for stage in ("warmup", "sft_sos", "sft_apr"):
        done = run / stage / "done.json"
        probe = json.loads(done.read_text())["summary"].get("probe") if done.is_file() else None
        if probe:
            found[stage] = {
                k: probe[k] for k in ("format", "lines", "exact_result_accuracy", "tokens_trained")
            }
            if "operands" in probe:
                found[stage]["operands_in_state"] = probe["operands"]["operands_in_state"]
    return found


def _probes_markdown(probes: dict) -> str:
    if not probes:
        return ""
    lines = ["", "Probes (held-out solver traces: operation results predicted exactly, teacher-forced; operands",
             "the model writes after the solver's prefix that its current state holds):",
             "", "| model | probed on | lines | exact results | operands in state | tokens trained |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for stage, p in probes.items():
        in_state = f"{p['operands_in_state']:.3f}" if "operands_in_state" in p else "-"
        lines.append(
            f"| {stage} | {p['format']} | {p['lines']} | {p['exact_result_accuracy']:.3f} | {in_state} "
            f"| {p['tokens_trained']} |"
        )
    return "\n".join(lines) + "\n"


def _rounded(x):
    """Floats to 3 decimals, recursively, for the markdown."""
    if isinstance(x, float):
        return round(x, 3)
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return x


def _grpo_curve(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open() as f:
        keep = ("step", "reward", "accuracy", "children_per_spawn", "critical_path", "total_tokens")
        return [{k: float(r[k]) for k in keep if r.get(k) not in (None, "")} for r in csv.DictReader(f)]


def _markdown(cfg: PaperConfig, rows: list[dict]) -> str:
    wins = [str(w) for w in cfg.windows]
    head = ["row", "condition", "n", "accuracy [95% CI]", *(f"acc@{w}" for w in wins), "total tok",
            "crit. path", "longest thr", "children/spawn", "format err", "latency s"]  # fmt: skip
    lines = [
        f"Paper experiment, scale `{cfg.scale}` ({cfg.preset} preset, {cfg.numbers} numbers in "
        f"{cfg.min_value}..{cfg.max_value}, targets {cfg.min_target}..{cfg.max_target}; held-out test "
        f"split; greedy unless a best-of-N row; acc@w = solved with every thread within w tokens).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        cond = ", ".join(f"{k}={v}" for k, v in r["condition"].items()) or "-"
        acc = _fmt_ci(r)
        if "cons_at_n" in r:
            acc += f" (pass@N; cons@N {r['cons_at_n']:.3f})"
        at = r.get("accuracy_at_window", {})
        cells = [r["row"], cond, str(r["episodes"]), acc, *(f"{at[w]:.3f}" if w in at else "" for w in wins),
                 f"{r['total_tokens']:.0f}", f"{r['critical_path_tokens']:.0f}", f"{r['longest_thread_tokens']:.0f}",
                 f"{r['children_per_spawn']:.2f}" if "children_per_spawn" in r else "",
                 f"{r['format_error_rate']:.3f}" if "format_error_rate" in r else "",
                 f"{r['latency_s']:.2f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _plots(cfg: PaperConfig, rows: list[dict], curve: list[dict], out: Path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(pred):
        return sorted((r for r in rows if pred(r)), key=lambda r: r["total_tokens"])

    groups = {
        "SoS+ (Token Budget)": series(lambda r: r["row"] == "SoS+ (SFT)" and r["point"] != "sos_main"),
        "SoS+ best-of-N (pass@N)": series(lambda r: r["row"] == "SoS+ best-of-N"),
        "APR (Sub Call Budget)": series(lambda r: r["row"] == "APR (SFT)" and r["point"] != "apr_main"),
        "APR + GRPO (Sub Call Budget)": series(
            lambda r: r["row"] == "APR (SFT + GRPO)" and r["point"] != "apr_main"
        ),
    }
    main = [r for r in rows if r["point"].endswith("_main") or r["point"].startswith("solver_")]
    paths = {}

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, rs in groups.items():
        if rs:
            ax.errorbar([r["total_tokens"] for r in rs], [r["accuracy"] for r in rs],
                        yerr=_yerr(rs), marker="o", capsize=3, label=label)  # fmt: skip
    ax.set(
        xlabel="mean total tokens per problem", ylabel="accuracy", title="Fig. 4a: accuracy vs total tokens"
    )
    ax.legend(fontsize=7)
    paths["fig4a"] = _save(fig, out / "fig4a_accuracy_vs_total_tokens.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in main:
        at = r["accuracy_at_window"]
        ax.plot([int(w) for w in at], list(at.values()), marker="o", label=r["row"])
    ax.axvline(cfg.main_window, color="grey", linestyle=":")
    ax.set(
        xlabel="context window (tokens per thread)",
        ylabel="cumulative accuracy",
        title="Fig. 4b: accuracy vs window",
    )
    ax.legend(fontsize=7)
    paths["fig4b"] = _save(fig, out / "fig4b_accuracy_vs_window.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in main + [r for rs in groups.values() for r in rs]:
        ax.errorbar([r["latency_s"]], [r["accuracy"]], yerr=_yerr([r]), marker="o", capsize=3)
        ax.annotate(r["point"], (r["latency_s"], r["accuracy"]), fontsize=6)
    ax.set(xlabel="measured latency per problem (s)", ylabel="accuracy", title="Fig. 6: accuracy vs latency")
    paths["fig6"] = _save(fig, out / "fig6_accuracy_vs_latency.png")

    fig, axes = plt.subplots(1, 4, figsize=(14, 3))
    for ax, key in zip(axes, ("reward", "accuracy", "children_per_spawn", "critical_path")):
        ax.plot([c["step"] for c in curve], [c.get(key, float("nan")) for c in curve], marker=".")
        ax.set(xlabel="GRPO step", title=key)
    paths["grpo_curve"] = _save(fig, out / "grpo_curve.png")
    return paths


def _yerr(rs: list[dict]) -> list[list[float]]:
    return [
        [r["accuracy"] - r["accuracy_ci95"][0] for r in rs],
        [r["accuracy_ci95"][1] - r["accuracy"] for r in rs],
    ]


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return str(path)
