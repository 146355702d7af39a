"""Replays of hand-written and official traces through both environments.

- The worked example of reference/apr-reference.md section 2.9 (conftest `worked_example`:
  parent segment, two children, resumed parent) fed as actions to ``gymnasium.make`` and to
  ``apr_env.parallel_env``: a verified, correct episode whose metrics are counted by hand
  with the per-character tokenizer (arithmetic in tests/test_metrics.py).
- Every APR tree of tests/data/official-traces.json (see its README): parent
  segment 0 minus its two prompt lines as the root's first action, each child trace minus
  its two prompt lines as that child's action, the resumed parent's continuation after
  ``<End Sub Searches>\\n`` as the root's next action. Both environments reach the official
  verdict (`official_correct`) and answer path (`official_answer_path`), show every child
  its official prompt and the resumed root its official context (join blocks byte-exact),
  and rebuild every official sequence byte for byte. The official solver has no context
  window; these replays use 8,192 tokens (the longest official sequence is 4,793 Countdown
  tokens); a separate test replays with the default 4,096.
- Every SoS+ trace there, played through the serial protocol, parses and verifies as its
  `solved` flag says.
"""

from __future__ import annotations

import golden
import gymnasium as gym
import pytest
from golden import END_SUB, AprReplay, apr_replay

import apr_env
from apr_env import Problem, verify
from apr_env.tokenizer import default_tokenizer

GOLDEN_DATA = golden.GOLDEN
WIDE = 8192


def play_gym(env, replay: AprReplay) -> tuple[dict, list[str]]:
    """Replay through a Gymnasium env; returns the final info and the problems found on the way."""
    obs, info = env.reset(options={"problem": replay.problem})
    problems, pending, k = [], {}, 0
    while True:
        tid = obs["thread"]
        if tid == 0:
            if (
                k > 0
                and obs["context"] != replay.segments[k][: replay.segments[k].rindex(END_SUB) + len(END_SUB)]
            ):
                problems.append(f"resumed root context of segment {k} differs")
            action = replay.root_actions[k]
            k += 1
        else:
            prompt, action, _ = pending.pop(tid)
            if obs["context"] != prompt:
                problems.append(f"thread {tid} prompt {obs['context']!r} != {prompt!r}")
        obs, _, term, trunc, info = env.step(action)
        if term or trunc:
            return info, problems
        if tid == 0 and info["event"] == "spawn":
            # the root waits: runnable lists exactly its new children, in spawn order
            pending.update(zip(info["runnable"], replay.children[k - 1]))


def play_parallel(env, replay: AprReplay) -> tuple[dict, list[str]]:
    """Replay through the PettingZoo env (children of a spawn all act in one step)."""
    obs, _ = env.reset(options={"problem": replay.problem})
    problems, pending, k = [], {}, 0
    actions = {"t0": replay.root_actions[0]}
    while True:
        root_acted = "t0" in actions
        obs, _, _, _, infos = env.step(actions)
        if not env.agents:
            return infos["t0"]["episode"], problems
        new = sorted((a for a in obs if a != "t0" and a not in pending), key=lambda a: int(a[1:]))
        if root_acted:
            k += 1
            pending = dict(zip(new, replay.children[k - 1]))
            for agent, (prompt, _, _) in pending.items():
                if obs[agent]["context"] != prompt:
                    problems.append(f"{agent} prompt differs")
            actions = {agent: spec[1] for agent, spec in pending.items()}
        else:
            expected = replay.segments[k][: replay.segments[k].rindex(END_SUB) + len(END_SUB)]
            if obs["t0"] != {"context": expected, "waiting": 0}:
                problems.append(f"resumed root observation of segment {k} differs")
            actions = {"t0": replay.root_actions[k]}


def play(kind: str, replay: AprReplay, **env_kwargs) -> tuple[dict, list[str], object]:
    """Replay through the Gymnasium ("gym") or PettingZoo ("parallel") env: (info, problems, episode)."""
    if kind == "gym":
        env = gym.make("APRCountdown-v0", **env_kwargs)
        info, problems = play_gym(env, replay)
        return info, problems, env.unwrapped.episode
    env = apr_env.parallel_env(**env_kwargs)
    info, problems = play_parallel(env, replay)
    return info, problems, env.episode


def _episode_texts_match(ep, replay: AprReplay) -> list[str]:
    problems = []
    root = ep.threads[0]
    if [c.context for c in root.calls] != replay.segments:
        problems.append("root segments differ")
    ids = [c for g in ep.groups for c in g.children]
    official = [text for group in replay.children for _, _, text in group]
    if [ep.threads[i].context for i in ids] != official:
        problems.append("child texts differ")
    return problems


# --------------------------------------------------------------------------------------
# Reference section 2.9
# --------------------------------------------------------------------------------------


