"""Tree-aware GRPO: end-to-end RL on spawn trees, parent and child threads trained together.

Reads top to bottom: rollout (episodes through `runtime.run_episodes` -> tree rows), reward
(the environment's reward config, optional annealed spawn bonus), advantage (per *episode*,
baseline over the G episodes of a group, then onto rows by a scheme), loss (PPO-clipped
ratio against the sampler's logprobs, global token weights), step (micro-batched backward,
gradient clip, AdamW). `train_grpo` runs the loop; setup steps are named functions.

Why our own trainer: TRL's `GRPOTrainer` keeps one row per prompt copy, so a child thread
with its own context cannot be trained (reference/trainers-anchors.md section 2). Our rows
are TRL-shaped (`trainers.rollout_schema.to_trl_rows`) so the two stay interchangeable.

The fixes of reference/apr-reference.md section 8, items 20-25:

- 20: the optimizer holds fp32 master weights; ``bf16=True`` only autocasts the forward.
- 21, 22: rows carry the sampler's token ids (bos, EOS included); nothing is re-tokenised.
- 24: the loss weights are explicit (`token_weights`): 'token_mean', 'episode_mean' (each
  episode weighs 1 whatever its thread count) or 'constant', with denominators computed over
  the whole (global) batch before micro-batching, so the step size never depends on the
  micro-batch split or on how many rows a thread was cut into.
- 25: the importance ratio is trainer / *sampler* logprob, so clipping acts from the first
  update and corrects sampler/trainer mismatch; the mean gap is logged (`logprob_gap`).

Backends: 'transformers' (default): the trained model object itself serves the rollouts
(eval mode, inference mode in the backend's worker; retained KV flushed after each update),
no copy and no reload. 'sglang': after each update the weights are saved to a folder the
servers can read and pushed with ``POST /update_weights_from_disk``. 'openai' (vLLM and other
OpenAI-compatible servers): not supported, there is no weight-reload route we can drive.

Scale-out (8 GPUs). The trainer runs under ``accelerate launch`` (DDP): each process rolls out
the groups ``g % world == rank`` of the step's problems, denominators are all-reduced, DDP
averages gradients (the loss is scaled by the world size so the update equals one process on
the global batch; checked by ``tests/test_grpo_ddp.py``). Rollouts scale through SGLang
itself, not through us. Recipe for one 8-GPU node, 4 GPUs training, 4 serving::

    CUDA_VISIBLE_DEVICES=4,5,6,7 python -m sglang.launch_server --model-path ckpt/sft \\
        --dp-size 4 --port 30000 &            # or 4 servers behind sglang-router
    CUDA_VISIBLE_DEVICES=0,1,2,3 accelerate launch --num_processes 4 -m apr_env.cli train grpo \\
        --model ckpt/sft --backend sglang --url http://127.0.0.1:30000 \\
        --weights-dir /shared/grpo-weights --problems data/train.json \\
        --problems-per-step 64 --group-size 5 --steps 150 --bf16

Several ``--url`` flags spread requests round-robin over servers (the runtime's URL list);
``--weights-dir`` must be readable by every server. On one GPU use the in-process backend.

What this module leaves to others: episodes and their rules (`apr_env`), running them
(`runtime.runner`), the agent (`agents.llm_agent`), the row schema (`trainers.rollout_schema`),
CSV/TensorBoard logging and checkpoints (`trainers.grpo_log`).
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from apr_env.limits import Limits
from apr_env.problem import Problem
from apr_env.rewards import RewardConfig
from apr_env.seeding import episode_seed
from trainers.grpo_config import GRPOConfig
from trainers.rollout_schema import TreeRow, rows_from_record

RewardFn = Callable[[dict], float]
"""A custom reward: runner record -> float (replaces the environment's reward)."""


class UnsupportedBackendError(ValueError):
    """The chosen rollout backend cannot follow the trained weights."""


class WeightSyncError(RuntimeError):
    """Pushing new weights to the rollout servers failed."""


# ==========================================================================================
# Setup
# ==========================================================================================


def load_policy(model_or_path, tokenizer=None):
    """(model, tokenizer): a causal LM in fp32 (master weights) and its Countdown tokenizer.

    `model_or_path` is a loaded model (used as is, cast to fp32) or a folder for
    ``AutoModelForCausalLM.from_pretrained``; the tokenizer defaults to the folder's.
    """
    from apr_env.tokenizer import load_tokenizer

    if isinstance(model_or_path, (str, Path)):
        from transformers import AutoModelForCausalLM

        path = Path(model_or_path)
        if not (path / "config.json").exists():
            raise FileNotFoundError(
                f"--model {path}: no config.json there; pass a Hugging Face model folder (e.g. an SFT checkpoint)"
            )
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa")
        tokenizer = load_tokenizer(tokenizer if tokenizer is not None else path)
    else:
        model = model_or_path
        tokenizer = load_tokenizer(tokenizer)
    return model.float(), tokenizer


def make_rollout_backend(config: GRPOConfig, model, tokenizer):
    """The backend rollouts go through (see the module docstring for the three kinds)."""
    if config.backend == "transformers":
        from runtime.backends.transformers_backend import TransformersBackend, TransformersBackendConfig

        return TransformersBackend(
            model,
            tokenizer,
            TransformersBackendConfig(
                max_batch_size=config.rollout_batch_size,
                max_retained_sequences=256 if config.reuse_kv else 0,
            ),
        )
    if config.backend == "sglang":
        from runtime.backends.sglang_backend import SGLangBackend

        return SGLangBackend(config.urls, tokenizer=tokenizer, context_length=config.context_window)
    raise UnsupportedBackendError(
        f"backend {config.backend!r} (OpenAI-compatible / vLLM) is not supported for training: it has no "
        "weight-reload route this trainer can drive, so rollouts would come from stale weights. Use "
        "--backend transformers (the trained model serves rollouts in-process) or --backend sglang "
        "(weights pushed with /update_weights_from_disk after each step)."
    )


def make_agent(config: GRPOConfig, backend, tokenizer):
    """The LLM agent that plays every thread with the rollout sampling settings."""
    from agents.llm_agent import LLMAgent, LLMAgentConfig

    return LLMAgent(
        backend,
        tokenizer,
        LLMAgentConfig(
            context_window=config.context_window,
            temperature=config.temperature,
            max_new_tokens=config.max_new_tokens,
            return_logprob=True,
            reuse_kv=config.reuse_kv,
        ),
    )


def make_optimizer(model, config: GRPOConfig) -> torch.optim.Optimizer:
    """AdamW over fp32 parameters (reference flaw 20: bf16 weights lose lr-1e-5 updates)."""
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def make_reference(model, config: GRPOConfig):
    """A frozen copy of the initial model for the k3 KL, or None when `kl_beta` is 0."""
    if config.kl_beta == 0:
        return None
    ref = copy.deepcopy(model).eval()
    ref.requires_grad_(False)
    return ref


def sync_weights(config: GRPOConfig, backend, model, tokenizer, step: int, accelerator=None) -> None:
    """Make the rollout backend sample from the updated weights.

    In-process: the backend holds the very model object, so only retained KV (computed with
    the old weights) is dropped. SGLang: the main process saves to `weights_dir`/step-N and
    pushes the folder; the others wait for it (every process samples from the same servers).
    """
    if config.backend == "transformers":
        backend.flush_cache()
        return
    if accelerator is not None and accelerator.num_processes > 1:
        if accelerator.is_main_process:
            sync_weights(config, backend, model, tokenizer, step)
        accelerator.wait_for_everyone()
        return
    from runtime.backends.http_errors import BackendStatusError

    folder = Path(config.weights_dir or Path(config.out) / "weights") / f"step-{step}"
    save_model(model, tokenizer, folder)
    try:
        backend.update_weights_from_disk(str(folder.resolve()))
    except BackendStatusError as err:
        if err.status == 400:
            raise WeightSyncError(
                f"the server at {err.url} refused /update_weights_from_disk for {folder} (HTTP 400: {err.body!r}). "
                "The server must be able to read that folder: start `apr-env serve` with --weights-dir set to a "
                "folder that contains it (it refuses paths outside), or point this run's --weights-dir at a path "
                "a stock SGLang server can read."
            ) from err
        raise


def save_model(model, tokenizer, folder: str | Path) -> Path:
    """`save_pretrained` the model and save the tokenizer next to it."""
    folder = Path(folder)
    model.save_pretrained(folder)
    for name in ("save_pretrained", "save"):
        if callable(getattr(tokenizer, name, None)):
            getattr(tokenizer, name)(folder)
            break
    return folder


# ==========================================================================================
# Rollout
# ==========================================================================================


@dataclass
class Rollout:
    """One process's share of a step's episodes: their records, rows and rewards."""

    records: list[dict]
    group_ids: list[int]
    """Per record, its group (problem) id in the step."""
    episode_ids: list[int]
    """Per record, its episode id in the step (global over processes)."""
    rows: list[TreeRow] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)


