"""The GRPO objective and loop: invariances of the loss, learning on a toy task, exact resume, errors.

- Loss and gradient do not depend on the micro-batch split (global denominators), for every
  normalisation; under 'episode_mean' they do not depend on cutting a thread's row in two.
  Checked through `train_step` itself with plain SGD at lr 1, so the updated weights are
  ``w - grad``: equal weights mean equal gradients.
- A toy reward the tiny model can learn (the share of even token ids it samples) rises over
  a seeded run, and falls when the advantage sign is flipped (the reward negated).
- A run stopped and resumed from its checkpoint ends with the same weights and metrics as an
  uninterrupted one (batch-invariant rollouts: `rollout_batch_size=1`, no KV reuse).
"""

from __future__ import annotations

import csv

import pytest
import torch
from accelerate import Accelerator
from grpo_fixtures import TOK, hand_rows, tiny_model
from tiny_models import make_tiny_llama, save_tiny_model

from apr_env import Problem
from apr_env.errors import ConfigError
from runtime.backends.http_errors import BackendStatusError
from trainers.grpo import (
    UnsupportedBackendError,
    WeightSyncError,
    make_rollout_backend,
    sync_weights,
    train_grpo,
    train_step,
)
from trainers.grpo_config import GRPOConfig
from trainers.rollout_schema import TreeRow


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models on a shared CPU: one intra-op thread is ~100x faster than contended ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


PROBLEMS = [Problem(10, (2, 5)), Problem(7, (3, 4)), Problem(24, (6, 4))]


def _step(rows, config: GRPOConfig, seed: int = 0):
    """One `train_step` with SGD(lr=1) on a fresh copy of the model: (loss, updated weights)."""
    model = tiny_model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    stats = train_step(model, opt, rows, config, Accelerator(cpu=True))
    return stats["loss"], {k: v.clone() for k, v in model.state_dict().items()}


def _assert_same(a, b):
    (loss_a, w_a), (loss_b, w_b) = a, b
    assert loss_a == pytest.approx(loss_b, rel=1e-5, abs=1e-9)
    for k in w_a:
        torch.testing.assert_close(w_a[k], w_b[k], rtol=1e-5, atol=1e-6, msg=k)


@pytest.mark.parametrize("norm", ["token_mean", "episode_mean", "constant"])
def test_loss_and_gradient_do_not_depend_on_the_micro_batch_split(norm):
    rows = hand_rows(tiny_model())
    config = GRPOConfig(loss_norm=norm, max_grad_norm=0.0, micro_batch_size=len(rows))
    whole = _step(rows, config)
    for size in (1, 3):
        _assert_same(whole, _step(rows, GRPOConfig(loss_norm=norm, max_grad_norm=0.0, micro_batch_size=size)))
    assert whole[0] != 0.0


def _split(row: TreeRow, k: int) -> list[TreeRow]:
    """Cut a row after k completion tokens: the second row's prompt holds the first's completion."""
    first = TreeRow(row.episode_id, row.group_id, row.node_id, row.parent_id, row.depth, row.call_index,
                    row.prompt_ids, row.completion_ids[:k], row.logprobs[:k], row.loss_mask[:k],
                    advantage=row.advantage)  # fmt: skip
    second = TreeRow(row.episode_id, row.group_id, row.node_id, row.parent_id, row.depth, row.call_index + 1,
                     row.prompt_ids + row.completion_ids[:k], row.completion_ids[k:], row.logprobs[k:],
                     row.loss_mask[k:], advantage=row.advantage)  # fmt: skip
    return [first, second]


def test_episode_mean_does_not_depend_on_cutting_a_thread_into_two_rows():
    rows = hand_rows(tiny_model())
    target = max(range(len(rows)), key=lambda i: len(rows[i].completion_ids))
    cut = rows[:target] + _split(rows[target], 2) + rows[target + 1 :]
    config = GRPOConfig(loss_norm="episode_mean", max_grad_norm=0.0, micro_batch_size=2)
    _assert_same(_step(rows, config), _step(cut, config))


def test_many_thread_episode_weighs_as_much_as_a_one_thread_episode_under_episode_mean():
    # the gradient of an episode does not grow with its row count: duplicating a 1-row episode's
    # thread into 3 identical rows (same tokens) leaves the step unchanged
    rows = [r for r in hand_rows(tiny_model()) if r.episode_id in (0, 1)]
    ep0 = [r for r in rows if r.episode_id == 0]
    assert len(ep0) == 1
    tripled = ep0 * 3 + [r for r in rows if r.episode_id == 1]
    config = GRPOConfig(loss_norm="episode_mean", max_grad_norm=0.0)
    _assert_same(_step(rows, config), _step(tripled, config))


