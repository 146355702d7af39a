"""APRCountdownMacro-v0: the numeric macro-action env, its masks, and MaskablePPO on it.

Covers: registration both ways; the macro env's metrics equal the text env replaying the same
texts; masks exact against the episode on random states (small limits, so every limit binds);
illegal and garbage actions are recorded no-ops with a penalty; SB3's and Gymnasium's checkers;
a few hundred MaskablePPO steps, save/load acting identically; SubprocVecEnv with masks; the
runner adapter reproducing the env's episodes.
"""

from __future__ import annotations

import copy
import warnings
from collections import Counter

import gymnasium as gym
import numpy as np
import pytest

import agents  # noqa: F401 - registers APRCountdownMacro-v0
import apr_env  # noqa: F401 - registers APRCountdown-v0
from agents.macro_env import APRCountdownMacroEnv
from agents.macro_game import EXPAND
from apr_env import Limits, generate_problems
from apr_env.errors import ConfigError
from apr_env.protocols import get_protocol
from apr_env.seeding import episode_seed
from apr_env.tokenizer import load_tokenizer
from apr_env.tree import Status

PROBLEMS = generate_problems(12, seed=3)
TIGHT = dict(context_window=500, max_threads=5, max_children_per_spawn=3, max_depth=1, max_total_tokens=1500)
"""Limits small enough that the window, threads, children per spawn and the token budget all bind."""


def _play_random(env, rng, *, steps=None, spawn_bias=0.3):
    """Play legal actions at random until the end (or `steps` decisions); return the last info."""
    info, done, n = {}, False, 0
    while not done and (steps is None or n < steps):
        legal = np.flatnonzero(env.action_masks())
        spawns = legal[(legal > 0) & (legal < env.macro.give_up)]
        if len(spawns) and rng.random() < spawn_bias:
            action = int(rng.choice(spawns))
        elif env.action_masks()[EXPAND] and rng.random() < 0.95:
            action = EXPAND
        elif len(spawns) and rng.random() < 0.9:
            action = int(rng.choice(spawns))
        else:
            action = int(rng.choice(legal))
        _, _, term, trunc, info = env.step(action)
        done, n = term or trunc, n + 1
    return info


def test_registered_with_and_without_module_prefix():
    assert isinstance(gym.make("agents:APRCountdownMacro-v0").unwrapped, APRCountdownMacroEnv)
    assert isinstance(gym.make("APRCountdownMacro-v0").unwrapped, APRCountdownMacroEnv)


def test_other_protocols_are_refused_with_the_accepted_one_named():
    with pytest.raises(ConfigError, match="accepted: 'apr'"):
        APRCountdownMacroEnv(protocol="serial")


@pytest.mark.parametrize("limits", [{}, TIGHT], ids=["default", "tight"])
def test_metrics_equal_the_text_env_replaying_the_same_texts(limits):
    rng = np.random.default_rng(0)
    for i, problem in enumerate(PROBLEMS[:6]):
        env = APRCountdownMacroEnv(**limits)
        env.reset(seed=i, options={"problem": problem})
        info = _play_random(env, rng)
        text_env = gym.make("APRCountdown-v0", **limits).unwrapped
        text_env.reset(options={"problem": problem})
        for tid, text in env.game.played:
            assert text_env.episode.next_thread == tid
            _, reward, term, trunc, text_info = text_env.step(text)
        assert term or trunc
        assert text_info["metrics"] == info["metrics"]
        assert reward == info["env_reward"]
        assert (text_info["outcome"], text_info["correct"]) == (info["outcome"], info["correct"])
        assert text_info["tree"] == info["tree"]