def step_problems(problems: Sequence[Problem], config: GRPOConfig, step: int) -> list[Problem]:
    """The `problems_per_step` problems of `step`: a seeded draw (without replacement when enough)."""
    rng = np.random.default_rng([config.seed, step])
    replace = len(problems) < config.problems_per_step
    picks = rng.choice(len(problems), size=config.problems_per_step, replace=replace)
    return [problems[int(i)] for i in picks]


def collect_rollouts(
    agent,
    problems: Sequence[Problem],
    config: GRPOConfig,
    step: int,
    tokenizer,
    *,
    rank: int = 0,
    world: int = 1,
) -> Rollout:
    """Play G episodes of each of this process's problems (groups ``g % world == rank``).

    Episode ``g * G + k`` is the k-th play of problem g; sampling seeds derive from
    (seed, step, rank), so a step's rollouts are reproducible.
    """
    from runtime.runner import RunConfig, run_episodes

    G = config.group_size
    groups = [g for g in range(len(problems)) if g % world == rank]
    run_problems = [problems[g] for g in groups for _ in range(G)]
    run = RunConfig(
        protocol=config.protocol,
        protocol_kwargs=dict(config.protocol_kwargs),
        limits=Limits(
            context_window=config.context_window, max_threads=config.max_threads, max_depth=config.max_depth
        ),
        reward=RewardConfig(kind=config.reward),
        seed=episode_seed(config.seed, step * 4096 + rank),
        max_concurrent=config.max_concurrent,
        record_calls=True,
    )
    records = run_episodes(agent, run_problems, run, tokenizer=tokenizer) if run_problems else []
    group_ids = [g for g in groups for _ in range(G)]
    episode_ids = [g * G + k for g in groups for k in range(G)]
    return Rollout(records, group_ids, episode_ids)