def _run_toy(tmp_path, sign: float, steps: int = 30) -> list[float]:
    """Train on the toy reward (share of even ids in the root's first completion) times `sign`;
    return the unsigned reward's mean per step."""
    config = GRPOConfig(out=str(tmp_path), steps=steps, problems_per_step=2, group_size=4, max_new_tokens=6,
                        context_window=256, lr=3e-3, progress=False, tensorboard=False, save_every=0)  # fmt: skip
    shares: list[float] = []

    def reward(record):
        ids = record["calls"][0][0]["output_ids"]
        shares.append(sum(i % 2 == 0 for i in ids) / len(ids))
        return sign * shares[-1]

    model = make_tiny_llama(TOK.vocab_size, seed=0, init_std=0.02)  # flat enough to sample varied ids
    train_grpo(config, model, TOK, problems=PROBLEMS, reward_fn=reward)
    n = config.problems_per_step * config.group_size  # episodes per step, rewarded in order
    return [sum(shares[i : i + n]) / n for i in range(0, len(shares), n)]


def test_toy_reward_rises_and_falls_with_the_advantage_sign_flipped(tmp_path):
    up = _run_toy(tmp_path / "up", +1.0)
    down = _run_toy(tmp_path / "down", -1.0)
    first_up, last_up = sum(up[:6]) / 6, sum(up[-6:]) / 6
    first_down, last_down = sum(down[:6]) / 6, sum(down[-6:]) / 6
    assert first_up == pytest.approx(first_down, abs=0.1)  # same start
    assert last_up > first_up + 0.15, up
    assert last_down < first_down - 0.1, down


def _rows_of(path):
    with open(path) as f:
        return [{k: v for k, v in r.items() if not k.endswith("_s")} for r in csv.DictReader(f)]


def test_resume_reproduces_an_uninterrupted_run_exactly(tmp_path):
    common = dict(problems_per_step=2, group_size=2, max_new_tokens=5, context_window=256, lr=1e-3,
                  progress=False, tensorboard=False, save_every=2, rollout_batch_size=1, reuse_kv=False)  # fmt: skip
    full = GRPOConfig(out=str(tmp_path / "full"), steps=4, **common)
    train_grpo(full, tiny_model(), TOK, problems=PROBLEMS)
    half = GRPOConfig(out=str(tmp_path / "resumed"), steps=2, **common)
    train_grpo(half, tiny_model(), TOK, problems=PROBLEMS)
    resumed = GRPOConfig(out=str(tmp_path / "resumed"), steps=4, resume=True, **common)
    train_grpo(resumed, tiny_model(), TOK, problems=PROBLEMS)
    a = torch.load(tmp_path / "full/checkpoint/state.pt", weights_only=False)
    b = torch.load(tmp_path / "resumed/checkpoint/state.pt", weights_only=False)
    assert a["step"] == b["step"] == 4
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert _rows_of(tmp_path / "full/metrics.csv") == _rows_of(tmp_path / "resumed/metrics.csv")
    assert len(_rows_of(tmp_path / "full/metrics.csv")) == 4
    assert any(not torch.equal(a["model"][k], tiny_model().state_dict()[k]) for k in a["model"])