def _refusal(game, tid, text) -> str | None:
    """Play `text` for `tid` on a copy of the episode: the limit it breaks, or None if it is legal."""
    ep = copy.deepcopy(game.episode, memo={id(game.tokenizer): game.tokenizer})
    groups, errors = len(ep.groups), len(ep.format_errors)
    ep.act(tid, text)
    if ep.truncated and ep.outcome == "token_budget":
        return "token_budget"
    if ep.threads[tid].status is Status.FAILED:
        return ep.threads[tid].reason
    new = ep.groups[groups:]
    for g in new:
        for reason in g.rejected.values():
            return reason
    if len(ep.format_errors) > errors:
        return ep.format_errors[-1][1]
    for g in new:
        for c in g.children:
            if ep.threads[c].reason == "prompt_exceeds_context_window":
                return "prompt_exceeds_context_window"
    return None


@pytest.mark.parametrize(
    "limits", [TIGHT, dict(TIGHT, context_window=900, max_total_tokens=2500, max_depth=2, max_threads=8)]
)
def test_masks_are_exactly_the_actions_the_episode_accepts(limits):
    rng = np.random.default_rng(1)
    seen = Counter()
    for i, problem in enumerate(PROBLEMS):
        env = APRCountdownMacroEnv(**limits)
        env.reset(seed=i, options={"problem": problem})
        while env._tid is not None:
            game, tid = env.game, env._tid
            masks = env.action_masks()
            assert masks.any(), "a decision always has a legal action (otherwise the move is forced)"
            for action in range(env.macro.n_actions):
                text = game.decision_text(tid, action)
                reason = "impossible" if text is None else _refusal(game, tid, text)
                assert masks[action] == (reason is None), (i, tid, action, reason, masks)
                seen[reason or "legal"] += 1
            _play_random(env, rng, steps=1, spawn_bias=0.5)
    # both sides were exercised, and the limits the masks must know about were hit
    assert seen["legal"] > 100 and seen["impossible"] > 100, seen
    assert seen["context_window"] > 10 and seen["max_threads"] + seen["max_children_per_spawn"] > 10, seen
    assert seen["max_depth"] > 10 and (seen["token_budget"] > 0 or limits is TIGHT), seen


def test_masks_respect_each_structural_limit():
    env = APRCountdownMacroEnv(max_children_per_spawn=2, max_spawn=4)
    env.reset(seed=0, options={"problem": PROBLEMS[0]})
    env.step(EXPAND)
    masks = env.action_masks()
    assert masks[1] and masks[2] and not masks[3] and not masks[4]
    env = APRCountdownMacroEnv(max_depth=0)
    env.reset(seed=0, options={"problem": PROBLEMS[0]})
    env.step(EXPAND)
    assert env.action_masks().tolist() == [True, False, False, False, False, False, False, False, False, True]


@pytest.mark.parametrize("action", [3, "spawn", -1, 99, 2.5, None, np.array([1, 2])])
def test_illegal_and_garbage_actions_are_penalised_no_ops(action):
    env = APRCountdownMacroEnv(max_children_per_spawn=2, illegal_penalty=0.25)
    obs, _ = env.reset(seed=0, options={"problem": PROBLEMS[0]})
    before = [t for t, _ in env.game.played]
    obs2, reward, term, trunc, info = env.step(action)
    assert info["illegal_action"] and reward == -0.25 and not (term or trunc)
    assert [t for t, _ in env.game.played] == before
    assert all(np.array_equal(obs[k], obs2[k]) for k in obs)


def test_too_many_illegal_actions_truncate_the_episode():
    env = APRCountdownMacroEnv(max_illegal_actions=3)
    env.reset(seed=0)
    results = [env.step(-1) for _ in range(3)]
    assert [r[3] for r in results] == [False, False, True]
    assert results[-1][4]["outcome"] == "illegal_action_limit"
    with pytest.raises(gym.error.ResetNeeded):
        env.step(EXPAND)


def test_same_seed_same_episode():
    def run(seed):
        env = APRCountdownMacroEnv()
        env.reset(seed=seed)
        _play_random(env, np.random.default_rng(5))
        return [(t, a.text) for t, a in env.game.played]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_sb3_and_gymnasium_checkers_pass():
    from gymnasium.utils.env_checker import check_env as gym_check
    from stable_baselines3.common.env_checker import check_env as sb3_check

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check(APRCountdownMacroEnv(), warn=True)
        gym_check(APRCountdownMacroEnv(), skip_render_check=True)


