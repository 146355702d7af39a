"""MaskablePPO (sb3-contrib) on the macro-action environment: learning when to spawn.

    apr-env train ppo --total-timesteps 30000 --out runs/ppo          # ~10 minutes on 2 busy cores
    apr-env train ppo --total-timesteps 512 --n-steps 128 --out /tmp/ppo --no-progress   # smoke run

`train_ppo(config)` reads top to bottom: disjoint train / eval problem splits, training envs
(`APRCountdownMacro-v0` under SB3's `Monitor`, in a Dummy or Subproc VecEnv; masks come from the
env's `action_masks` method, through ``env_method`` for subprocesses), a held-out eval env that
plays the eval problems in order, `MaskableEvalCallback` (deterministic, masks applied), learn,
save (``model.zip`` plus the env kwargs in ``model.env.json``, which `agents.sb3_agent` reads),
and a learning-curve PNG. What is left to others: comparing the policy with the symbolic agents
(`benchmarks/ppo_bench.py`), and playing it in ``apr-env eval --agent ppo``.

SB3 conventions this follows (trainers-anchors section 3): one joint `Discrete` action, masks
from the env, invalid actions are penalised no-ops rather than errors, masks are passed to
`predict`, and VecNormalize is not used (nothing to save beside the zip).
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from agents.macro_env import APRCountdownMacroEnv
from agents.sb3_agent import env_kwargs_path
from apr_env import split_problems
from apr_env.provenance import provenance
from trainers.ppo_config import PPOConfig

SUCCESS = 0.5
"""An episode reward above this counts as solved (the default reward is 0 when wrong, >= 1 when right)."""


class InOrder(gym.Wrapper):
    """Resets play the env's problems in order, each with a fixed search seed (its index).

    An evaluation of ``len(problems)`` episodes therefore plays every held-out problem exactly
    once, whatever the offset it starts at.
    """

    def __init__(self, env: gym.Env, n: int):
        super().__init__(env)
        self.n = n
        self.i = 0

    def reset(self, *, seed=None, options=None):
        index = self.i % self.n
        self.i += 1
        return self.env.reset(seed=seed, options={**(options or {}), "index": index, "seed": index})

    def action_masks(self) -> np.ndarray:
        return self.env.action_masks()


def splits(config: PPOConfig) -> dict:
    """Disjoint train / eval / test problems; the same sizes and seed give the same splits.

    The test split is drawn even though training never reads it, so that the train split
    excludes it: `benchmarks/ppo_bench.py` rebuilds the splits from the run's saved config.
    """
    sizes = {"train": config.train_problems, "eval": config.eval_problems, "test": config.test_problems}
    return split_problems(sizes, seed=config.problem_seed)


def make_env_fn(problems, env_kwargs: dict, monitor_file: str | None = None):
    """A thunk building one Monitor-wrapped macro env over `problems` (picklable for subprocesses)."""

    def make():
        from stable_baselines3.common.monitor import Monitor

        env = APRCountdownMacroEnv(problems=problems, **env_kwargs)
        return Monitor(env, monitor_file, info_keywords=("correct",))

    return make


def train_ppo(config: PPOConfig) -> dict:
    """Train, evaluate on the held-out split during training, save; return the summary (also in summary.json)."""
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    data = splits(config)
    env_kwargs = config.env_kwargs()
    fns = [make_env_fn(data["train"], env_kwargs, str(out / f"train_{i}")) for i in range(config.n_envs)]
    vec = SubprocVecEnv(fns) if config.vec_env == "subproc" else DummyVecEnv(fns)
    vec.seed(config.seed)
    eval_env = Monitor(InOrder(APRCountdownMacroEnv(problems=data["eval"], **env_kwargs), len(data["eval"])))
    callback = MaskableEvalCallback(
        eval_env,
        n_eval_episodes=len(data["eval"]),
        eval_freq=max(config.eval_freq // config.n_envs, 1),
        log_path=str(out),
        deterministic=True,
        verbose=1,
    )
    model = MaskablePPO(
        "MultiInputPolicy",
        vec,
        n_steps=config.n_steps,
        batch_size=config.batch_size,
        n_epochs=config.n_epochs,
        learning_rate=config.learning_rate,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        ent_coef=config.ent_coef,
        policy_kwargs={"net_arch": list(config.net_arch)},
        seed=config.seed,
        device="cpu",
        verbose=0,
    )
    started = time.perf_counter()
    try:
        model.learn(config.total_timesteps, callback=callback, progress_bar=config.progress)
    finally:
        vec.close()
    seconds = time.perf_counter() - started
    model_path = out / "model.zip"
    model.save(model_path)
    env_kwargs_path(model_path).write_text(json.dumps(env_kwargs, indent=2) + "\n")
    curve = learning_curve(out)
    summary = {
        "config": {**vars(config), "net_arch": list(config.net_arch)},
        "command": "apr-env " + " ".join(sys.argv[1:]),
        "provenance": provenance(),
        "train_seconds": seconds,
        "timesteps": int(model.num_timesteps),
        "model": str(model_path),
        "curve": curve,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"trained {model.num_timesteps} steps in {seconds:.0f} s; model in {model_path}")
    if curve["eval_accuracy"]:
        print(f"held-out accuracy (deterministic, masks): last {curve['eval_accuracy'][-1]:.3f}")
    return summary


def learning_curve(out: Path) -> dict:
    """Eval accuracy and mean reward per evaluation, training accuracy per 100 episodes; writes curve.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = {
        "eval_timesteps": [],
        "eval_accuracy": [],
        "eval_reward": [],
        "train_timesteps": [],
        "train_accuracy": [],
    }
    evals = out / "evaluations.npz"
    if evals.exists():
        with np.load(evals) as f:
            curve["eval_timesteps"] = f["timesteps"].tolist()
            curve["eval_accuracy"] = (f["results"] > SUCCESS).mean(axis=1).tolist()
            curve["eval_reward"] = f["results"].mean(axis=1).tolist()
    episodes = []  # (wall time, length, correct) over every training env's monitor file
    for path in sorted(out.glob("train_*.monitor.csv")):
        with path.open() as fh:
            next(fh)  # the JSON header line
            episodes += [(float(r["t"]), int(r["l"]), r["correct"] == "True") for r in csv.DictReader(fh)]
    episodes.sort()
    steps = np.cumsum([e[1] for e in episodes])
    for start in range(0, len(episodes) - 99, 100):
        curve["train_timesteps"].append(int(steps[start + 99]))
        curve["train_accuracy"].append(sum(e[2] for e in episodes[start : start + 100]) / 100)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(curve["train_timesteps"], curve["train_accuracy"], label="training episodes (per 100, sampled)")
    ax.plot(curve["eval_timesteps"], curve["eval_accuracy"], "o-", label="held-out (deterministic)")
    ax.set_xlabel("decisions (timesteps)")
    ax.set_ylabel("accuracy")
    ax.set_title("MaskablePPO on APRCountdownMacro-v0")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "curve.png", dpi=120)
    plt.close(fig)
    return curve
