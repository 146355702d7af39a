"""`trainers.ppo`: a tiny MaskablePPO run writes a model that `apr-env eval --agent ppo` plays.

One short run (a few hundred decisions, tiny splits) checks the whole path: config checks,
held-out evaluation during training, the saved zip and its env kwargs, the learning curve, and
the adapter playing the saved policy through the runner via the command line.
"""

from __future__ import annotations

import json

import pytest

from apr_env.errors import ConfigError
from trainers.ppo_config import PPOConfig


def test_config_rejects_bad_values_with_the_accepted_ones():
    with pytest.raises(ConfigError, match="accepted: dummy, subproc"):
        PPOConfig(vec_env="threads")
    with pytest.raises(ConfigError, match="batch_size"):
        PPOConfig(n_steps=16, n_envs=1, batch_size=64)
    with pytest.raises(ConfigError, match="total_timesteps"):
        PPOConfig(total_timesteps=0)


@pytest.mark.slow
def test_tiny_training_run_saves_a_policy_that_eval_plays(tmp_path, capsys):
    from agents.sb3_agent import MacroPolicyAgent
    from apr_env.cli import main
    from trainers.ppo import train_ppo

    out = tmp_path / "ppo"
    config = PPOConfig(
        out=str(out),
        total_timesteps=256,
        n_envs=2,
        n_steps=64,
        batch_size=64,
        n_epochs=1,
        train_problems=20,
        test_problems=0,
        eval_problems=4,
        eval_freq=128,
        context_window=2048,
        progress=False,
    )
    summary = train_ppo(config)
    assert summary["timesteps"] >= 256
    assert len(summary["curve"]["eval_accuracy"]) == 2  # evaluations at 128 and 256 decisions
    for name in ("model.zip", "model.env.json", "evaluations.npz", "curve.png", "summary.json"):
        assert (out / name).exists(), name
    assert json.loads((out / "model.env.json").read_text())["context_window"] == 2048
    agent = MacroPolicyAgent.load(out / "model.zip")
    assert agent.config.limits.context_window == 2048

    capsys.readouterr()
    results = tmp_path / "eval.json"
    argv = [
        "eval",
        "--agent",
        "ppo",
        "--model",
        str(out / "model.zip"),
        "--n",
        "3",
        "--context-window",
        "2048",
    ]
    assert main([*argv, "--out", str(results)]) == 0
    point = json.loads(results.read_text())["points"][0]
    assert point["episodes"] == 3 and point["value"] == "ppo"


def test_protocol_bench_adds_a_row_for_a_trained_macro_policy():
    from pathlib import Path

    from benchmarks.protocol_bench import BenchConfig, run_bench

    model = Path(__file__).resolve().parents[1] / "benchmarks/results/ppo/model.zip"
    config = BenchConfig(
        n_problems=3, protocols=["serial"], sweeps={"serial": [1]}, workers=1, out="", ppo_model=str(model)
    )
    points = run_bench(config, progress=False)["points"]
    assert [p["protocol"] for p in points] == ["serial", "apr (MaskablePPO)"]
    assert points[1]["episodes"] == 3 and points[1]["total_tokens"] > 0