def _model(env, seed=0):
    from sb3_contrib import MaskablePPO

    return MaskablePPO(
        "MultiInputPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=seed, device="cpu", verbose=0
    )


def test_maskable_ppo_trains_a_few_hundred_steps_and_reloads_identically(tmp_path):
    from sb3_contrib import MaskablePPO

    env = APRCountdownMacroEnv(problems=PROBLEMS)
    model = _model(env)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(256)
    assert any(
        not np.allclose(a.numpy(), b.detach().numpy()) for a, b in zip(before, model.policy.parameters())
    )
    model.save(tmp_path / "m.zip")
    loaded = MaskablePPO.load(tmp_path / "m.zip", device="cpu")
    env.reset(seed=1)
    for _ in range(30):
        obs, masks = env.game.observe(env._tid), env.action_masks()
        a1, _ = model.predict(obs, action_masks=masks, deterministic=True)
        a2, _ = loaded.predict(obs, action_masks=masks, deterministic=True)
        assert int(a1) == int(a2) and masks[int(a1)]
        _, _, term, trunc, _ = env.step(int(a1))
        if term or trunc:
            env.reset()


@pytest.mark.slow
def test_subproc_vec_env_with_masks():
    from sb3_contrib.common.maskable.utils import get_action_masks
    from stable_baselines3.common.vec_env import SubprocVecEnv

    vec = SubprocVecEnv([lambda: APRCountdownMacroEnv(problems=PROBLEMS)] * 2, start_method="fork")
    try:
        vec.seed(0)
        vec.reset()
        masks = get_action_masks(vec)
        assert masks.shape == (2, 10) and masks[:, EXPAND].all()
        model = _model(vec)
        model.learn(128)
        assert model.num_timesteps >= 128
    finally:
        vec.close()


def test_runner_adapter_plays_the_same_episodes_as_the_env():
    from agents.sb3_agent import MacroPolicyAgent
    from runtime.runner import RunConfig, run_episodes

    kwargs = dict(context_window=1024, max_threads=16)
    model = _model(APRCountdownMacroEnv(**kwargs))
    agent = MacroPolicyAgent(model, kwargs)
    records = run_episodes(agent, PROBLEMS[:4], RunConfig(limits=Limits(**kwargs), seed=3))
    for i, (problem, record) in enumerate(zip(PROBLEMS[:4], records)):
        env = APRCountdownMacroEnv(**kwargs)
        env.reset(options={"problem": problem, "seed": episode_seed(3, i)})
        done = False
        while not done:
            obs, masks = env.game.observe(env._tid), env.action_masks()
            action, _ = model.predict(obs, action_masks=masks, deterministic=True)
            _, _, term, trunc, info = env.step(int(action))
            done = term or trunc
        assert record["metrics"] == info["metrics"] and record["outcome"] == info["outcome"]
        assert record["tree"] == info["tree"]


def test_a_window_too_small_for_the_prompt_is_refused_at_construction():
    with pytest.raises(ConfigError, match="accepted: context_window >= "):
        APRCountdownMacroEnv(context_window=10)


def test_an_episode_over_at_reset_ends_on_the_first_step():
    problem = PROBLEMS[0]
    prompt_tokens = load_tokenizer(None).count(get_protocol("apr").root_prompt(problem))
    env = APRCountdownMacroEnv(problems=[problem], context_window=prompt_tokens)  # no room for any text
    env.reset(seed=0)  # nothing fits: the forced give-up is cut at the window and fails the root
    assert env.action_masks().tolist() == [False] * 9 + [True]
    _, reward, term, trunc, info = env.step(9)
    assert (reward, term, trunc) == (0.0, False, True)
    assert info["outcome"] == "context_window" and not info["correct"]