def build_rows(rollout: Rollout) -> list[TreeRow]:
    """Every generated segment of every thread of every episode, as rows (`rows_from_record`)."""
    rows = []
    for rec, g, e, r in zip(rollout.records, rollout.group_ids, rollout.episode_ids, rollout.rewards):
        for row in rows_from_record(rec, episode_id=e, group_id=g):
            row.reward = r
            rows.append(row)
    return rows


# ==========================================================================================
# Reward
# ==========================================================================================


def spawn_bonus(config: GRPOConfig, step: int) -> float:
    """The spawn bonus at `step`: `spawn_bonus`, decayed linearly to 0 over `spawn_bonus_anneal_steps`."""
    if config.spawn_bonus_anneal_steps <= 0:
        return config.spawn_bonus
    return config.spawn_bonus * max(0.0, 1.0 - step / config.spawn_bonus_anneal_steps)


def episode_rewards(
    records: Sequence[dict], config: GRPOConfig, step: int, reward_fn: RewardFn | None = None
):
    """Reward per episode: the environment's (its `RewardConfig`, already in the record) plus the
    spawn bonus for episodes that spawned, or `reward_fn(record)` when given."""
    if reward_fn is not None:
        return [float(reward_fn(rec)) for rec in records]
    bonus = spawn_bonus(config, step)
    return [float(rec["reward"]) + (bonus if rec["metrics"]["num_spawns"] > 0 else 0.0) for rec in records]


