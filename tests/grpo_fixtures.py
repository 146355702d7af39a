"""Shared pieces of the GRPO tests: a tiny Llama and hand-made tree rows (also used by the DDP worker)."""

from __future__ import annotations

import random

import torch
from tiny_models import make_tiny_llama, make_tiny_tokenizer

from trainers.rollout_schema import TreeRow

TOK = make_tiny_tokenizer()


def tiny_model(seed: int = 0):
    return make_tiny_llama(TOK.vocab_size, seed=seed, hidden=32, layers=2, heads=2, kv_heads=1, init_std=0.02)


@torch.no_grad()
def hand_rows(model, n_episodes: int = 3, seed: int = 0) -> list[TreeRow]:
    """Rows of a few fake tree episodes (1-3 threads each), sampler logprobs near the model's own."""
    rng = random.Random(seed)
    rows = []
    for e in range(n_episodes):
        for node in range(1 + e % 3):
            prompt = [1] + [rng.randrange(3, TOK.vocab_size) for _ in range(rng.randint(2, 6))]
            comp = [rng.randrange(3, TOK.vocab_size) for _ in range(rng.randint(2, 7))]
            logits = model(torch.tensor([prompt + comp])).logits[0, len(prompt) - 1 : -1].float()
            logp = torch.log_softmax(logits, -1).gather(-1, torch.tensor(comp)[:, None])[:, 0]
            noisy = logp + torch.empty_like(logp).uniform_(
                -0.4, 0.4, generator=torch.Generator().manual_seed(e)
            )
            mask = [1] * len(comp)
            mask[rng.randrange(len(comp))] = 0 if node else 1  # some runtime-inserted tokens
            rows.append(
                TreeRow(e, e // 2, node, None if node == 0 else 0, int(node > 0), 0, prompt, comp,
                        noisy.tolist(), mask, advantage=rng.choice([-1.0, 0.5, 1.5]))
            )  # fmt: skip
    return rows
