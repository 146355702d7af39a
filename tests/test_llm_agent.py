"""The LLM agent and the continuous runner: prompts as token ids, stops, forced spawns, failures.

A scripted backend stands in for a model: it decodes each request's prompt and answers
with the text a script gives for it (the official solver's golden traces), as token ids,
stopping at the request's stop ids like a real backend. That checks the agent's plumbing
without a trained model; `test_llm_identity.py` runs real (tiny) models.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

import golden
import pytest

from agents.llm_agent import LLMAgent, LLMAgentConfig
from apr_env import Limits, Problem
from apr_env import grammar as g
from apr_env.tokenizer import default_tokenizer
from runtime.backends.base import Backend, BackendError, GenerationRequest, GenerationResult
from runtime.runner import RunConfig, run_episodes

GOLDEN = golden.APR
TOK = default_tokenizer()


class ScriptBackend(Backend):
    """Answers each prompt with `script(prompt_text)`, as ids, honouring stop ids and max_new_tokens."""

    def __init__(self, script, *, eos: bool = True, fail_after: int | None = None):
        self.script = script
        self.eos = eos
        self.fail_after = fail_after
        self.requests: list[GenerationRequest] = []
        self.lock = threading.Lock()

    def submit(self, request: GenerationRequest) -> Future:
        future: Future = Future()
        with self.lock:
            self.requests.append(request)
            n = len(self.requests)
        if self.fail_after is not None and n > self.fail_after:
            future.set_exception(BackendError("scripted failure"))
            return future
        prompt = TOK.decode([i for i in request.input_ids if i != TOK.bos_id])
        ids = TOK.encode(self.script(prompt)) + ([TOK.eos_id] if self.eos else [])
        out, reason = [], "length"
        for tid in ids[: request.sampling.max_new_tokens]:
            out.append(tid)
            if tid in request.sampling.stop_token_ids:
                reason = "stop"
                break
        future.set_result(
            GenerationResult(
                request.request_id,
                out,
                TOK.decode(out),
                reason,
                logprobs=[-0.5] * len(out),
                prompt_tokens=len(request.input_ids),
            )
        )
        return future


def golden_script(entry: dict):
    """prompt text -> completion, from one golden APR tree (root segments and children)."""
    td = entry["trace_dict"]
    by_prompt = {}
    for k, text in enumerate(td["main_calls"]):
        cut = (
            text.index("\n", text.index("Current State: "))
            if k == 0
            else (text.rindex(g.END_SUB_SEARCHES + "\n") + len(g.END_SUB_SEARCHES) + 1)
        )
        by_prompt[text[:cut]] = text[cut:]
    for group in td["sub_calls"]:
        for child in group:
            text = child["main_calls"][0]
            cut = text.index("\n", text.index("Current State: "))
            by_prompt[text[:cut]] = text[cut:]
    return lambda prompt: by_prompt.get(prompt, "No solution found.\n")


def _problem(entry: dict) -> Problem:
    return Problem(entry["target"], tuple(entry["nums"]))


@pytest.mark.parametrize("index", [0, 1, 2, 5])
def test_scripted_golden_tree_plays_to_the_official_verdict(index):
    entry = GOLDEN[index]
    agent = LLMAgent(ScriptBackend(golden_script(entry)), TOK)
    [rec] = run_episodes(agent, [_problem(entry)], RunConfig(protocol="apr", record_calls=True))
    assert rec["correct"] == entry["official_correct"]
    assert rec["answer"] == entry["official_answer_path"]
    assert rec["metrics"]["num_threads"] == 1 + sum(map(len, entry["trace_dict"]["sub_calls"]))


def test_resumed_parent_keeps_its_own_token_ids_up_to_the_calling_block():
    entry = GOLDEN[0]
    backend = ScriptBackend(golden_script(entry))
    run_episodes(LLMAgent(backend, TOK), [_problem(entry)], RunConfig(protocol="apr"))
    roots = [r for r in backend.requests if r.cache_key.endswith("/0")]
    assert len(roots) == 2
    first = roots[0]
    first_out = TOK.encode(golden_script(entry)(TOK.decode(first.input_ids[1:])))
    calling = first_out.index(TOK.token_id(g.CALLING))
    kept = first.input_ids + first_out[:calling]
    assert roots[1].input_ids[: len(kept)] == kept  # no re-tokenization of what the model wrote
    join_ids = roots[1].input_ids[len(kept) :]
    assert join_ids[0] == TOK.token_id(g.SUB_SEARCHES)


def test_stop_ids_and_per_call_token_budget():
    entry = GOLDEN[0]
    backend = ScriptBackend(golden_script(entry))
    run_episodes(
        LLMAgent(backend, TOK, LLMAgentConfig(context_window=4096)),
        [_problem(entry)],
        RunConfig(protocol="apr"),
    )
    for r in backend.requests:
        assert set(r.sampling.stop_token_ids) == {
            TOK.eos_id,
            TOK.token_id(g.END_CALLING),
            TOK.token_id(g.SUB_SEARCHES),
        }
        assert r.sampling.max_new_tokens == 4096 - len(r.input_ids)
    children = [r for r in backend.requests if not r.cache_key.endswith("/0")]
    assert children and all(r.fork_from.endswith("/0") for r in children)


def test_a_self_written_sub_searches_is_turned_into_a_spawn():
    problem = Problem(10, (1, 4, 6, 8))
    state = {"n": 0}

    def script(prompt: str) -> str:
        state["n"] += 1
        if prompt.endswith(g.CALLING):  # the forced continuation
            return "\n<Start Sub Search 0 at level 1> Moving to Node #0,0\n<End Calling Sub Searches>\n"
        if prompt.startswith("Moving to Node #0\n") and g.END_SUB_SEARCHES not in prompt:
            return (
                "\nExploring Operation: 8/4=2, Resulting Numbers: [1, 6, 2]\n"
                "Generated Node #0,0: 10:[1, 6, 2] Operation: 8/4=2\n<Sub Searches>\nmade-up results"
            )
        return "No solution found.\n"

    backend = ScriptBackend(script)
    [rec] = run_episodes(LLMAgent(backend, TOK), [problem], RunConfig(protocol="apr", record_calls=True))
    root_first = rec["calls"][0][0]
    assert g.CALLING in root_first["completion"] and "made-up" not in root_first["completion"]
    assert root_first["forced_spawns"] == 1
    assert rec["metrics"]["num_threads"] == 2
    assert len(root_first["logprobs"]) == len(root_first["output_ids"])  # the forced id has its 0.0


def test_backend_failure_propagates_instead_of_losing_the_episode():
    entry = GOLDEN[0]
    agent = LLMAgent(ScriptBackend(golden_script(entry), fail_after=1), TOK)
    with pytest.raises(BackendError, match="scripted failure"):
        run_episodes(agent, [_problem(entry)], RunConfig(protocol="apr"))


def test_64_concurrent_episodes_complete_once_each_in_problem_order():
    problems = [_problem(e) for e in GOLDEN] * 2
    scripts = {(e["target"], tuple(e["nums"])): golden_script(e) for e in GOLDEN}

    def script(prompt: str) -> str:
        for s in scripts.values():
            out = s(prompt)
            if out != "No solution found.\n":
                return out
        return "No solution found.\n"

    seen = []
    records = run_episodes(
        LLMAgent(ScriptBackend(script), TOK),
        problems[:64],
        RunConfig(protocol="apr", max_concurrent=64),
        on_record=lambda r: seen.append(r["index"]),
    )
    assert len(records) == 64 and sorted(seen) == list(range(64))
    assert [r["problem"]["target"] for r in records] == [p.target for p in problems[:64]]
    by_problem = {(e["target"], tuple(e["nums"])): e["official_correct"] for e in GOLDEN}
    assert all(
        r["correct"] == by_problem[(r["problem"]["target"], tuple(r["problem"]["numbers"]))] for r in records
    )


def test_context_window_caps_generation_and_is_recorded():
    problem = Problem(10, (1, 4, 6, 8))
    backend = ScriptBackend(
        lambda prompt: "\nExploring Operation: 8/4=2, Resulting Numbers: [1, 6, 2]" * 50, eos=False
    )
    [rec] = run_episodes(
        LLMAgent(backend, TOK, LLMAgentConfig(context_window=128)),
        [problem],
        RunConfig(protocol="apr", limits=Limits(context_window=128)),
    )
    assert rec["metrics"]["max_context_tokens"] <= 128
    assert rec["outcome"] in ("no_answer", "context_window")


def test_an_episode_ended_by_a_sibling_ignores_the_late_answers_of_the_others():
    # The shared token budget ends the episode while siblings still have requests in flight;
    # their answers arrive after the episode is retired and must not crash the runner.
    entry = GOLDEN[0]
    for budget in (300, 550, 800):
        agent = LLMAgent(ScriptBackend(golden_script(entry)), TOK)
        [rec] = run_episodes(
            agent, [_problem(entry)], RunConfig(protocol="apr", limits=Limits(max_total_tokens=budget))
        )
        assert rec["outcome"] == "token_budget"


class _HangingBackend(Backend):
    """Requests never finish; records what was aborted."""

    def __init__(self):
        self.submitted: list[GenerationRequest] = []
        self.aborted: list[str] = []

    def submit(self, request: GenerationRequest) -> Future:
        self.submitted.append(request)
        return Future()

    def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)


def test_cancel_aborts_the_threads_request_in_flight_in_the_backend():
    from apr_env import Episode
    from apr_env.agent import observe

    backend = _HangingBackend()
    agent = LLMAgent(backend, default_tokenizer())
    ep = Episode(Problem(10, (1, 4, 6, 8)), "apr")
    agent.submit(observe(ep, 0, key=3, seed=0))
    agent.cancel(3, 0)
    agent.cancel(3, 0)  # a second cancel has nothing left to abort
    assert backend.aborted == [backend.submitted[0].request_id]


def test_show_plays_one_episode_of_a_model_folder_from_a_problem_file(tmp_path, capsys):
    from apr_env import save_problems
    from apr_env.cli import main as cli
    from trainers.models import init_model

    model = init_model("tiny", tmp_path / "m", seed=0)
    problems = [Problem(target=24, numbers=(2, 3, 4, 1)), Problem(target=17, numbers=(9, 8, 5, 3))]
    save_problems(problems, tmp_path / "p.json")
    argv = ["show", "--agent", "llm", "--model", str(model), "--problems", str(tmp_path / "p.json"),
            "--index", "1", "--context-window", "96", "--sub-call-budget", "2", "--out", str(tmp_path / "e.png")]  # fmt: skip
    assert cli(argv) == 0
    out = capsys.readouterr().out
    assert "apr target 17 numbers [9, 8, 5, 3]" in out and "total" in out  # the file's problem 1
    assert (tmp_path / "e.png").stat().st_size > 1000
    with pytest.raises(SystemExit, match=r"--index 2 is outside .*p.json \(0..1\)"):
        cli([*argv[:8], "2", *argv[9:]])
