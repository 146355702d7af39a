"""The symbolic agents inside the environments: same traces as the raw solvers, verified claims,
per-problem seeding, every protocol, and the data / bench / show / eval command lines."""

from __future__ import annotations

import itertools
import json
import statistics

import pytest

from agents.apr_solver import apr_trace
from agents.sosp import sosp_trace
from agents.symbolic import SymbolicAgent, SymbolicConfig, parse_join
from apr_env import Episode, generate_problems
from apr_env.agent import observe
from apr_env.cli import main as cli
from apr_env.seeding import episode_seed
from runtime.runner import RunConfig, run_episodes
from trainers.data import build_traces, segments

PROBLEMS = generate_problems(60, seed=5)


def _calls(record, thread=0):
    return [c["prompt"] + c["completion"] for c in record["calls"][thread]]


def test_apr_episodes_in_the_env_write_exactly_the_raw_solver_traces():
    records = run_episodes(SymbolicAgent(), PROBLEMS, RunConfig(protocol="apr", record_calls=True))
    compared = 0
    for i, (problem, rec) in enumerate(zip(PROBLEMS, records)):
        if rec["truncated"]:  # the raw solver has no context window
            continue
        trace = apr_trace(problem, seed=episode_seed(0, i))
        assert _calls(rec) == trace["trace_dict"]["main_calls"]
        children = [c["main_calls"][0] for group in trace["trace_dict"]["sub_calls"] for c in group]
        assert sorted(_calls(rec, t)[0] for t in range(1, len(rec["calls"]))) == sorted(children)
        assert rec["correct"] == trace["solved"]  # a claim verifies exactly when the solver reached the goal
        compared += 1
    assert compared >= 55


def test_sosp_episodes_in_the_env_write_exactly_the_raw_solver_traces():
    records = run_episodes(SymbolicAgent(), PROBLEMS, RunConfig(protocol="serial", record_calls=True))
    for i, (problem, rec) in enumerate(zip(PROBLEMS, records)):
        trace = sosp_trace(problem, seed=episode_seed(0, i))
        if not rec["truncated"]:
            assert _calls(rec) == [trace["search_path"]]
            assert rec["correct"] == trace["solved"]


@pytest.mark.parametrize("protocol", ["serial", "apr", "fork_full_context", "broadcast", "self_consistency"])
def test_every_protocol_plays_cleanly_and_reproducibly(protocol):
    a = run_episodes(SymbolicAgent(SymbolicConfig(beam_size=3)), PROBLEMS[:20], RunConfig(protocol=protocol))
    b = run_episodes(
        SymbolicAgent(SymbolicConfig(beam_size=3)),
        PROBLEMS[:20],
        RunConfig(protocol=protocol, max_concurrent=3),
    )
    assert [r["metrics"] for r in a] == [r["metrics"] for r in b]  # batch composition does not matter
    assert all(not r["format_errors"] for r in a)
    assert sum(r["correct"] for r in a) >= 8


def _play_alone(problem, seed: int) -> dict:
    """One episode, nothing else in flight: the agent sees only this problem's threads."""
    ep, agent = Episode(problem, "apr"), SymbolicAgent()
    while not ep.done:
        batch = [observe(ep, tid, key=0, seed=seed) for tid in ep.runnable]
        for obs, action in zip(batch, agent.act(batch)):
            ep.act(obs.thread, action)
    return ep.summary()


def test_an_episode_depends_only_on_its_problem_and_seed_not_on_what_runs_beside_it():
    together = run_episodes(
        SymbolicAgent(), PROBLEMS[:10], RunConfig(protocol="apr", seed=4, max_concurrent=10)
    )
    for i in (0, 3, 9):
        alone = _play_alone(PROBLEMS[i], episode_seed(4, i))
        assert alone["metrics"] == together[i]["metrics"]
        assert alone["answer"] == together[i]["answer"]


def test_different_seeds_give_different_searches():
    a = run_episodes(SymbolicAgent(), PROBLEMS[:20], RunConfig(protocol="apr", seed=0))
    b = run_episodes(SymbolicAgent(), PROBLEMS[:20], RunConfig(protocol="apr", seed=1))
    assert [r["metrics"] for r in a] != [r["metrics"] for r in b]


