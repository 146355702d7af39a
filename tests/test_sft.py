"""SFT rows and the SFT run: exact loss masks, memorisation end to end, exact resume, checkpoints that serve.

- Masks: for golden APR trees (and SoS+ traces) a backend that answers each request with the
  labelled ids of the row whose masked prefix equals the request's ids replays the official
  tree through the LLM agent and the environment: every request matches a row (prompt ids are
  exact), every row is used once (nothing trained that the runtime writes), and the verdict is
  the official one (the labelled ids are what the model must write). Join blocks: the labels of
  a resumed parent start exactly after ``<End Sub Searches>\\n``.
- Memorisation: `tiny` trained briefly on 4 short SoS+ traces writes them back token for token
  under greedy decoding through the agent and the environment, which verifies the answers.
- Resume: N steps, or N/2 + --resume + N/2, give identical logged losses and weights.
- A trained folder decodes the same in the transformers backend and behind `runtime.server`.
"""

from __future__ import annotations

import csv
import json
import re
import threading
from concurrent.futures import Future

import golden
import pytest
import torch
from safetensors.torch import load_file

from agents.llm_agent import LLMAgent, LLMAgentConfig
from apr_env import Limits, Problem, generate_problems
from apr_env import grammar as g
from apr_env.tokenizer import default_tokenizer
from runtime.backends.base import Backend, GenerationRequest, GenerationResult
from runtime.backends.sglang_backend import SGLangBackend
from runtime.backends.transformers_backend import TransformersBackend
from runtime.report import wilson_interval
from runtime.runner import RunConfig, run_episodes
from runtime.server import serve
from trainers.data import build_traces, segments
from trainers.sft import BudgetCallback, train_sft
from trainers.sft_config import SFTRunConfig
from trainers.sft_data import (
    IGNORE,
    TraceDataError,
    build_rows,
    load_trace_records,
    mix_rows,
    operation_lines,
    operation_rows,
    padding_waste,
    record_rows,
    sub_call_budget,
    token_budget,
)

TOK = default_tokenizer()
WINDOW = 16384  # golden APR segments run past 4096 tokens; the masks are checked on whole trees


class RowBackend(Backend):
    """Answers a request with the labelled ids of the row whose masked prefix is exactly its input ids."""

    def __init__(self, rows: list[dict]):
        self.by_prompt = {}
        for row in rows:
            cut = next(i for i, label in enumerate(row["labels"]) if label != IGNORE)
            self.by_prompt[tuple(row["input_ids"][:cut])] = row["input_ids"][cut:]
        self.unmatched: list[str] = []
        self.used: list[tuple] = []
        self.lock = threading.Lock()

    def submit(self, request: GenerationRequest) -> Future:
        future: Future = Future()
        key = tuple(request.input_ids)
        with self.lock:
            if key in self.by_prompt:
                self.used.append(key)
                ids = self.by_prompt[key]
            else:
                self.unmatched.append(TOK.decode(request.input_ids)[-120:])
                ids = [TOK.eos_id]
        out, reason = [], "length"
        for tid in ids[: request.sampling.max_new_tokens]:
            out.append(tid)
            if tid in request.sampling.stop_token_ids:
                reason = "stop"
                break
        future.set_result(GenerationResult(request.request_id, out, TOK.decode(out), reason))
        return future


def _replay(rows, problem, protocol, **protocol_kwargs):
    backend = RowBackend(rows)
    agent = LLMAgent(backend, TOK, LLMAgentConfig(context_window=WINDOW))
    config = RunConfig(
        protocol=protocol, protocol_kwargs=protocol_kwargs, limits=Limits(context_window=WINDOW)
    )
    [rec] = run_episodes(agent, [problem], config)
    return rec, backend


def _problem(entry: dict) -> Problem:
    return Problem(entry["target"], tuple(entry["nums"]))


@pytest.mark.parametrize("condition", [False, True], ids=["plain", "sub_call_budget"])
@pytest.mark.parametrize("index", [0, 1, 2, 5, 7])
def test_golden_apr_rows_are_exactly_what_the_agent_sends_and_must_generate(index, condition):
    entry = golden.APR[index]
    rows = record_rows(entry, TOK, condition=condition)
    kwargs = {"sub_call_budget": sub_call_budget(entry)} if condition else {}
    rec, backend = _replay(rows, _problem(entry), "apr", **kwargs)
    assert backend.unmatched == []
    assert sorted(backend.used) == sorted(backend.by_prompt), "every row is one request, once"
    assert len(backend.used) == len(rows)
    assert rec["correct"] == entry["official_correct"]
    assert rec["answer"] == entry["official_answer_path"]