def test_resume_without_a_checkpoint_says_so(tmp_path):
    config = GRPOConfig(out=str(tmp_path), steps=1, resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train_grpo(config, tiny_model(), TOK, problems=PROBLEMS)


def test_openai_backend_is_refused_with_the_alternatives():
    with pytest.raises(UnsupportedBackendError, match=r"--backend transformers.*--backend sglang"):
        make_rollout_backend(GRPOConfig(backend="openai"), tiny_model(), TOK)


class _RefusingServer:
    def update_weights_from_disk(self, path):
        raise BackendStatusError("POST /update_weights_from_disk failed", url="http://s:1", status=400,
                                 body='{"detail": "not implemented"}')  # fmt: skip


def test_sglang_weight_push_refused_with_400_explains_what_to_do(tmp_path):
    config = GRPOConfig(backend="sglang", urls=["http://s:1"], out=str(tmp_path))
    with pytest.raises(WeightSyncError, match=r"refused /update_weights_from_disk.*HTTP 400"):
        sync_weights(config, _RefusingServer(), tiny_model(), TOK, step=1)
    assert (tmp_path / "weights/step-1/config.json").exists()  # the weights were saved for the server


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"advantage": "rows"}, "advantage='rows'; accepted: 'broadcast'"),
        ({"loss_norm": "seq_mean"}, "loss_norm='seq_mean'"),
        ({"group_size": 1}, "at least 2 episodes"),
        ({"backend": "sglang"}, "needs urls"),
    ],
    ids=["advantage", "loss-norm", "group-size", "sglang-without-urls"],
)
def test_bad_config_is_refused_with_the_accepted_values(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        GRPOConfig(**kwargs)


def test_cli_train_grpo_runs_one_step(tmp_path):
    from apr_env import cli

    model_dir = save_tiny_model(tmp_path / "model", tiny_model(), TOK)
    out = tmp_path / "run"
    rc = cli.main(["train", "grpo", "--model", str(model_dir), "--num-problems", "4", "--steps", "1",
                   "--problems-per-step", "2", "--group-size", "2", "--max-new-tokens", "4",
                   "--context-window", "256", "--out", str(out), "--no-progress"])  # fmt: skip
    assert rc == 0
    rows = _rows_of(out / "metrics.csv")
    assert len(rows) == 1 and float(rows[0]["train_tokens"]) >= 0
    expected = {"reward", "accuracy", "total_tokens", "critical_path", "threads", "children_per_spawn",
                "parallel_ratio", "kl_ref", "kl_sampler", "clip_frac", "entropy", "logprob_gap"}  # fmt: skip
    assert expected <= set(rows[0])
    assert (out / "model/config.json").exists() and (out / "checkpoint/state.pt").exists()


def test_in_process_rollouts_are_served_by_the_trained_model_itself(tmp_path):
    from trainers.grpo import setup_grpo

    model = tiny_model()
    run = setup_grpo(GRPOConfig(out=str(tmp_path), progress=False), model, TOK, problems=PROBLEMS)
    try:
        assert run.backend.model is run.model is model  # no copy: an update is seen by the next rollout
    finally:
        run.backend.close()


@pytest.mark.parametrize(
    ("step", "spawns", "want"),
    [(0, 1, 1.5), (5, 1, 1.25), (10, 1, 1.0), (20, 1, 1.0), (0, 0, 1.0)],
    ids=["start", "half-annealed", "annealed", "after", "no-spawn"],
)
def test_spawn_bonus_is_annealed_and_only_paid_for_spawning(step, spawns, want):
    from trainers.grpo import episode_rewards

    config = GRPOConfig(spawn_bonus=0.5, spawn_bonus_anneal_steps=10)
    record = {"reward": 1.0, "metrics": {"num_spawns": spawns}}
    assert episode_rewards([record], config, step) == [pytest.approx(want)]


def test_k3_kl_to_the_reference_is_zero_at_the_reference_and_grows_away_from_it():
    rows = hand_rows(tiny_model())
    config = GRPOConfig(kl_beta=0.5, max_grad_norm=0.0)

    def kl_step(ref_seed: int) -> dict:
        model = tiny_model()
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        return train_step(
            model, opt, rows, config, Accelerator(cpu=True), ref_model=tiny_model(seed=ref_seed)
        )

    same, other = kl_step(0), kl_step(1)
    assert same["kl_ref"] == pytest.approx(0.0, abs=1e-6)
    assert other["kl_ref"] > 0.01 and other["loss"] > same["loss"]


def test_bf16_autocast_step_keeps_fp32_weights_and_a_finite_loss():
    model = tiny_model()
    rows = hand_rows(model)
    stats = train_step(model, torch.optim.AdamW(model.parameters(), lr=1e-3), rows, GRPOConfig(bf16=True),
                       Accelerator(cpu=True))  # fmt: skip
    assert torch.isfinite(torch.tensor(stats["loss"])) and stats["grad_norm"] > 0
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_sglang_backend_trains_against_apr_env_serve_and_pushes_each_update(tmp_path):
    """The HTTP path end to end: rollouts from `apr-env serve` (SGLang API), weights pushed after each
    step with /update_weights_from_disk; at the end the server holds exactly the trained weights."""
    from runtime.backends.transformers_backend import TransformersBackend
    from runtime.server import serve

    served = save_tiny_model(tmp_path / "weights/initial", tiny_model(), TOK)
    server_backend = TransformersBackend(str(served), TOK)
    trained = tiny_model()
    try:
        with serve(server_backend, tokenizer=TOK, weights_dir=str(tmp_path / "weights")) as server:
            config = GRPOConfig(out=str(tmp_path / "run"), steps=2, problems_per_step=2, group_size=2,
                                max_new_tokens=5, context_window=256, lr=1e-2, progress=False,
                                tensorboard=False, backend="sglang", urls=[server.url],
                                weights_dir=str(tmp_path / "weights"))  # fmt: skip
            metrics = train_grpo(config, trained, TOK, problems=PROBLEMS)
            served_now = {k: v.clone() for k, v in server_backend.model.state_dict().items()}
    finally:
        server_backend.close()
    assert metrics["step"] == 2 and (tmp_path / "weights/step-2/config.json").exists()
    start = tiny_model().state_dict()
    assert any(not torch.equal(v, start[k]) for k, v in trained.state_dict().items())
    for k, v in trained.state_dict().items():
        assert torch.equal(served_now[k], v), k
