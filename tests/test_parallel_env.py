"""Specification of ``apr_env.parallel_env()`` (`apr_env.envs.parallel_env.APRCountdownParallelEnv`).

Covers: PettingZoo's own checks: `parallel_api_test` (random text actions, and a sampler
that spawns at every turn so agents come and go), `api_test` through `parallel_to_aec`,
`parallel_seed_test`, `seed_test` and `render_test` ('human' and 'ansi'); agents ``t0..t{K-1}``; children joining ``agents``
in the step that spawns them; the ``waiting`` flag and the ignored action of a waiting
parent; finished threads leaving for good; ids never reused; the team reward and the
episode summary in the final step; truncation by a limit; seeding and rendering; and a
hypothesis fuzz (every live agent acts every step) that never raises, keeps the agent
invariants and ends within the step bound computed from the limits.
"""

from __future__ import annotations

import random
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, render_test, seed_test
from pettingzoo.utils.conversions import parallel_to_aec

import apr_env
from apr_env import Problem
from apr_env.render import render_tree

P = Problem(10, (1, 4, 6, 8))
SPAWN2 = (
    "<Calling Sub Searches>\n<Start Sub Search 0 at level 1> Moving to Node #0\n"
    "<Start Sub Search 1 at level 1> Moving to Node #0\n<End Calling Sub Searches>"
)


def _make(**kwargs):
    return apr_env.parallel_env(**kwargs)


# Episodes end with unused thread ids (t1.. never spawned), which PettingZoo reports as a soft warning.
@pytest.mark.filterwarnings("ignore:No agents present but not all possible_agents")
@pytest.mark.parametrize("protocol", ["apr", "serial"])
def test_pettingzoo_parallel_api_test_passes(protocol):
    parallel_api_test(_make(protocol=protocol), num_cycles=50)


def test_parallel_api_test_passes_while_agents_spawn_and_finish():
    env = _make(max_threads=12, max_depth=2, context_window=1024)
    rng = random.Random(0)
    fragments = [SPAWN2, SPAWN2, "No solution found.", "Exploring", "10,10 equal: Goal Reached"]
    # every agent's action space is the same cached object: make its samples spawn or end threads
    env.action_space("t0").sample = lambda mask=None, probability=None: rng.choice(fragments)
    peak = []
    step = env.step

    def counting_step(actions):
        out = step(actions)
        peak.append(len(env.episode.threads))
        return out

    env.step = counting_step
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "No agents present but not all possible_agents")
        for _ in range(5):
            parallel_api_test(env, num_cycles=200)
    assert max(peak) >= 5  # trees of several threads were exercised


def _aec(render_mode=None, **kwargs):
    return parallel_to_aec(_make(render_mode=render_mode, **kwargs))


# PettingZoo's AEC api_test warns about what this env is by design: text observations and actions
# (not NumPy arrays, not Box or Discrete spaces) and thread ids t0..t{K-1} (it recommends "name_0").
TEXT_ENV_SOFT_WARNINGS = [
    "ignore:Observation is not a NumPy array",
    "ignore:Observation space for each agent probably should be",
    "ignore:Action space for each agent probably should be",
    "ignore:We recommend agents to be named",
]


@pytest.mark.parametrize("protocol", ["apr", "serial", "broadcast"])
def test_pettingzoo_api_test_passes_through_parallel_to_aec(protocol):
    with warnings.catch_warnings():
        for spec in TEXT_ENV_SOFT_WARNINGS:
            warnings.filterwarnings(*spec.split(":", 1))
        api_test(_aec(protocol=protocol), num_cycles=100)


def test_pettingzoo_seed_tests_pass_for_the_parallel_and_the_aec_env():
    parallel_seed_test(_make, num_cycles=50)
    seed_test(_aec, num_cycles=50)


def test_pettingzoo_render_test_passes_in_human_and_ansi_modes(capsys):
    render_test(_aec)
    assert "episode: target" in capsys.readouterr().out  # 'human' printed the tree