@pytest.mark.parametrize("index", [0, 3, 8])
def test_golden_sosp_rows_with_token_budget_replay_to_the_solved_flag(index):
    entry = golden.SOSP[index]
    rows = record_rows(entry, TOK, condition=True)
    [row] = rows
    assert TOK.decode(row["input_ids"][1:]).startswith(
        f"Token Budget: {token_budget(entry, TOK)} Current State: "
    )
    rec, backend = _replay(rows, _problem(entry), "serial", token_budget=token_budget(entry, TOK))
    assert backend.unmatched == [] and len(backend.used) == 1
    assert rec["correct"] == entry["solved"]


def test_every_join_token_is_masked_and_every_generated_token_has_loss():
    end_sub = TOK.token_id(g.END_SUB_SEARCHES)
    newline = TOK.encode("\n")[0]
    checked = 0
    for entry in golden.APR:
        for row in record_rows(entry, TOK):
            ids, labels = row["input_ids"], row["labels"]
            if row["kind"] != "parent" or end_sub not in ids:
                continue
            last = len(ids) - 1 - ids[::-1].index(end_sub)
            assert ids[last + 1] == newline
            cut = last + 2  # the join block ends with "<End Sub Searches>\n"
            assert all(label == IGNORE for label in labels[:cut]), "a join or prompt token carries loss"
            assert labels[cut:] == ids[cut:], "a generated token after the join is masked"
            # the join block itself is inside the masked part
            assert ids.index(TOK.token_id(g.SUB_SEARCHES)) < cut
            checked += 1
    assert checked >= 10


def test_spawning_segments_end_at_the_stop_token_and_final_segments_with_eos():
    entry = golden.APR[0]
    rows = record_rows(entry, TOK)
    end_calling = TOK.token_id(g.END_CALLING)
    parents = [r for r in rows if r["kind"] == "parent"]
    assert all(r["input_ids"][-1] == end_calling for r in parents[:-1])
    assert parents[-1]["input_ids"][-2:] == [TOK.encode("\n")[0], TOK.eos_id]
    assert all(r["input_ids"][-1] == TOK.eos_id for r in rows if r["kind"] == "child")
    assert all(r["input_ids"][0] == TOK.bos_id and r["labels"][0] == IGNORE for r in rows)


def test_condition_prefix_goes_on_the_root_thread_only():
    entry = golden.APR[1]
    n = sub_call_budget(entry)
    groups = entry["trace_dict"]["sub_calls"]
    assert n == int(sum(map(len, groups)) / len(groups) + 0.5)
    for plain, cond in zip(record_rows(entry, TOK), record_rows(entry, TOK, condition=True)):
        if plain["kind"] == "parent":
            prefix = TOK.encode(f"Sub Call Budget: {n} ")
            assert cond["input_ids"] == plain["input_ids"][:1] + prefix + plain["input_ids"][1:]
        else:
            assert cond == plain


def test_build_rows_keeps_solved_only_by_default_and_drops_rows_over_max_length():
    records = build_traces(generate_problems(30, seed=4, min_numbers=3, max_numbers=3), "serial", seed=0)
    solved = sum(bool(r["solved"]) for r in records)
    assert 0 < solved < len(records)
    rows, stats = build_rows(records, TOK)
    assert stats["traces_used"] == solved == len(rows) and stats["solved_only"] is True
    rows, stats = build_rows(records, TOK, solved_only=False, max_length=300)
    assert stats["traces_used"] == len(records)
    assert len(rows) + stats["rows_dropped_too_long"] == len(records)
    assert all(r["length"] <= 300 for r in rows) and stats["rows_dropped_too_long"] > 0