def test_broadcast_children_skip_work_their_siblings_published():
    cfg = SymbolicConfig(beam_size=6)
    apr = run_episodes(SymbolicAgent(cfg), PROBLEMS, RunConfig(protocol="apr"))
    board = run_episodes(SymbolicAgent(cfg), PROBLEMS, RunConfig(protocol="broadcast"))
    assert [r["correct"] for r in board] == [r["correct"] for r in apr]
    mean = lambda rs, k: statistics.fmean(r["metrics"][k] for r in rs)  # noqa: E731
    assert mean(board, "total_tokens") < mean(apr, "total_tokens")
    assert mean(board, "prefill_tokens") > mean(apr, "prefill_tokens")  # the board is paid for as context


def test_fork_full_context_costs_context_not_generation():
    cfg = SymbolicConfig(beam_size=4)
    apr = run_episodes(SymbolicAgent(cfg), PROBLEMS[:30], RunConfig(protocol="apr"))
    ffc = run_episodes(SymbolicAgent(cfg), PROBLEMS[:30], RunConfig(protocol="fork_full_context"))
    for a, f in zip(apr, ffc):
        assert a["metrics"]["total_tokens"] == f["metrics"]["total_tokens"]
        if a["metrics"]["num_threads"] > 1:
            assert f["metrics"]["prefill_tokens"] > a["metrics"]["prefill_tokens"]


def test_self_consistency_votes_over_its_children():
    records = run_episodes(
        SymbolicAgent(SymbolicConfig(n=3)), PROBLEMS[:20], RunConfig(protocol="self_consistency")
    )
    assert all(r["metrics"]["num_threads"] == 4 for r in records)
    for r in records:
        any_child = any(t["answer_verified"] for t in r["tree"] if t["parent"] == 0)
        assert r["correct"] == any_child  # symbolic claims are always true, so cons@N == pass@N


def test_parse_join_reads_answers_in_spawn_order():
    context = (
        "x\n<Sub Searches>\n<No Solution in Sub Search 0 at level 1 at Node #0,1>\n"
        "<Goal Reached in Sub Search 1 at level 1 at Node #0,0>\nMoving to Node #0,0\n10,10 equal: Goal Reached\n"
        "<End Sub Searches>\n"
    )
    assert parse_join(context) == [None, "Moving to Node #0,0\n10,10 equal: Goal Reached"]


def test_trace_data_is_identical_for_any_worker_count_and_segments_rebuild_the_traces():
    one = build_traces(PROBLEMS[:12], "apr", workers=1, chunk=5)
    two = build_traces(PROBLEMS[:12], "apr", workers=2, chunk=3)
    assert one == two
    for rec in one:
        segs = segments(rec)
        parents = [s for s in segs if s["kind"] == "parent"]
        assert [s["prompt"] + s["completion"] for s in parents] == rec["trace_dict"]["main_calls"]
        for s in segs:  # the loss-bearing part never contains runtime-inserted join text
            assert "<Sub Searches>" not in s["completion"] and "<End Sub Searches>" not in s["completion"]


def test_official_token_stats_follow_the_reference_definition_counted_by_encoding():
    # Recomputed here from encoded lengths (not `count`), on a problem that spawns twice.
    from apr_env.tokenizer import default_tokenizer
    from trainers.data import official_token_stats

    tok = default_tokenizer()
    record = next(r for r in (apr_trace(p, seed=i) for i, p in enumerate(PROBLEMS)) if r["num_spawns"] >= 2)
    parents = record["trace_dict"]["main_calls"]
    children = [c["main_calls"][0] for g in record["trace_dict"]["sub_calls"] for c in g]
    lengths = [len(tok.encode(t, add_bos=True, add_eos=True)) for t in parents + children]
    shared = 0
    for a, b in itertools.pairwise(parents):
        k = 0
        while k < min(len(a), len(b)) and a[k] == b[k]:
            k += 1
        shared += len(tok.encode(a[:k]))
    stats = official_token_stats(record)
    assert stats["token_count"] == sum(lengths) - shared
    assert stats["longest_seq_token_count"] == max(lengths)
    assert stats["avg_seq_token_count"] == stats["token_count"] / (len(children) + 1)
    assert stats["avg_sub_seq_token_count"] == sum(lengths[len(parents) :]) / len(children)
    assert stats["sub_call_count"] == len(children) / record["num_spawns"]
    no_spawn = next(r for r in (apr_trace(p, seed=i) for i, p in enumerate(PROBLEMS)) if r["num_spawns"] == 0)
    assert official_token_stats(no_spawn)["avg_sub_seq_token_count"] == 0
    assert official_token_stats(no_spawn)["sub_call_count"] == 0