# ==========================================================================================
# Advantage
# ==========================================================================================


def group_advantages(scores: Sequence[float], group_ids: Sequence[int], scale: str = "mean") -> list[float]:
    """Per-episode advantage: score - mean over its group's episodes (÷ group std for 'std').

    Shapes: `scores` [E], `group_ids` [E] -> [E]. One value per *episode*: the baseline never
    averages over rows, so an episode with many threads does not weigh more in it
    (agent-lightning#489). std is the population std (ddof 0); groups with equal scores get 0.
    """
    s = np.asarray(scores, dtype=np.float64)
    g = np.asarray(group_ids)
    adv = np.zeros_like(s)
    for gid in np.unique(g):
        idx = g == gid
        centred = s[idx] - s[idx].mean()
        if scale == "std":
            centred = centred / (s[idx].std() + 1e-6)
        adv[idx] = centred
    return adv.tolist()


def _local_node_score(row: TreeRow) -> float:
    """RAO: the node's own verified success plus the mean success of its direct children."""
    kids = row.children_success
    return row.node_success + (sum(kids) / len(kids) if kids else 0.0)


def assign_advantages(
    rows: list[TreeRow], episodes: dict[int, tuple[int, float]], config: GRPOConfig
) -> None:
    """Set `row.advantage` (and mask frozen rows) in place, by `config.advantage`.

    Args:
        rows: the batch's rows (this process's).
        episodes: episode_id -> (group_id, reward) for *every* episode of the groups present,
            including episodes that produced no row: they still count in their group's baseline.

    Schemes:
        broadcast: every row of an episode gets the episode's group advantage (APR).
        orchestrator_only: as broadcast, and rows of child threads get loss mask 0 (PARL:
            children frozen; they still run, only the root learns).
        local_node: a row's score is its node's `_local_node_score`; the baseline is the group
            mean of each episode's mean node score (each episode once, whatever its thread
            count), optionally ÷ the std of those episode scores.
    """
    ids = sorted(episodes)
    if config.advantage in ("broadcast", "orchestrator_only"):
        adv = dict(zip(ids, group_advantages([episodes[e][1] for e in ids], [episodes[e][0] for e in ids],
                                             config.advantage_scale)))  # fmt: skip
        for row in rows:
            row.advantage = adv[row.episode_id]
            if config.advantage == "orchestrator_only" and row.parent_id is not None:
                row.loss_mask = [0] * len(row.loss_mask)
        return
    # local_node: episode score = mean node score over its rows' distinct nodes
    node_scores: dict[int, dict[int, float]] = {e: {} for e in ids}
    for row in rows:
        node_scores[row.episode_id][row.node_id] = _local_node_score(row)
    ep_score = {e: (float(np.mean(list(v.values()))) if v else 0.0) for e, v in node_scores.items()}
    groups: dict[int, list[float]] = {}
    for e in ids:
        groups.setdefault(episodes[e][0], []).append(ep_score[e])
    base = {g: float(np.mean(v)) for g, v in groups.items()}
    spread = {g: float(np.std(v)) + 1e-6 for g, v in groups.items()}
    for row in rows:
        g = episodes[row.episode_id][0]
        a = _local_node_score(row) - base[g]
        row.advantage = a / spread[g] if config.advantage_scale == "std" else a


# ==========================================================================================
# Loss
# ==========================================================================================


@dataclass
class Denominators:
    """Global (all processes) counts the loss weights divide by, fixed before micro-batching."""

    tokens: float
    """Trainable tokens of the batch."""
    episodes: float
    """Episodes with at least one trainable token."""


