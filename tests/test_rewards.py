"""Specification of `apr_env.rewards` and of the reward an episode reports.

Covers: the default ``r = c + c * rho * min(1 - critical_path / total, clip)`` (rho 0.5,
clip 0.2) on a table of hand-computed cases, gating by correctness, the binary kind, the
format penalty (once, only when a format error was recorded), config validation messages,
and the episode's reward components (hand-computed for the reference 2.9 example with the
per-character tokenizer) in Gymnasium's final ``info``.
"""

from __future__ import annotations

import gymnasium as gym
import pytest

import apr_env  # noqa: F401  (registers APRCountdown-v0)
from apr_env import Episode, RewardConfig
from apr_env.errors import ConfigError
from apr_env.rewards import compute_reward

DEFAULT = RewardConfig()

# (correct, critical_path, total, format_errors, config, expected reward)
CASES = [
    ("no_parallelism", True, 100, 100, 0, DEFAULT, 1.0),  # 1 - 100/100 = 0 -> bonus 0
    ("small_parallelism", True, 90, 100, 0, DEFAULT, 1.05),  # 0.5 * min(0.1, 0.2)
    ("at_clip", True, 80, 100, 0, DEFAULT, 1.1),  # 0.5 * min(0.2, 0.2)
    ("past_clip", True, 25, 100, 0, DEFAULT, 1.1),  # 0.5 * min(0.75, 0.2)
    ("wrong_answer_gets_no_bonus", False, 25, 100, 0, DEFAULT, 0.0),
    ("zero_tokens", True, 0, 0, 0, DEFAULT, 1.0),
    ("custom_rho_clip", True, 50, 100, 0, RewardConfig(rho=1.0, clip=0.4), 1.4),  # 1.0 * min(0.5, 0.4)
    ("binary_correct", True, 25, 100, 0, RewardConfig(kind="binary"), 1.0),
    ("binary_wrong", False, 25, 100, 0, RewardConfig(kind="binary"), 0.0),
    ("penalty_once", True, 80, 100, 3, RewardConfig(format_penalty=0.25), 1.1 - 0.25),
    ("penalty_when_wrong", False, 80, 100, 1, RewardConfig(format_penalty=0.25), -0.25),
    ("penalty_unused_without_errors", True, 80, 100, 0, RewardConfig(format_penalty=0.25), 1.1),
    ("penalty_zero_by_default", True, 80, 100, 5, DEFAULT, 1.1),
]


@pytest.mark.parametrize(
    "correct,cp,total,errors,config,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_reward_matches_hand_computed_value(correct, cp, total, errors, config, expected):
    assert compute_reward(correct, cp, total, errors, config)["reward"] == pytest.approx(expected)


def test_reward_reports_every_component():
    r = compute_reward(True, 90, 100, 2, RewardConfig(format_penalty=0.5))
    assert r == pytest.approx({"correct": 1.0, "parallel_bonus": 0.05, "format_penalty": 0.5, "reward": 0.55})


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"kind": "critical"}, "accepted: 'critical_path', 'binary'"),
        ({"rho": -0.1}, "rho=-0.1"),
        ({"clip": -1.0}, "clip=-1.0"),
        ({"format_penalty": -0.5}, "format_penalty=-0.5"),
    ],
    ids=["unknown_kind", "negative_rho", "negative_clip", "negative_penalty"],
)
def test_reward_config_rejects_bad_values_with_message(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        RewardConfig(**kwargs)


def _play_example(ex, tokenizer, reward=None):
    ep = Episode(ex.problem, "apr", tokenizer=tokenizer, reward=reward)
    ep.act(0, ex.root_segment_0)
    ep.act(1, ex.child_actions[0])
    ep.act(2, ex.child_actions[1])
    ep.act(0, ex.root_continuation)
    return ep


def test_worked_example_reward_by_hand(worked_example, char_tok):
    # critical path 1496 of 1745 generated tokens (see test_metrics): 1 - 1496/1745 = 249/1745 < 0.2
    ep = _play_example(worked_example, char_tok)
    r = ep.reward()
    assert r["correct"] == 1.0
    assert r["parallel_bonus"] == pytest.approx(0.5 * 249 / 1745)
    assert r["reward"] == pytest.approx(1 + 0.5 * 249 / 1745)


def test_worked_example_binary_reward_is_one(worked_example, char_tok):
    ep = _play_example(worked_example, char_tok, RewardConfig(kind="binary"))
    assert ep.reward() == {"correct": 1.0, "parallel_bonus": 0.0, "format_penalty": 0.0, "reward": 1.0}


def test_reward_is_zero_before_the_root_answers(worked_example, char_tok):
    ep = Episode(worked_example.problem, "apr", tokenizer=char_tok)
    ep.act(0, worked_example.root_segment_0)
    assert ep.reward()["reward"] == 0.0


def _gym_play(env, ex, extra_child_text=""):
    env.reset(options={"problem": ex.problem})
    rewards = []
    for action in (ex.root_segment_0, ex.child_actions[0] + extra_child_text, ex.child_actions[1]):
        _, r, term, trunc, _ = env.step(action)
        rewards.append(r)
        assert not (term or trunc)
    _, r, term, trunc, info = env.step(ex.root_continuation)
    return rewards, r, term, info


def test_gym_final_info_carries_reward_components(worked_example, char_tok):
    env = gym.make("APRCountdown-v0", tokenizer=char_tok)
    rewards, r, term, info = _gym_play(env, worked_example)
    assert rewards == [0.0, 0.0, 0.0] and term
    assert r == pytest.approx(1 + 0.5 * 249 / 1745)
    assert info["reward"] == r
    assert info["reward_correct"] == 1.0
    assert info["reward_parallel_bonus"] == pytest.approx(0.5 * 249 / 1745)
    assert info["reward_format_penalty"] == 0.0


def test_gym_format_penalty_applies_when_a_format_error_was_recorded(worked_example, char_tok):
    # A non-printable character in child 0's text is replaced by '?' and recorded as a format error;
    # the answer still verifies, so the reward is the correct one minus the penalty.
    env = gym.make("APRCountdown-v0", tokenizer=char_tok, reward={"format_penalty": 0.3})
    _, r, _, info = _gym_play(env, worked_example, extra_child_text="\n\x07")
    assert info["correct"] and "unprintable_characters" in info["format_errors"]
    assert info["reward_format_penalty"] == 0.3
    assert r == pytest.approx(info["reward_correct"] + info["reward_parallel_bonus"] - 0.3)