def test_operation_rows_pack_every_operation_line_of_the_used_traces_with_loss_on_all_but_bos():
    records = build_traces(generate_problems(12, seed=4, min_numbers=4, max_numbers=4), "apr", seed=0)
    rows, stats = operation_rows(records, TOK, row_tokens=64, solved_only=False, seed=1)
    lines = [line for r in rows for line in TOK.decode(r["input_ids"][1:]).splitlines()]
    expected = operation_lines(seg["completion"] for i, r in enumerate(records) for seg in segments(r, i))
    assert sorted(lines) == sorted(expected) and stats["operation_lines"] == len(expected) > 50
    assert lines != expected  # shuffled
    assert all(r["input_ids"][0] == TOK.bos_id and r["length"] <= 64 for r in rows)
    assert all(r["labels"] == [IGNORE, *r["input_ids"][1:]] for r in rows)
    assert stats["loss_tokens"] == stats["tokens"] - len(rows)
    again, _ = operation_rows(records, TOK, row_tokens=64, solved_only=False, seed=1)
    assert again == rows  # same seed, same rows
    _, solved_stats = operation_rows(records, TOK, row_tokens=64, seed=1)
    assert 0 < solved_stats["operation_lines"] < stats["operation_lines"]  # failed searches dropped
    with pytest.raises(TraceDataError, match="row_tokens=1"):
        operation_rows(records, TOK, row_tokens=1)
    results, results_stats = operation_rows(
        records, TOK, row_tokens=64, solved_only=False, seed=1, loss="results"
    )
    assert [r["input_ids"] for r in results] == [r["input_ids"] for r in rows]  # the same rows
    for r in results:  # loss exactly on each line's result digits and newline
        text = "".join(
            TOK.decode([i]) if lab != IGNORE else "_" for i, lab in zip(r["input_ids"], r["labels"])
        )
        kept = [part.split("_")[-1] for part in text.split("\n")[:-1]]
        whole = TOK.decode(r["input_ids"][1:]).splitlines()
        assert kept == [line.split("=")[1] for line in whole]
    assert results_stats["loss_tokens"] < stats["loss_tokens"] / 2
    with pytest.raises(TraceDataError, match="loss='ops'; accepted: all, results"):
        operation_rows(records, TOK, loss="ops")


def test_mixed_operation_rows_hold_the_asked_share_of_tokens_cycling_when_too_few():
    records = build_traces(generate_problems(12, seed=4, min_numbers=4, max_numbers=4), "apr", seed=0)
    rows, _ = build_rows(records, TOK, solved_only=False)
    ops, _ = operation_rows(records, TOK, row_tokens=64, solved_only=False)
    for share in (0.1, 0.5, 0.9):
        mixed, info = mix_rows(rows, ops, share)
        assert mixed[: len(rows)] == rows and info["rows"] == len(mixed) - len(rows)
        assert share <= info["actual_share"] < share + 0.02  # at most one row over
    assert mix_rows(rows, ops, 0.9)[1]["rows"] > len(ops)  # cycled
    assert mix_rows(rows, ops, 0.0) == (rows, {"share": 0.0, "rows": 0, "tokens": 0, "actual_share": 0.0})
    with pytest.raises(ValueError, match=r"share=1.0; accepted: \[0, 1\)"):
        mix_rows(rows, ops, 1.0)


def test_length_grouped_batches_waste_less_padding_than_random_ones():
    lengths = [int(x) for x in torch.randint(50, 800, (2000,), generator=torch.Generator().manual_seed(0))]
    grouped = padding_waste(lengths, 16, grouped=True)
    assert grouped < 0.1 < padding_waste(lengths, 16, grouped=False)


@pytest.mark.parametrize(
    ("content", "match"),
    [(None, r"no trace file at '.*traces.json'"), ("{", "is not valid JSON"), ("[{}]", "have no nums")],
    ids=["missing", "not-json", "no-traces"],
)
def test_bad_trace_files_are_clear_errors(tmp_path, content, match):
    if content is not None:
        (tmp_path / "traces.json").write_text(content)
    with pytest.raises(TraceDataError, match=match):
        load_trace_records(tmp_path)


def test_wilson_interval_matches_known_values():
    lo, hi = wilson_interval(5, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.2366, 0.7634)
    assert wilson_interval(0, 10)[0] == 0.0 and round(wilson_interval(0, 10)[1], 4) == 0.2775


def test_budget_callback_stops_and_saves_on_tokens_and_steps():
    class State:
        num_input_tokens_seen, global_step = 0, 0

    class Control:
        should_training_stop = should_save = False

    cb, state = BudgetCallback(tokens=100), State()
    assert not cb.on_step_end(None, state, Control()).should_training_stop
    state.num_input_tokens_seen = 100
    control = cb.on_step_end(None, state, Control())
    assert control.should_training_stop and control.should_save and "token budget" in cb.reason
    cb, state.global_step = BudgetCallback(stop_at_step=3), 3
    assert cb.on_step_end(None, state, Control()).should_training_stop


# ------------------------------------------------------------------------------------ training runs


@pytest.fixture(scope="module")
def four_traces(tmp_path_factory):
    """4 short solved SoS+ traces of 3-number problems, as an `apr-env data traces` file."""
    records = build_traces(generate_problems(200, seed=0, min_numbers=3, max_numbers=3), "serial", seed=0)
    solved = sorted((r for r in records if r["solved"]), key=lambda r: len(r["search_path"]))[:4]
    path = tmp_path_factory.mktemp("data") / "traces.json"
    path.write_text(json.dumps(solved))
    return path