def local_counts(rows: Sequence[TreeRow]) -> tuple[int, int]:
    """(trainable tokens, episodes with a trainable token) of this process's rows."""
    tokens = sum(r.trainable_tokens for r in rows)
    episodes = len({r.episode_id for r in rows if r.trainable_tokens})
    return tokens, episodes


def token_weights(rows: Sequence[TreeRow], config: GRPOConfig, den: Denominators) -> list[list[float]]:
    """Per row, per completion token, the weight of its token loss (0 where masked).

    Loss = Σ_rows Σ_tokens weight * token_loss, so summing micro-batch losses gives the same
    value and gradient for any split. 'token_mean': 1 / tokens. 'episode_mean':
    1 / (episodes * T_e), T_e = trainable tokens of the row's episode over all its rows, so
    each episode weighs 1 and cutting a thread into more rows changes nothing. 'constant':
    1 / (episodes * loss_constant) (Dr.GRPO).
    """
    per_episode: dict[int, int] = {}
    for r in rows:
        per_episode[r.episode_id] = per_episode.get(r.episode_id, 0) + r.trainable_tokens
    out = []
    for r in rows:
        if config.loss_norm == "token_mean":
            w = 1.0 / max(den.tokens, 1.0)
        elif config.loss_norm == "episode_mean":
            w = 1.0 / (max(den.episodes, 1.0) * max(per_episode[r.episode_id], 1))
        else:
            w = 1.0 / (max(den.episodes, 1.0) * config.loss_constant)
        out.append([w * m for m in r.loss_mask])
    return out


@dataclass
class MicroBatch:
    """Padded tensors of some rows. B rows, L = longest prompt + completion.

    `targets`, `old_logp`, `weights`, `mask`, `advantages` are [B, L - 1], aligned with the
    logits that predict position t + 1 (completion token j of row b sits at column P_b - 1 + j).
    """

    input_ids: torch.Tensor  # [B, L] long, right-padded with 0
    attention_mask: torch.Tensor  # [B, L] long
    targets: torch.Tensor  # [B, L-1] long: input_ids[:, 1:]
    old_logp: torch.Tensor  # [B, L-1] float: sampler logprobs at completion positions
    weights: torch.Tensor  # [B, L-1] float: token weights (0 off-completion and where masked)
    mask: torch.Tensor  # [B, L-1] bool: trainable completion tokens
    advantages: torch.Tensor  # [B, 1] float


def make_micro_batch(rows: Sequence[TreeRow], weights: Sequence[list[float]], device) -> MicroBatch:
    """Pad `rows` into a `MicroBatch` (right padding; positions from the attention mask)."""
    B = len(rows)
    L = max(len(r.prompt_ids) + len(r.completion_ids) for r in rows)
    ids = torch.zeros((B, L), dtype=torch.long)
    attn = torch.zeros((B, L), dtype=torch.long)
    old = torch.zeros((B, L - 1))
    w = torch.zeros((B, L - 1), dtype=torch.float64)
    for b, (r, wr) in enumerate(zip(rows, weights)):
        P, C = len(r.prompt_ids), len(r.completion_ids)
        ids[b, : P + C] = torch.tensor(r.prompt_ids + r.completion_ids)
        attn[b, : P + C] = 1
        old[b, P - 1 : P - 1 + C] = torch.tensor(r.logprobs)
        w[b, P - 1 : P - 1 + C] = torch.tensor(wr, dtype=torch.float64)
    adv = torch.tensor([[r.advantage or 0.0] for r in rows])
    return MicroBatch(
        ids.to(device), attn.to(device), ids[:, 1:].to(device), old.to(device),
        w.to(device), (w > 0).to(device), adv.to(device),
    )  # fmt: skip


def token_logprobs(model, mb: MicroBatch, bf16: bool = False, entropy: bool = True):
    """(logp [B, L-1] fp32 of each target token, entropy [B, L-1] or None) under `model`."""
    device_type = mb.input_ids.device.type
    with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(input_ids=mb.input_ids, attention_mask=mb.attention_mask).logits[:, :-1]
    logits = logits.float()
    lse = torch.logsumexp(logits, dim=-1)
    logp = torch.gather(logits, -1, mb.targets[..., None])[..., 0] - lse
    ent = None
    if entropy:
        with torch.no_grad():
            ent = lse - (torch.softmax(logits, -1) * logits).sum(-1)
    return logp, ent