def _worked_replay(ex) -> AprReplay:
    return AprReplay(
        ex.problem,
        segments=[
            ex.root_prompt + "\n" + ex.root_segment_0,
            ex.kept_prefix + ex.join_block + ex.root_continuation,
        ],
        root_actions=[ex.root_segment_0, ex.root_continuation],
        children=[[(p, a, p + "\n" + a) for p, a in zip(ex.child_prompts, ex.child_actions)]],
    )


# per-character tokenizer; the arithmetic is in tests/test_metrics.py::test_worked_example_metrics_match_hand_count
WORKED_METRICS = {
    "total_tokens": 1745,
    "prefill_tokens": 528,
    "critical_path_tokens": 1496,
    "longest_thread_tokens": 1183,
    "max_context_tokens": 1396,
    "num_threads": 3,
    "num_spawns": 1,
    "depth": 1,
    "false_claims": 0,
}


@pytest.mark.parametrize("kind", ["gym", "parallel"])
def test_worked_example_replays_to_a_verified_correct_episode(worked_example, char_tok, kind):
    replay = _worked_replay(worked_example)
    info, problems, ep = play(kind, replay, tokenizer=char_tok)
    assert problems == [] and _episode_texts_match(ep, replay) == []
    assert info["outcome"] == "correct" and info["correct"] and info["verdict"] == "ok"
    assert info["answer"] == worked_example.answer_path
    assert {k: info["metrics"][k] for k in WORKED_METRICS} == WORKED_METRICS
    assert info["reward"] == pytest.approx(1 + 0.5 * (1 - 1496 / 1745))


# --------------------------------------------------------------------------------------
# Official APR trees
# --------------------------------------------------------------------------------------

APR_IDS = [f"apr{i}" for i in range(len(GOLDEN_DATA["apr"]))]


def test_golden_file_has_the_documented_content():
    assert len(GOLDEN_DATA["apr"]) == 40 and len(GOLDEN_DATA["sosp"]) == 40
    assert any(len(e["trace_dict"]["main_calls"]) > 2 for e in GOLDEN_DATA["apr"])  # repeated spawns


@pytest.mark.parametrize("kind", ["gym", "parallel"])
@pytest.mark.parametrize("entry", GOLDEN_DATA["apr"], ids=APR_IDS)
def test_official_apr_tree_replays_to_the_official_verdict_byte_for_byte(entry, kind):
    replay = apr_replay(entry)
    info, problems, ep = play(kind, replay, context_window=WIDE)
    assert problems == []
    assert _episode_texts_match(ep, replay) == []
    assert info["correct"] == entry["official_correct"]
    assert info["answer"] == entry["official_answer_path"]
    n_children = sum(len(g) for g in replay.children)
    m = info["metrics"]
    assert (m["num_threads"], m["num_spawns"], m["false_claims"]) == (1 + n_children, len(replay.children), 0)
    assert m["depth"] == (1 if n_children else 0)


def test_official_apr_trees_with_the_default_window_keep_the_official_verdicts():
    tok = default_tokenizer()
    env = gym.make("APRCountdown-v0")  # 4,096-token window, as the official runtime
    for i, entry in enumerate(GOLDEN_DATA["apr"]):
        replay = apr_replay(entry)
        too_long = any(tok.count(s) > 4096 for s in replay.segments)
        info, _ = play_gym(env, replay)
        assert info["correct"] == entry["official_correct"], i
        assert info["truncated"] == too_long, i
        if too_long:  # only trace 2: its last segment holds 4,793 tokens (unsolved anyway)
            assert info["outcome"] == "context_window"


# --------------------------------------------------------------------------------------
# Official SoS+ traces through the serial protocol
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gym", "parallel"])
@pytest.mark.parametrize(
    "entry", GOLDEN_DATA["sosp"], ids=[f"sosp{i}" for i in range(len(GOLDEN_DATA["sosp"]))]
)
def test_official_sosp_trace_verifies_as_its_solved_flag_says(entry, kind):
    problem = Problem(entry["target"], tuple(entry["nums"]))
    prompt, action = entry["search_path"].split("\n", 1)
    if kind == "gym":
        env = gym.make("APRCountdown-v0", protocol="serial", context_window=WIDE)
        obs, _ = env.reset(options={"problem": problem})
        assert obs["context"] == prompt
        obs, _, term, trunc, info = env.step(action)
        assert term and not trunc
        assert env.unwrapped.episode.threads[0].context == entry["search_path"]
    else:
        env = apr_env.parallel_env(protocol="serial", context_window=WIDE)
        obs, _ = env.reset(options={"problem": problem})
        assert obs["t0"]["context"] == prompt
        _, _, terms, _, infos = env.step({"t0": action})
        assert terms == {"t0": True} and env.agents == []
        info = infos["t0"]["episode"]
    assert info["correct"] == entry["solved"]
    if entry["solved"]:
        assert verify(problem, info["answer"]).correct and info["answer"].startswith("Moving to Node #0\n")
    assert info["metrics"]["num_threads"] == 1 and info["metrics"]["num_spawns"] == 0