def test_render_human_prints_the_tree_after_reset_and_each_step_and_returns_none(capsys):
    env = _make(render_mode="human")
    env.reset(options={"problem": P})
    assert capsys.readouterr().out == render_tree(env.episode)
    env.step({"t0": SPAWN2})
    after_spawn = capsys.readouterr().out
    assert "t2 #" in after_spawn and after_spawn == render_tree(env.episode)
    assert env.render() is None
    assert capsys.readouterr().out == after_spawn


def test_possible_agents_are_bounded_by_max_threads_and_spaces_are_cached():
    env = _make(max_threads=5)
    assert env.possible_agents == ["t0", "t1", "t2", "t3", "t4"]
    assert env.observation_space("t3") is env.observation_space("t3")
    assert env.action_space("t1") is env.action_space("t1")


def test_reset_starts_with_the_root_alone():
    env = _make()
    obs, infos = env.reset(seed=0, options={"problem": P})
    assert env.agents == ["t0"] and set(obs) == {"t0"} and set(infos) == {"t0"}
    assert obs["t0"] == {
        "context": "Moving to Node #0\nCurrent State: 10:[1, 4, 6, 8], Operations: []",
        "waiting": 0,
    }
    assert infos["t0"]["problem"] == {"target": 10, "numbers": [1, 4, 6, 8]}


def test_same_reset_seed_gives_the_same_problem():
    a, b = _make(), _make()
    assert a.reset(seed=11)[0] == b.reset(seed=11)[0]
    assert a.reset()[0] == b.reset()[0]


def test_children_join_agents_in_the_step_that_spawns_them():
    env = _make()
    env.reset(options={"problem": P})
    obs, rewards, terms, truncs, infos = env.step({"t0": SPAWN2})
    assert env.agents == ["t0", "t1", "t2"]
    assert set(obs) == set(rewards) == set(terms) == set(truncs) == set(infos) == {"t0", "t1", "t2"}
    assert obs["t0"]["waiting"] == 1 and infos["t0"]["event"] == "spawn"
    child_prompt = "Moving to Node #0\nCurrent State: 10:[1, 4, 6, 8], Operations: []"
    assert obs["t1"] == obs["t2"] == {"context": child_prompt, "waiting": 0}
    assert not any(terms.values()) and not any(truncs.values()) and set(rewards.values()) == {0.0}


def test_waiting_parents_action_is_ignored():
    env = _make()
    env.reset(options={"problem": P})
    obs, *_ = env.step({"t0": SPAWN2})
    before = obs["t0"]["context"]
    obs, _, terms, _, infos = env.step({"t0": "No solution found.", "t1": "thinking"})
    assert infos["t0"]["event"] == "ignored" and obs["t0"] == {"context": before, "waiting": 1}
    assert not terms["t0"] and "t0" in env.agents
    assert "action_while_waiting" in env.episode.summary()["format_errors"]


def test_waiting_parents_action_is_ignored_in_the_step_where_its_children_finish():
    # BUG (episode.py act_parallel): the children finish, the join resumes t0 inside the step, and t0's
    # action (sent while its observation said waiting == 1) is applied: here it ends the episode.
    env = _make()
    env.reset(options={"problem": P})
    obs, *_ = env.step({"t0": SPAWN2})
    assert obs["t0"]["waiting"] == 1
    obs, _, terms, _, infos = env.step({"t0": "No solution found.", "t1": "done", "t2": "done"})
    assert terms["t1"] and terms["t2"] and not terms["t0"]
    assert env.agents == ["t0"] and obs["t0"]["waiting"] == 0
    assert infos["t0"]["event"] in (None, "ignored")


def test_finished_threads_leave_and_ids_are_never_reused():
    env = _make()
    env.reset(options={"problem": P})
    env.step({"t0": SPAWN2})
    _, _, terms, _, infos = env.step({"t1": "done", "t2": "done"})
    assert terms["t1"] and terms["t2"] and infos["t1"]["status"] == "finished"
    assert env.agents == ["t0"]
    obs, *_ = env.step({"t0": SPAWN2})  # a second spawn: new ids t3, t4
    assert env.agents == ["t0", "t3", "t4"] and "t1" not in obs and "t2" not in obs
    obs, _, terms, _, _ = env.step({"t3": "done", "t4": "done", "t1": "back?", "t2": "back?"})
    assert "t1" not in env.agents and "t2" not in env.agents and "t1" not in obs