def test_trace_data_carries_the_official_token_stats_when_asked(tmp_path):
    from trainers.data import official_token_stats

    keys = {"token_count", "longest_seq_token_count", "avg_seq_token_count", "avg_sub_seq_token_count"}
    plain = build_traces(PROBLEMS[:6], "apr")
    assert not keys & set(plain[0])
    with_stats = build_traces(PROBLEMS[:6], "apr", token_stats=None, workers=2, chunk=2)
    assert [{k: r[k] for k in keys} for r in with_stats] == [
        {k: official_token_stats(r)[k] for k in keys} for r in plain
    ]
    assert not keys & set(build_traces(PROBLEMS[:2], "serial", token_stats=None)[0])  # SoS+ files have none
    assert cli(["data", "traces", "--n", "3", "--token-stats", "--out", str(tmp_path / "t")]) == 0
    assert all(keys <= set(t) for t in json.loads((tmp_path / "t" / "traces.json").read_text()))


def test_cli_data_traces_bench_show_and_eval_smoke(tmp_path, capsys):
    assert cli(["data", "traces", "--protocol", "serial", "--n", "5", "--out", str(tmp_path / "t")]) == 0
    traces = json.loads((tmp_path / "t" / "traces.json").read_text())
    assert len(traces) == 5 and all("search_path" in t for t in traces)
    assert len((tmp_path / "t" / "segments.jsonl").read_text().splitlines()) == 5
    out = tmp_path / "bench"
    assert (
        cli(["bench", "--n", "8", "--protocols", "serial", "apr", "--workers", "1", "--out", str(out)]) == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert {p["protocol"] for p in results["points"]} == {"serial", "apr"}
    assert all(
        (out / name).exists()
        for name in (
            "fig4a_accuracy_vs_total_tokens.png",
            "fig4b_cumulative_accuracy_vs_context.png",
            "fig6_accuracy_vs_critical_path_tokens.png",
        )
    )
    assert cli(["show", "--protocol", "apr", "--index", "2", "--out", str(tmp_path / "ep.png")]) == 0
    assert (tmp_path / "ep.png").stat().st_size > 1000
    assert cli(["eval", "--agent", "apr", "--n", "6", "--out", str(tmp_path / "eval.json")]) == 0
    point = json.loads((tmp_path / "eval.json").read_text())["points"][0]
    assert point["episodes"] == 6 and point["latency_s"]["mean"] > 0
    assert "latency per episode" in capsys.readouterr().out


def test_children_of_a_root_played_by_another_agent_search_from_their_prompts_with_the_same_streams():
    # The child agent never saw the root's spawn: it reads the start node from the prompt and
    # derives the child's stream key itself; the texts must equal a single agent's episode.
    def play(root_agent, child_agent, problem, seed):
        ep = Episode(problem, "apr")
        while not ep.done:
            tid = ep.next_thread
            agent = root_agent if tid == 0 else child_agent
            ep.act(tid, agent.act([observe(ep, tid, key=0, seed=seed)])[0])
        return [c.completion for t in ep.threads for c in t.calls]

    spawned = 0
    for seed, problem in enumerate(PROBLEMS[:15]):
        one = SymbolicAgent()
        texts = play(one, one, problem, seed)
        assert play(SymbolicAgent(), SymbolicAgent(), problem, seed) == texts
        spawned += len(texts) > 2
    assert spawned >= 5