def policy_loss(logp, mb: MicroBatch, clip_eps: float, ref_logp=None, kl_beta: float = 0.0):
    """PPO-clipped policy-gradient loss against the sampler, plus optional k3 KL; weighted sum.

    Per token: rho = exp(logp - sampler_logp); loss = max(-A rho, -A clip(rho, 1-eps, 1+eps));
    k3 = exp(ref - logp) - (ref - logp) - 1. Returns (scalar loss = Σ weights * (pg + beta k3),
    dict of token sums for metrics). Shapes: logp, ref_logp [B, L-1]; advantages [B, 1].
    """
    w = mb.weights.to(logp.dtype)
    ratio = torch.exp(logp - mb.old_logp)
    pg1 = -mb.advantages * ratio
    pg2 = -mb.advantages * torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps)
    per_token = torch.maximum(pg1, pg2)
    stats = {}
    if ref_logp is not None:
        d = ref_logp - logp
        k3 = torch.exp(d) - d - 1
        per_token = per_token + kl_beta * k3
        stats["kl_ref"] = (k3.detach() * mb.mask).sum()
    loss = (w * per_token).sum()
    with torch.no_grad():
        d_s = mb.old_logp - logp
        stats["clipped"] = ((pg2 > pg1) & mb.mask).sum()
        stats["gap"] = (d_s.abs() * mb.mask).sum()
        stats["kl_sampler"] = ((torch.exp(d_s) - d_s - 1) * mb.mask).sum()
        stats["tokens"] = mb.mask.sum()
    return loss, stats


# ==========================================================================================
# Step
# ==========================================================================================


def _all_sum(accelerator, values: list[float]) -> list[float]:
    """Sum `values` over processes (identity on one process)."""
    t = torch.tensor(values, dtype=torch.float64, device=accelerator.device)
    if accelerator.num_processes > 1:
        t = accelerator.reduce(t, reduction="sum")
    return t.tolist()