def test_team_reward_and_summary_at_the_end(worked_example):
    ex = worked_example
    env = _make()
    env.reset(options={"problem": ex.problem})
    _, r1, *_ = env.step({"t0": ex.root_segment_0})
    _, r2, *_ = env.step({"t1": ex.child_actions[0], "t2": ex.child_actions[1]})
    _, r3, terms, truncs, infos = env.step({"t0": ex.root_continuation})
    assert set(r1.values()) == set(r2.values()) == {0.0}
    assert env.agents == [] and terms == {"t0": True} and truncs == {"t0": False}
    summary = infos["t0"]["episode"]
    assert summary["correct"] and summary["answer"] == ex.answer_path and summary["outcome"] == "correct"
    assert r3["t0"] == summary["reward"] > 1.0  # correct + parallel bonus


def test_a_limit_truncates_every_remaining_agent_and_they_share_the_reward():
    env = _make(max_total_tokens=120)
    env.reset(options={"problem": P})
    env.step({"t0": SPAWN2})
    _, rewards, terms, truncs, infos = env.step({"t1": "7 " * 80, "t2": "8"})
    assert env.agents == []
    assert all(truncs[a] for a in ("t0", "t1", "t2")) and not any(terms.values())
    assert infos["t0"]["episode"]["outcome"] == "token_budget"
    assert len(set(rewards.values())) == 1


def test_step_after_the_end_returns_empty_dicts():
    env = _make()
    env.reset(options={"problem": P})
    env.step({"t0": "No solution found."})
    assert env.agents == []
    assert env.step({"t0": "again"}) == ({}, {}, {}, {}, {})


@pytest.mark.parametrize("key", ["t99", "x", 5, None], ids=["unknown_agent", "not_an_agent", "int", "None"])
def test_actions_for_unknown_agents_are_ignored(key):
    env = _make()
    env.reset(options={"problem": P})
    env.step({key: "No solution found.", "t0": SPAWN2})
    assert env.agents == ["t0", "t1", "t2"]


def test_render_ansi_shows_every_thread():
    env = _make(render_mode="ansi")
    env.reset(options={"problem": P})
    env.step({"t0": SPAWN2})
    picture = env.render()
    assert all(f"t{i} #0 " in picture for i in range(3))
    assert _make().render() is None


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(data=st.data())
def test_random_actions_never_raise_and_keep_the_agent_invariants(fuzz, data):
    limits = data.draw(fuzz.limits, label="limits")
    first = data.draw(fuzz.spawns, label="first")
    actions = [first, *data.draw(st.lists(fuzz.actions, max_size=6), label="actions")]
    env = _make(limits=limits)
    env.reset(seed=data.draw(st.integers(0, 10_000), label="seed"))
    if not env.agents:  # the root prompt alone exceeds the tiny window
        return
    seen, gone, turn = {"t0"}, set(), 0
    for _ in range(fuzz.step_bound(limits)):
        step_actions = {}
        for agent in env.agents:
            step_actions[agent] = actions[turn % len(actions)]
            turn += 1
        obs, rewards, terms, truncs, infos = env.step(step_actions)
        assert set(env.agents) <= set(env.possible_agents) and not set(env.agents) & gone
        assert set(obs) == set(rewards) == set(terms) == set(truncs) == set(infos)
        new = [a for a in obs if a not in seen]
        assert all(int(a[1:]) > max(int(s[1:]) for s in seen) for a in new)  # fresh, increasing ids
        seen |= set(obs)
        gone |= {a for a in obs if terms[a] or truncs[a]}
        assert set(env.agents) == set(obs) - gone
        if not env.agents:
            break
    assert not env.agents, "no end within the step bound"
    assert "t0" in gone and all(isinstance(r, float) for r in rewards.values())
    m = env.episode.metrics
    assert m.num_threads <= limits.max_threads and m.depth <= limits.max_depth