@pytest.fixture(scope="module")
def memorised(four_traces, tmp_path_factory):
    """`tiny` trained on the 4 traces until it has them by heart (100 steps at lr 1e-2)."""
    config = SFTRunConfig(
        out=str(tmp_path_factory.mktemp("mem")),
        preset="tiny",
        data=str(four_traces),
        protocol="serial",
        n_test=0,
        max_steps=100,
        lr=1e-2,
        min_lr_ratio=0.1,
        warmup_steps=5,
        batch_size=4,
        logging_steps=10,
        save_steps=1000,
        max_length=512,
        eval=False,
        progress=False,
        num_threads=1,  # on a shared 2-core CPU, 1 thread trains tiny ~5x faster than 2
    )
    summary = train_sft(config)
    return config, summary


def test_tiny_memorises_traces_and_replays_one_through_agent_and_env(memorised):
    config, summary = memorised
    assert summary["final_loss"] < 0.05
    records = load_trace_records(config.data)
    backend = TransformersBackend(config.out, TOK)
    try:
        agent = LLMAgent(backend, TOK, LLMAgentConfig(context_window=512))
        run = RunConfig(protocol="serial", limits=Limits(context_window=512), record_calls=True)
        episodes = run_episodes(agent, [Problem(r["target"], tuple(r["nums"])) for r in records], run)
    finally:
        backend.close()
    reproduced = 0
    for record, ep in zip(records, episodes):
        [row] = record_rows(record, TOK)
        wanted = [t for t in row["labels"] if t != IGNORE]
        if ep["calls"][0][0]["output_ids"] == wanted:
            assert ep["correct"], "the environment verifies the memorised answer"
            reproduced += 1
    assert reproduced >= 1


def test_saved_model_decodes_identically_in_process_and_behind_the_server(memorised):
    config, _ = memorised
    prompt = [TOK.bos_id, *TOK.encode(load_trace_records(config.data)[0]["search_path"].split("\n")[0])]
    request = GenerationRequest(input_ids=prompt, sampling=_greedy(64))
    local = TransformersBackend(config.out, TOK)
    try:
        expected = local.submit(request).result(timeout=120).output_ids
    finally:
        local.close()
    served = TransformersBackend(config.out, TOK)
    server = serve(served, tokenizer=TOK)
    try:
        client = SGLangBackend(server.url, tokenizer=TOK)
        try:
            got = client.submit(GenerationRequest(input_ids=prompt, sampling=_greedy(64))).result(timeout=120)
        finally:
            client.close()
    finally:
        server.shutdown()
        served.close()
    assert list(got.output_ids) == list(expected) and len(expected) == 64


def _greedy(n: int):
    from runtime.backends.base import SamplingParams

    return SamplingParams(max_new_tokens=n, temperature=0.0)


def _losses(out) -> list[tuple[int, float]]:
    with open(out / "metrics.csv") as f:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, capsys):
    from apr_env.cli import main

    common = [
        "train", "sft", "--preset", "tiny", "--protocol", "serial", "--n-train", "24", "--n-test", "2",
        "--max-steps", "6", "--batch-size", "4", "--logging-steps", "1", "--save-steps", "100",
        "--max-length", "512", "--no-progress", "--num-threads", "1", "--seed", "5",
    ]  # fmt: skip
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main([*common, "--out", str(whole), "--eval-n", "2"]) == 0
    assert "held-out eval: accuracy" in capsys.readouterr().out
    assert main([*common, "--out", str(parts), "--stop-at-step", "3", "--no-eval"]) == 0
    assert "(stop at step 3)" in capsys.readouterr().out
    assert main([*common, "--out", str(parts), "--resume", "--no-eval"]) == 0
    assert len(_losses(whole)) == 6
    assert _losses(parts) == _losses(whole)
    a, b = load_file(whole / "model.safetensors"), load_file(parts / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    run = json.loads((whole / "run.json").read_text())
    assert run["data"]["solved_only"] is True and run["eval"]["episodes"] == 2
    assert len(run["eval"]["accuracy_ci95"]) == 2
    problems = str(whole / "test_problems.json")
    argv = ["eval", "--agent", "llm", "--model", str(whole), "--problems", problems, "--n", "2"]
    assert main([*argv, "--protocol", "serial", "--context-window", "256"]) == 0
    assert re.search(
        r"accuracy \d\.\d{3} on 2 problems \(95% Wilson interval \d\.\d{3}-\d\.\d{3}\)",
        capsys.readouterr().out,
    )