def train_step(
    model, optimizer, rows: Sequence[TreeRow], config: GRPOConfig, accelerator, ref_model=None
) -> dict:
    """`ppo_epochs` optimizer updates on this process's `rows` (advantages already assigned).

    Denominators are all-reduced first; micro-batch losses are summed (no per-micro-batch
    averaging), and the loss is scaled by the world size because DDP averages gradients. A
    process with no rows still runs one zero-loss backward so DDP's all-reduce lines up.
    Returns metrics: loss (global), clip_frac, logprob_gap, kl_sampler, kl_ref, entropy,
    grad_norm, train_tokens.
    """
    tokens, episodes = local_counts(rows)
    den = Denominators(*_all_sum(accelerator, [tokens, episodes]))
    weights = token_weights(rows, config, den)
    keep = [
        i for i, r in enumerate(rows)
        if r.trainable_tokens and not (config.drop_zero_advantage and config.kl_beta == 0 and r.advantage == 0)
    ]  # fmt: skip
    rows = [rows[i] for i in keep]
    weights = [weights[i] for i in keep]
    n = config.micro_batch_size
    chunks = [list(range(i, min(i + n, len(rows)))) for i in range(0, len(rows), n)]
    world = accelerator.num_processes
    model.train()
    totals: dict[str, float] = {}
    grad_norm = 0.0
    keys = ("loss", "clipped", "gap", "kl_sampler", "kl_ref", "entropy", "tokens")
    for epoch in range(config.ppo_epochs):
        # metric sums stay on the device: one host sync per step, not one per micro-batch
        sums = torch.zeros(len(keys), dtype=torch.float64, device=accelerator.device)
        for c, chunk in enumerate(chunks or [None]):
            last = c == max(len(chunks), 1) - 1
            with contextlib.nullcontext() if last else accelerator.no_sync(model):
                if chunk is None:  # nothing to train here: a zero loss that still syncs gradients
                    out = model(input_ids=torch.ones((1, 1), dtype=torch.long, device=accelerator.device))
                    accelerator.backward(out.logits.sum() * 0.0)
                    continue
                mb = make_micro_batch(
                    [rows[i] for i in chunk], [weights[i] for i in chunk], accelerator.device
                )
                logp, ent = token_logprobs(model, mb, config.bf16, entropy=epoch == 0)
                ref_logp = None
                if ref_model is not None:
                    with torch.no_grad():
                        ref_logp, _ = token_logprobs(ref_model, mb, config.bf16, entropy=False)
                loss, stats = policy_loss(logp, mb, config.clip_eps, ref_logp, config.kl_beta)
                accelerator.backward(loss * world)
                stats["loss"] = loss.detach()
                if ent is not None:
                    stats["entropy"] = (ent * mb.mask).sum()
                for k, v in stats.items():
                    sums[keys.index(k)] += v.double()
        if config.max_grad_norm > 0:
            grad_norm = float(accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if epoch == 0:
            if accelerator.num_processes > 1:
                sums = accelerator.reduce(sums, reduction="sum")
            totals = dict(zip(keys, sums.tolist()))
    t = max(totals["tokens"], 1.0)
    return {
        "loss": totals["loss"],
        "clip_frac": totals["clipped"] / t,
        "logprob_gap": totals["gap"] / t,
        "kl_sampler": totals["kl_sampler"] / t,
        "kl_ref": totals["kl_ref"] / t,
        "entropy": totals["entropy"] / t,
        "grad_norm": grad_norm,
        "train_tokens": totals["tokens"],
    }


def rollout_metrics(rollout: Rollout, accelerator) -> dict:
    """Per-step episode statistics over all processes: reward, accuracy, tokens, threads, parallelism."""
    recs = rollout.records
    sums = _all_sum(
        accelerator,
        [
            len(recs),
            sum(rollout.rewards),
            sum(bool(r["correct"]) for r in recs),
            sum(r["metrics"]["total_tokens"] for r in recs),
            sum(r["metrics"]["critical_path_tokens"] for r in recs),
            sum(r["metrics"]["num_threads"] for r in recs),
            sum(r["metrics"]["num_spawns"] for r in recs),
        ],
    )
    n, reward, correct, total, critical, threads, spawns = sums
    n = max(n, 1.0)
    return {
        "reward": reward / n,
        "accuracy": correct / n,
        "total_tokens": total / n,
        "critical_path": critical / n,
        "threads": threads / n,
        "children_per_spawn": (threads - n) / spawns if spawns else 0.0,
        "parallel_ratio": 1.0 - critical / total if total else 0.0,
    }


# ==========================================================================================
# The loop
# ==========================================================================================


def load_training_problems(config: GRPOConfig) -> list[Problem]:
    """Problems from `config.problems`, or `num_problems` generated with `seed`."""
    from apr_env import generate_problems, load_problems

    if config.problems:
        problems = load_problems(config.problems)
        if not problems:
            raise ValueError(f"--problems {config.problems}: the file holds no problems")
        return problems
    return generate_problems(config.num_problems, seed=config.seed)


@dataclass
class GRPORun:
    """Everything a step needs, built once by `setup_grpo` (a plain record, no behaviour)."""

    config: GRPOConfig
    accelerator: object
    model: torch.nn.Module
    """The unwrapped model: the in-process backend samples from it, checkpoints save it."""
    ddp_model: torch.nn.Module
    """The same parameters behind DDP (identical to `model` on one process): training forwards go here."""
    tokenizer: object
    optimizer: torch.optim.Optimizer
    backend: object
    agent: object
    problems: list[Problem]
    ref_model: torch.nn.Module | None = None
    reward_fn: RewardFn | None = None
    start_step: int = 0


def setup_grpo(config: GRPOConfig, model=None, tokenizer=None, *, problems=None, reward_fn=None) -> GRPORun:
    """Load the model, optimizer (restored with `config.resume`), reference, rollout backend and agent."""
    from accelerate import Accelerator

    from trainers.grpo_log import load_checkpoint

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    model, tokenizer = load_policy(model if model is not None else config.model, tokenizer)
    model.to(accelerator.device)
    problems = list(problems) if problems is not None else load_training_problems(config)
    optimizer = make_optimizer(model, config)
    start = load_checkpoint(Path(config.out) / "checkpoint", model, optimizer) if config.resume else 0
    ref_model = make_reference(model, config)
    backend = make_rollout_backend(config, model, tokenizer)
    ddp_model = accelerator.prepare_model(model)
    agent = make_agent(config, backend, tokenizer)
    return GRPORun(config, accelerator, model, ddp_model, tokenizer, optimizer, backend, agent, problems,
                   ref_model, reward_fn, start)  # fmt: skip


def grpo_step(run: GRPORun, step: int) -> dict:
    """One step: rollout, reward, advantage, update, weight sync. Returns the step's metrics."""
    config, acc = run.config, run.accelerator
    t0 = time.perf_counter()
    run.model.eval()
    problems = step_problems(run.problems, config, step)
    rollout = collect_rollouts(run.agent, problems, config, step, run.tokenizer,
                               rank=acc.process_index, world=acc.num_processes)  # fmt: skip
    rollout.rewards = episode_rewards(rollout.records, config, step, run.reward_fn)
    rollout.rows = build_rows(rollout)
    episodes = {e: (g, r) for e, g, r in zip(rollout.episode_ids, rollout.group_ids, rollout.rewards)}
    assign_advantages(rollout.rows, episodes, config)
    t1 = time.perf_counter()
    train = train_step(run.ddp_model, run.optimizer, rollout.rows, config, acc, run.ref_model)
    sync_weights(config, run.backend, run.model, run.tokenizer, step + 1, acc)
    t2 = time.perf_counter()
    return {"step": step + 1, **rollout_metrics(rollout, acc), **train, "rows": len(rollout.rows),
            "rollout_s": t1 - t0, "train_s": t2 - t1}  # fmt: skip


def train_grpo(
    config: GRPOConfig,
    model=None,
    tokenizer=None,
    *,
    problems: Sequence[Problem] | None = None,
    reward_fn: RewardFn | None = None,
) -> dict:
    """Run `config.steps` GRPO steps; returns the last step's metrics.

    Args:
        config: `GRPOConfig`.
        model: a loaded causal LM to train in place; None loads `config.model`.
        tokenizer: its tokenizer; None: the model folder's (or the Countdown tokenizer).
        problems: training problems; None: `load_training_problems(config)`.
        reward_fn: replaces the environment reward (toy tasks, experiments).

    Writes `out`/metrics.csv (and TensorBoard events), `out`/checkpoint/state.pt every
    `save_every` steps and at the end, and `out`/model (``save_pretrained``) at the end.
    With `config.resume` it continues from the checkpoint: same seed, same final weights
    as an uninterrupted run (with batch-invariant rollouts, see `rollout_batch_size`).
    """
    from trainers.grpo_log import RunLog, save_checkpoint

    run = setup_grpo(config, model, tokenizer, problems=problems, reward_fn=reward_fn)
    out = Path(config.out)
    main = run.accelerator.is_main_process
    log = RunLog(out, config, resume_from=run.start_step, enabled=main)
    metrics: dict = {}
    try:
        with log.progress(config.steps, run.start_step) as advance:
            for step in range(run.start_step, config.steps):
                metrics = grpo_step(run, step)
                log.write(metrics)
                advance(metrics)
                finished = step + 1
                if main and (
                    finished == config.steps or (config.save_every and finished % config.save_every == 0)
                ):
                    save_checkpoint(out / "checkpoint", run.model, run.optimizer, finished, config)
        if main:
            save_model(run.model, run.tokenizer, out / "model")
    finally:
        run.backend.close()
        log.close()
    run.accelerator.wait_for_everyone()
    return metrics
