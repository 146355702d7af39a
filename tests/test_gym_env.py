"""Specification of ``gymnasium.make("APRCountdown-v0")`` (`apr_env.envs.gym_env.APRCountdownEnv`).

Covers: registration on ``import apr_env`` (which must not import torch, transformers or
httpx: checked in a fresh interpreter); Gymnasium's `check_env` for the apr and serial
protocols; determinism per reset seed; choosing the problem with ``options``; the limits
and reward keyword arguments; ``render_mode="ansi"`` and ``"human"``; `ResetNeeded` before
reset and after the end; termination versus truncation; the ``info`` promised by the env docstring;
bad actions as recorded outcomes; and a hypothesis fuzz (random text, grammar fragment
mixtures, junk values, structured actions) that never raises and always ends within the
step bound computed from the limits.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import apr_env
from apr_env import Limits, Problem
from apr_env.envs.gym_env import APRCountdownEnv
from apr_env.errors import ConfigError
from apr_env.protocols import PROTOCOLS
from apr_env.render import render_tree

P = Problem(10, (1, 4, 6, 8))
STEP_KEYS = {"thread", "event", "runnable"}
FINAL_KEYS = STEP_KEYS | {
    "outcome",
    "correct",
    "answer",
    "verdict",
    "metrics",
    "reward",
    "reward_correct",
    "reward_parallel_bonus",
    "reward_format_penalty",
    "format_errors",
    "tree",
}
METRIC_KEYS = {
    "total_tokens",
    "prefill_tokens",
    "critical_path_tokens",
    "longest_thread_tokens",
    "max_context_tokens",
    "num_threads",
    "num_spawns",
    "depth",
}


def test_import_registers_the_env_and_pulls_no_torch_transformers_or_httpx():
    code = (
        "import sys, gymnasium as gym, apr_env\n"
        "env = gym.make('APRCountdown-v0')\n"
        "env.reset(seed=0)\n"
        "env.step('No solution found.')\n"
        "penv = apr_env.parallel_env(protocol='serial')\n"
        "penv.reset(seed=0)\n"
        "penv.step({'t0': 'No solution found.'})\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'httpx'))\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_make_builds_the_env_class():
    env = gym.make("APRCountdown-v0")
    assert isinstance(env.unwrapped, APRCountdownEnv)
    assert env.spec.id == "APRCountdown-v0"


@pytest.mark.parametrize("render_mode", ["ansi", "human"])
@pytest.mark.parametrize("protocol", ["apr", "serial"])
def test_gymnasium_check_env_passes_without_warnings(protocol, render_mode):
    env = gym.make("APRCountdown-v0", protocol=protocol, render_mode=render_mode)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=False)
    assert [str(w.message) for w in caught] == []


def test_same_reset_seed_gives_the_same_problems():
    a, b = gym.make("APRCountdown-v0"), gym.make("APRCountdown-v0")
    seq_a = [a.reset(seed=7)[1]["problem"]] + [a.reset()[1]["problem"] for _ in range(3)]
    seq_b = [b.reset(seed=7)[1]["problem"]] + [b.reset()[1]["problem"] for _ in range(3)]
    assert seq_a == seq_b
    assert a.reset(seed=7)[0] == b.reset(seed=7)[0]


def test_different_reset_seeds_give_different_problems():
    env = gym.make("APRCountdown-v0")
    problems = {str(env.reset(seed=s)[1]["problem"]) for s in range(6)}
    assert len(problems) >= 4


def test_problem_seed_changes_the_generated_stream():
    a = gym.make("APRCountdown-v0", problem_seed=1).reset(seed=0)[1]["problem"]
    b = gym.make("APRCountdown-v0", problem_seed=2).reset(seed=0)[1]["problem"]
    assert a != b


@pytest.mark.parametrize("problem", [P, {"target": 10, "nums": [1, 4, 6, 8]}], ids=["Problem", "dict"])
def test_options_problem_chooses_the_problem(problem):
    env = gym.make("APRCountdown-v0")
    obs, info = env.reset(seed=3, options={"problem": problem})
    assert info["problem"] == {"target": 10, "numbers": [1, 4, 6, 8]}
    assert obs == {
        "thread": 0,
        "context": "Moving to Node #0\nCurrent State: 10:[1, 4, 6, 8], Operations: []",
    }


def test_options_index_picks_from_the_given_problems():
    problems = [Problem(24, (4, 6, 1, 1)), P, Problem(5, (2, 3))]
    env = gym.make("APRCountdown-v0", problems=problems)
    for i in (1, 2, 0, 4):
        assert env.reset(options={"index": i})[1]["problem"]["target"] == problems[i % 3].target


def test_options_index_of_the_generated_stream_is_stable():
    env = gym.make("APRCountdown-v0")
    first = [env.reset(seed=s, options={"index": 5})[1]["problem"] for s in range(3)]
    assert first[0] == first[1] == first[2]
    assert env.reset(options={"index": 6})[1]["problem"] != first[0]


def test_limit_kwargs_reach_the_episode():
    env = gym.make(
        "APRCountdown-v0", context_window=256, max_threads=5, max_children_per_spawn=2, max_depth=1
    )
    env.reset(seed=0)
    assert env.unwrapped.episode.limits == Limits(
        context_window=256, max_threads=5, max_children_per_spawn=2, max_depth=1
    )
    assert env.observation_space["thread"].n == 5


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"render_mode": "rgb_array"}, "render_mode='rgb_array'; accepted: None, 'human', 'ansi'"),
        ({"reward": "sparse"}, "accepted: 'critical_path', 'binary'"),
        ({"problems": []}, "problems is an empty list"),
        ({"context_window": -3}, "context_window must be a positive int"),
    ],
    ids=["render_mode", "reward", "problems", "window"],
)
@pytest.mark.filterwarnings("ignore:.*not in the possible render_modes")  # gymnasium's own warning first
def test_bad_kwargs_raise_config_errors_with_message(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        gym.make("APRCountdown-v0", **kwargs)


def _play_worked_example(env, ex):
    obs, info = env.reset(options={"problem": ex.problem})
    steps = [(obs, info)]
    for action in (ex.root_segment_0, *ex.child_actions, ex.root_continuation):
        obs, r, term, trunc, info = env.step(action)
        steps.append((obs, info))
    return steps, r, term, trunc


def test_worked_example_step_by_step_observations_and_info(worked_example, char_tok):
    ex = worked_example
    env = gym.make("APRCountdown-v0", tokenizer=char_tok)
    steps, r, term, trunc = _play_worked_example(env, ex)
    (o0, i0), (o1, i1), (o2, i2), (o3, i3), (_, i4) = steps
    assert i0["event"] == "reset" and i0["runnable"] == [0] and o0["context"] == ex.root_prompt
    assert (i1["thread"], i1["event"], i1["runnable"]) == (0, "spawn", [1, 2])
    assert o1 == {"thread": 1, "context": ex.child_prompts[0]}
    assert (i2["thread"], i2["event"], i2["runnable"]) == (1, "finish", [2])
    assert o2 == {"thread": 2, "context": ex.child_prompts[1]}
    assert (i3["thread"], i3["event"], i3["runnable"]) == (2, "finish", [0])
    assert o3 == {"thread": 0, "context": ex.kept_prefix + ex.join_block}
    for obs, info in steps[1:4]:
        assert set(info) == STEP_KEYS and env.observation_space.contains(obs)
    assert term and not trunc
    assert set(i4) >= FINAL_KEYS
    assert set(i4["metrics"]) >= METRIC_KEYS
    assert i4["outcome"] == "correct" and i4["correct"] and i4["answer"] == ex.answer_path
    assert i4["verdict"] == "ok" and i4["format_errors"] == [] and r == i4["reward"]
    assert [t["id"] for t in i4["tree"]] == [0, 1, 2] and i4["tree"][0]["children"] == [1, 2]
    assert i4["metrics"]["critical_path_tokens"] == 1496 and i4["metrics"]["total_tokens"] == 1745


SPAWN_0 = (
    "<Calling Sub Searches>\n<Start Sub Search 0 at level 1> Moving to Node #0\n<End Calling Sub Searches>"
)


def test_observations_stay_in_the_observation_space_for_token_id_actions():
    # BUG (minor; gym_env.py observation space vs actions.py): a Text action with token_ids keeps its
    # text as given ("not normalised"), so a decoded non-ASCII character reaches the observation, which
    # the space declares as printable ASCII + newline + tab. Fix: sanitise id-action text for the
    # observation, or widen the space's charset (its max_length also assumes <= 40 characters a token).
    env = gym.make("APRCountdown-v0")
    env.reset(options={"problem": P})
    obs, *_ = env.step(SPAWN_0)
    assert env.observation_space.contains(obs)
    obs, *_ = env.step({"text": "caf\u00e9", "token_ids": [7], "partial": True})
    assert obs["thread"] == 1 and env.observation_space.contains(obs)


def test_render_ansi_returns_the_thread_tree(worked_example, char_tok):
    env = gym.make("APRCountdown-v0", tokenizer=char_tok, render_mode="ansi")
    _play_worked_example(env, worked_example)
    picture = env.render()
    assert isinstance(picture, str)
    lines = picture.splitlines()
    # a header, then one line per thread, children indented under the root
    for name, label, tokens in (("t0", "#0", 1183), ("t1", "#0,0,0", 313), ("t2", "#0,0,1", 249)):
        (line,) = [x for x in lines if f"{name} {label} " in x]
        assert f"{tokens} tok" in line
    assert lines.index(next(x for x in lines if "t0 #0 " in x)) < lines.index(
        next(x for x in lines if "t1 #" in x)
    )
    assert not next(x for x in lines if "t1 #" in x).startswith("t1")


def test_render_human_prints_the_tree_after_reset_and_each_step_and_returns_none(capsys):
    env = gym.make("APRCountdown-v0", render_mode="human")
    env.reset(options={"problem": P})
    assert capsys.readouterr().out == render_tree(env.unwrapped.episode)
    env.step(SPAWN_0)
    after_spawn = capsys.readouterr().out
    assert "t1 #" in after_spawn and after_spawn == render_tree(env.unwrapped.episode)
    assert env.render() is None
    assert capsys.readouterr().out == after_spawn


def test_render_without_mode_returns_none():
    env = gym.make("APRCountdown-v0")
    env.reset(seed=0)
    assert env.render() is None


@pytest.mark.parametrize("make", [lambda: gym.make("APRCountdown-v0"), APRCountdownEnv], ids=["make", "raw"])
def test_step_before_reset_raises_reset_needed(make):
    with pytest.raises(gym.error.ResetNeeded):
        make().step("x")


@pytest.mark.parametrize("make", [lambda: gym.make("APRCountdown-v0"), APRCountdownEnv], ids=["make", "raw"])
def test_step_after_the_end_raises_reset_needed(make):
    env = make()
    env.reset(seed=0)
    _, _, term, trunc, _ = env.step("No solution found.")
    assert term or trunc
    with pytest.raises(gym.error.ResetNeeded):
        env.step("x")
    env.reset(seed=1)
    env.step("again")  # a reset makes the env usable again


def test_root_past_its_window_truncates_not_terminates():
    env = gym.make("APRCountdown-v0", context_window=64)
    env.reset(options={"problem": P})
    _, r, term, trunc, info = env.step("Exploring " * 100)
    assert (term, trunc, r) == (False, True, 0.0)
    assert info["outcome"] == "context_window" and info["truncated"]


def test_a_10_mb_action_truncates_with_the_metrics_of_an_action_just_past_the_window():
    infos = []
    for action in ("x" * 10 * 2**20, "x" * 4096):
        env = gym.make("APRCountdown-v0")
        env.reset(options={"problem": P})
        _, r, term, trunc, info = env.step(action)
        assert (term, trunc, r) == (False, True, 0.0) and info["outcome"] == "context_window"
        infos.append(info)
    assert infos[0]["metrics"] == infos[1]["metrics"] and infos[0]["metrics"]["max_context_tokens"] == 4096
    assert infos[0]["tree"] == infos[1]["tree"]


def test_token_budget_truncates_the_episode():
    env = gym.make("APRCountdown-v0", max_total_tokens=50)
    env.reset(options={"problem": P})
    env.step(
        "<Calling Sub Searches>\n<Start Sub Search 0 at level 1> Moving to Node #0\n<End Calling Sub Searches>"
    )
    _, _, term, trunc, info = env.step("7 " * 60)
    assert (term, trunc) == (False, True) and info["outcome"] == "token_budget"


@pytest.mark.parametrize(
    "make",
    [lambda **kw: gym.make("APRCountdown-v0", **kw), apr_env.parallel_env],
    ids=["gym", "parallel"],
)
@pytest.mark.parametrize(
    "kwargs,match",
    [
        (
            {"context_window": 16},
            r"context_window=16 cannot hold the 'apr' protocol's root prompt of the longest problem the "
            r"generator can draw \(target 100, numbers \[99, 99, 99, 99\]\): 23 tokens; "
            r"accepted: context_window >= 23",
        ),
        (
            {"context_window": 22, "generator": {"max_numbers": 6, "max_value": 999}},
            r"numbers \[999, 999, 999, 999, 999, 999\]\): 35 tokens; accepted: context_window >= 35",
        ),
        (
            {"context_window": 17, "problems": [P, Problem(5, (1, 2))]},
            r"the longest of the given problems \(target 10, numbers \[1, 4, 6, 8\]\): 18 tokens; "
            r"accepted: context_window >= 18",
        ),
        (
            {"context_window": 18, "problems": [P], "protocol_kwargs": {"sub_call_budget": 10}},
            r"\(target 10, numbers \[1, 4, 6, 8\]\): 22 tokens; accepted: context_window >= 22",
        ),
    ],
    ids=["generated", "generator_knobs", "given_problems", "prompt_prefix"],
)
def test_window_that_cannot_hold_the_root_prompt_is_a_config_error_at_construction(make, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        make(**kwargs)


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
@pytest.mark.parametrize(
    "generator",
    [None, {"min_numbers": 3, "max_numbers": 5, "min_value": 0, "max_value": 150, "max_target": 999}],
    ids=["apr_distribution", "wide"],
)
def test_the_smallest_accepted_window_holds_every_generated_problem(protocol, generator):
    with pytest.raises(ConfigError) as error:
        gym.make("APRCountdown-v0", protocol=protocol, generator=generator, context_window=1)
    smallest = int(re.search(r"accepted: context_window >= (\d+)", str(error.value))[1])
    env = gym.make("APRCountdown-v0", protocol=protocol, generator=generator, context_window=smallest)
    for index in range(40):
        env.reset(options={"index": index})  # raises ConfigError if a prompt did not fit


def test_problem_in_reset_options_longer_than_the_window_is_a_config_error():
    env = gym.make("APRCountdown-v0", context_window=23)  # every generated problem fits
    big = Problem(1000, (1000, 1000, 1000, 1000, 1000))
    with pytest.raises(
        ConfigError, match=r"root prompt of this problem .*: 37 tokens; accepted: context_window >= 37"
    ):
        env.reset(options={"problem": big})
    env.reset(options={"problem": P})  # the env stays usable


def test_window_exactly_the_prompt_size_is_accepted_and_the_first_token_truncates():
    env = gym.make("APRCountdown-v0", context_window=18, problems=[P])  # P's prompt: 18 tokens
    obs, info = env.reset(seed=0)
    assert obs["context"] == env.unwrapped.episode.observation(0) and "outcome" not in info
    _, r, term, trunc, info = env.step("x")
    assert (term, trunc, r) == (False, True, 0.0) and info["outcome"] == "context_window"
    assert info["metrics"]["max_context_tokens"] == 18 and info["metrics"]["total_tokens"] == 0
    env.reset(seed=0)
    _, _, term, trunc, info = env.step("")  # no token: the root ends with no answer
    assert (term, trunc) == (True, False) and info["outcome"] == "no_answer"


def _single_env_run(seed: int, actions: list[str], **kwargs) -> list[tuple]:
    """What one vector slot must show: a single env reset with `seed`, stepped, reset (unseeded)
    in the step after an episode ends (Gymnasium's default next-step autoreset)."""
    env = gym.make("APRCountdown-v0", **kwargs)
    obs, _ = env.reset(seed=seed)
    out, ended = [], False
    for action in actions:
        if ended:
            obs, _ = env.reset()
            out.append((obs["thread"], obs["context"], 0.0, False, False))
            ended = False
            continue
        obs, r, term, trunc, _ = env.step(action)
        out.append((obs["thread"], obs["context"], r, term, trunc))
        ended = term or trunc
    return out


VECTOR_ACTIONS = [
    # slot 0: spawn two children at #0, they find nothing, the root gives up; then again
    [
        "<Calling Sub Searches>\n<Start Sub Search 0 at level 1> Moving to Node #0\n"
        "<Start Sub Search 1 at level 1> Moving to Node #0\n<End Calling Sub Searches>",
        "No solution found.",
        "No solution found.",
        "No solution found.",
        "anything",
        "x" * 5000,
        "again",
    ],
    # slot 1: ends every other step (the step after is the autoreset)
    ["No solution found."] * 7,
]


@pytest.mark.parametrize(
    "mode,vector_kwargs",
    [("sync", {}), ("async", {}), ("async", {"shared_memory": False})],
    ids=["sync", "async_shared_memory", "async_pipes"],
)
def test_vector_envs_step_and_autoreset_as_single_envs_do(mode, vector_kwargs):
    kwargs = {"context_window": 128, "max_total_tokens": 4096}
    envs = gym.make_vec(
        "APRCountdown-v0", num_envs=2, vectorization_mode=mode, vector_kwargs=vector_kwargs, **kwargs
    )
    try:
        obs, _ = envs.reset(seed=7)
        expected = [_single_env_run(7 + i, VECTOR_ACTIONS[i], **kwargs) for i in range(2)]
        assert list(obs["context"]) == [
            gym.make("APRCountdown-v0", **kwargs).reset(seed=7 + i)[0]["context"] for i in range(2)
        ]
        for k, actions in enumerate(zip(*VECTOR_ACTIONS)):
            obs, r, term, trunc, _ = envs.step(list(actions))
            got = [(obs["thread"][i], obs["context"][i], r[i], term[i], trunc[i]) for i in range(2)]
            assert got == [expected[0][k], expected[1][k]], f"step {k}"
    finally:
        envs.close()


BAD_ACTIONS = [
    None,
    17,
    b"bytes",
    ["a", "list"],
    {"unknown": 1},
    "",
    "\x00\x01\x02",
    "<Calling Sub Searches>\n<Start Sub Search 0 at level 1> Moving to Node #0",  # truncated block
    "<Calling Sub Searches>\n<Start Sub Search 0 at level 1> Moving to Node #0,4,4\n<End Calling Sub Searches>",
    "<Calling Sub Searches>\n<Start Sub Search 0 at level 1> Moving to N\n<End Calling Sub Searches>",
    "x" * 50_000,
]


@pytest.mark.parametrize("protocol", ["apr", "serial"])
@pytest.mark.parametrize("action", BAD_ACTIONS, ids=lambda a: repr(a)[:30])
def test_bad_action_every_step_ends_as_a_recorded_outcome(protocol, action, fuzz):
    env = gym.make("APRCountdown-v0", protocol=protocol)
    env.reset(options={"problem": P})
    limits = env.unwrapped.config.limits
    for _ in range(fuzz.step_bound(limits)):
        _, r, term, trunc, info = env.step(action)
        if term or trunc:
            break
    assert term or trunc
    assert isinstance(r, float) and info["outcome"] and not info["correct"]
    assert set(info) >= FINAL_KEYS


@pytest.mark.parametrize("protocol", ["apr", "serial"])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_random_actions_never_raise_and_end_within_the_step_bound(protocol, fuzz, data):
    limits = data.draw(fuzz.limits, label="limits")
    # the root opens with a calling block (so that trees grow), then actions cycle through the list
    first = data.draw(fuzz.spawns, label="first")
    actions = [first, *data.draw(st.lists(fuzz.actions, max_size=6), label="actions")]
    env = gym.make("APRCountdown-v0", protocol=protocol, limits=limits)
    _, info = env.reset(seed=data.draw(st.integers(0, 10_000), label="seed"))
    if "outcome" in info:  # the root prompt alone exceeds the tiny window
        return
    bound = fuzz.step_bound(limits)
    for step in range(bound):
        _, r, term, trunc, info = env.step(actions[step % len(actions)])
        if term or trunc:
            break
    assert term or trunc, f"no end after {bound} steps"
    assert isinstance(r, float) and info["outcome"]
    m = info["metrics"]
    assert m["num_threads"] <= limits.max_threads and m["depth"] <= limits.max_depth
    assert m["critical_path_tokens"] <= m["total_tokens"]


def test_parallel_env_is_exported_from_the_package():
    assert callable(apr_env.parallel_env)
