"""Smoke test of the paper experiment (`benchmarks.paper`): every stage with `tiny` on a handful of problems.

Checks that every artefact exists and parses, that a rerun skips finished stages, that
``--resume`` after deleting one stage's done.json reruns exactly that stage and the later ones,
and that a run folder is never silently reused without ``--resume`` or with another config.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from apr_env import load_problems
from apr_env.errors import ConfigError
from benchmarks.paper import STAGES, run_paper
from benchmarks.paper_config import SCALES, PaperConfig
from benchmarks.paper_report import claims
from runtime.report import wilson_interval

SMOKE = replace(
    SCALES["cpu"],
    scale="smoke",
    preset="tiny",
    n_train=12,
    n_test=4,
    beams=((2, 3), (3, 4)),
    warmup_tokens=1500,
    operation_loss="results",
    warmup_row_tokens=64,
    warmup_batch_size=4,
    probe_n=2,
    probe_gate=None,
    sft_tokens=3000,
    sft_operations_mix=0.3,
    sft_batch_size=4,
    sft_warmup_steps=1,
    eval_n=3,
    sweep_n=2,
    eval_window=192,
    windows=(96, 192),
    main_window=192,
    token_budgets=(512,),
    sub_call_budgets=(3,),
    bon_ns=(2,),
    grpo_steps=1,
    grpo_problems_per_step=2,
    grpo_group_size=2,
    grpo_max_new_tokens=48,
    concurrency=8,
)


def _quiet(msg: str) -> None:
    pass


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("paper")
    status = run_paper(SMOKE, run, log=_quiet)
    assert status == dict.fromkeys(STAGES, "ran")
    return run


def test_every_stage_writes_its_outputs_and_a_done_summary(run_dir):
    for stage in STAGES:
        done = json.loads((run_dir / stage / "done.json").read_text())
        assert done["stage"] == stage and done["config"]["preset"] == "tiny"
        assert done["provenance"]["commit"] and "summary" in done
    data = json.loads((run_dir / "data" / "done.json").read_text())["summary"]
    train = load_problems(run_dir / "data" / "train_problems.json")
    test = load_problems(run_dir / "data" / "test_problems.json")
    assert (len(train), len(test)) == (12, 4) and data["key_overlap"] == 0
    assert not {p.key for p in train} & {p.key for p in test}
    assert all(len(p.numbers) == 4 and max(p.numbers) <= 20 for p in train + test)
    for protocol in ("apr", "serial"):
        assert json.loads((run_dir / "data" / protocol / "traces.json").read_text())
        assert data["protocols"][protocol]["tokens_per_epoch"] > 0
    for model in ("sft_sos", "sft_apr", "grpo_apr/model"):
        assert (run_dir / model / "config.json").is_file() and (
            run_dir / model / "model.safetensors"
        ).is_file()
    sos = json.loads((run_dir / "sft_sos" / "done.json").read_text())["summary"]
    apr = json.loads((run_dir / "sft_apr" / "done.json").read_text())["summary"]
    assert sos["config"]["tokens"] == apr["config"]["tokens"] == 3000  # the same budget
    assert sos["config"]["preset"] == apr["config"]["preset"] == "tiny"
    assert sos["command"].startswith("apr-env train sft") and "--protocol serial" in sos["command"]
    assert (run_dir / "grpo_apr" / "metrics.csv").read_text().count("\n") == 2  # header + 1 step
    warm = json.loads((run_dir / "warmup" / "done.json").read_text())["summary"]
    assert "--operations-only" in warm["command"] and warm["data"]["operation_lines"] > 0
    assert warm["data"]["operation_loss"] == "results" and "--operation-loss results" in warm["command"]
    assert sos["config"]["model"] == apr["config"]["model"] == str(run_dir / "warmup")  # one start
    for summary in (sos, apr):
        assert (
            summary["data"]["operations_mix"]["share"] == 0.3
            and summary["data"]["operations_mix"]["rows"] > 0
        )
    for summary, fmt in ((warm, "operation lines"), (sos, "serial traces"), (apr, "apr traces")):
        assert summary["probe"]["format"] == fmt and summary["probe"]["lines"] > 0
        assert 0 <= summary["probe"]["exact_result_accuracy"] <= 1
    assert "operands" not in warm["probe"]  # a model that never saw a state
    for summary in (sos, apr):
        assert summary["probe"]["operands"]["lines"] > 0
        assert 0 <= summary["probe"]["operands"]["operands_in_state"] <= 1


def test_the_probe_gate_stops_the_run_before_evaluating_a_model_that_cannot_do_the_arithmetic(
    run_dir, tmp_path
):
    run = tmp_path / "gated"
    shutil.copytree(run_dir, run)
    for stage in ("grpo_apr", "eval_apr", "eval_sos", "eval_grpo", "report"):
        shutil.rmtree(run / stage)
    gated = replace(SMOKE, probe_gate=0.99)  # tiny after 3,000 tokens: far below
    (run / "config.json").write_text(json.dumps(gated.to_dict()))
    with pytest.raises(
        RuntimeError,
        match=r"the sft_\w+ model has \d+\.\d% of held-out operation results right, under probe_gate=99%",
    ):
        run_paper(gated, run, resume=True, log=_quiet)
    assert not any((run / s / "done.json").exists() for s in ("grpo_apr", "eval_apr", "eval_sos"))
    assert (run / "sft_apr" / "done.json").is_file()  # what was finished is kept


def test_table_and_figures(run_dir):
    table = json.loads((run_dir / "report" / "table.json").read_text())
    rows = {(r["stage"], r["point"]): r for r in table["rows"]}
    assert {"sos_main", "sos_token_budget_512", "sos_bon_2", "solver_serial"} <= {
        p for s, p in rows if s == "eval_sos"
    }
    assert {"apr_main", "apr_sub_call_budget_3", "solver_apr"} <= {p for s, p in rows if s == "eval_apr"}
    assert {"apr_main", "apr_sub_call_budget_3"} <= {p for s, p in rows if s == "eval_grpo"}
    for r in table["rows"]:
        lo, hi = r["accuracy_ci95"]
        assert 0 <= lo <= r["accuracy"] <= hi <= 1 and r["episodes"] in (2, 3)
    assert (
        rows[("eval_apr", "solver_apr")]["children_per_spawn"] >= 2
    )  # the ceiling really searches in parallel
    assert set(rows[("eval_apr", "apr_main")]["accuracy_at_window"]) == {"96", "192"}
    assert [c["step"] for c in table["grpo_curve"]] == [1.0]
    md = (run_dir / "report" / "table.md").read_text()
    assert set(table["probes"]) == {"warmup", "sft_sos", "sft_apr"}
    assert (
        "operands_in_state" in table["probes"]["sft_apr"]
        and "operands_in_state" not in table["probes"]["warmup"]
    )
    assert md.count("\n| ") == len(table["rows"]) + 1 + len(table["claims"]) + 1 + len(table["probes"]) + 1
    assert "APR (SFT + GRPO)" in md and "GRPO improves APR" in md
    assert {c["verdict"].split(",")[0] for c in table["claims"]} <= {
        "holds",
        "does not hold",
        "direction holds",
    }
    for name in ("fig4a_accuracy_vs_total_tokens", "fig4b_accuracy_vs_window", "fig6_accuracy_vs_latency",
                 "grpo_curve"):  # fmt: skip
        assert (run_dir / "report" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_skips_and_resume_reruns_from_a_deleted_stage(run_dir):
    assert run_paper(SMOKE, run_dir, resume=True, log=_quiet) == dict.fromkeys(STAGES, "skipped")
    before = (run_dir / "report" / "table.json").stat().st_mtime_ns
    (run_dir / "eval_grpo" / "done.json").unlink()
    status = run_paper(SMOKE, run_dir, resume=True, log=_quiet)
    assert status == {s: "ran" if s in ("eval_grpo", "report") else "skipped" for s in STAGES}
    assert (run_dir / "report" / "table.json").stat().st_mtime_ns > before


def test_parallel_resume_reruns_only_what_depends_on_a_deleted_stage(run_dir):
    (run_dir / "sft_sos" / "done.json").unlink()
    grpo_before = (run_dir / "grpo_apr" / "done.json").read_text()
    status = run_paper(SMOKE, run_dir, resume=True, jobs=2, log=_quiet)
    ran = {"sft_sos", "eval_sos", "report"}  # nothing of APR reads the SoS+ model: kept
    assert status == {s: "ran" if s in ran else "skipped" for s in STAGES}
    assert (run_dir / "grpo_apr" / "done.json").read_text() == grpo_before
    for stage in ran:
        done = json.loads((run_dir / stage / "done.json").read_text())
        assert done["stage"] == stage and "summary" in done
    with pytest.raises(ConfigError, match="jobs=0"):
        run_paper(SMOKE, run_dir, resume=True, jobs=0, log=_quiet)


def test_a_run_folder_is_not_reused_silently(run_dir):
    with pytest.raises(ConfigError, match="--resume"):
        run_paper(SMOKE, run_dir, log=_quiet)
    with pytest.raises(ConfigError, match="n_test"):
        run_paper(replace(SMOKE, n_test=5), run_dir, resume=True, log=_quiet)


def test_every_scale_is_documented_and_valid():
    assert set(SCALES) == {"cpu", "cpu-v1", "cpu-v3", "gpu", "paper"}
    assert SCALES["paper"].preset == "paper" and SCALES["paper"].grpo_steps == 150
    assert SCALES["cpu"].preset == "mini" and SCALES["cpu"].n_test >= 500
    assert SCALES["cpu"].sft_tokens >= 5_000_000  # the same budget for both models
    with pytest.raises(ConfigError, match="eval_n"):
        PaperConfig(scale="x", n_test=10, eval_n=20)


def _synthetic(stage, point, acc, *, n=500, children=2.0, tokens=1000.0, fmt=0.0):
    return {"stage": stage, "point": point, "episodes": n, "accuracy": acc,
            "accuracy_ci95": list(wilson_interval(round(acc * n), n)), "accuracy_at_window": {"1024": acc},
            "children_per_spawn": children, "total_tokens": tokens, "format_error_rate": fmt}  # fmt: skip


def test_claims_give_each_ordering_a_verdict_from_the_intervals():
    rows = [
        _synthetic("eval_sos", "sos_main", 0.30),
        _synthetic("eval_sos", "solver_serial", 0.40),
        _synthetic("eval_apr", "apr_main", 0.10, children=3.0),
        _synthetic("eval_apr", "solver_apr", 0.45),
        _synthetic("eval_grpo", "apr_main", 0.12, children=2.5),
    ]

    def verdict(found, text):
        (match,) = [c["verdict"] for c in found if text in c["claim"]]
        return match

    found = claims(SCALES["cpu"], rows)
    assert verdict(found, "the SoS+ SFT model learned") == "holds"  # 0.30 / 0.40 >= 1/2
    assert verdict(found, "the APR SFT model learned") == "does not hold"  # 0.10 / 0.45
    assert verdict(found, "APR (SFT) > SoS+ (SFT) at an equal 1024") == "does not hold"
    assert verdict(found, "GRPO improves APR").startswith("direction holds, within noise")
    assert verdict(found, "GRPO widens the search") == "does not hold"  # 2.5 < 3.0 children
    assert not [c for c in found if "scales better" in c["claim"]]  # no sweep rows: no claim
    rows[2] = _synthetic("eval_apr", "apr_main", 0.50)
    assert verdict(claims(SCALES["cpu"], rows), "at an equal 1024") == "holds"  # disjoint at n=500


def test_publish_copies_the_committable_results(run_dir, tmp_path):
    from benchmarks.paper import publish
    from trainers.models import load_model

    written = publish(run_dir, tmp_path / "pub")
    assert (tmp_path / "pub" / "table.md").read_text() == (run_dir / "report" / "table.md").read_text()
    assert {p.stem for p in (tmp_path / "pub" / "stages").iterdir()} == set(STAGES)
    assert (tmp_path / "pub" / "eval" / "eval_apr" / "apr_main.json").is_file()
    assert not [p for p in written if p.endswith((".jsonl", ".pt", ".pth"))]  # no records, no optimizer
    for name in ("sos_sft", "apr_sft", "apr_grpo"):
        load_model(tmp_path / "pub" / "models" / name)  # loadable as published
    assert not (tmp_path / "pub" / "partial.json").exists()  # the run finished
    with pytest.raises(ConfigError, match="not a paper run folder"):
        publish(tmp_path / "pub" / "stages", tmp_path / "again")


def test_publishing_an_unfinished_run_summarises_the_records_so_far(run_dir, tmp_path):
    import shutil

    from benchmarks.paper import publish

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "report" / "done.json").unlink()
    (run / "eval_grpo" / "done.json").unlink()
    lines = (run / "eval_grpo" / "apr_main.jsonl").read_text().splitlines(keepends=True)
    (run / "eval_grpo" / "apr_main.jsonl").write_text("".join(lines[:2]))  # stopped after 2 episodes
    publish(run, tmp_path / "pub")
    partial = json.loads((tmp_path / "pub" / "partial.json").read_text())
    assert partial["complete"] is False and "eval_grpo" not in partial["stages_done"]
    point = partial["points"]["eval_grpo/apr_main"]
    assert point["episodes"] == 2 and sum(point["outcomes"].values()) == 2
    assert 0 <= point["accuracy_ci95"][0] <= point["accuracy"] <= point["accuracy_ci95"][1] <= 1
