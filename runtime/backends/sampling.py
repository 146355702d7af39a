"""Next-token choice for the in-process backend: greedy, temperature, top-k, top-p, and logprobs.

`choose_tokens` picks one token per row of a logits batch. Greedy rows (temperature 0) take
the argmax; sampled rows are drawn one row at a time with that request's own
`torch.Generator`, so a request with a seed gets the same tokens whatever else shares its
batch (as long as its logits are the same, which holds up to float rounding between batch
shapes).

Logprobs are always those of the *raw* model distribution: ``log_softmax(logits)`` in fp32 at
temperature 1, before top-k/top-p filtering, for the chosen token. That is the policy's
probability a trainer needs (GRPO ratios, KL), independent of the sampling settings used to
explore; it is also what the reference computation in the tests does.

What this module leaves to the backend: stop conditions, batching, and which generator
belongs to which request.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from runtime.backends.base import SamplingParams


@dataclass
class RowSampler:
    """How one running sequence picks tokens: its sampling settings and its generator (None when greedy)."""

    params: SamplingParams
    generator: torch.Generator | None

    @property
    def greedy(self) -> bool:
        return self.params.temperature == 0


def make_row_sampler(params: SamplingParams, device: torch.device) -> RowSampler:
    """A `RowSampler` whose generator is seeded from ``params.seed`` (fresh entropy when None)."""
    if params.temperature == 0:
        return RowSampler(params, None)
    generator = torch.Generator(device=device)
    if params.seed is None:
        generator.seed()
    else:
        generator.manual_seed(params.seed)
    return RowSampler(params, generator)


def filter_logits(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """Scaled and filtered logits [vocab] of one row: divide by temperature, keep top-k, then top-p.

    Top-p keeps the smallest set of most likely tokens whose probability reaches `top_p`
    (always at least the most likely one); removed tokens get ``-inf``.
    """
    logits = logits / params.temperature
    vocab = logits.shape[-1]
    if 0 < params.top_k < vocab:
        kth = torch.topk(logits, params.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if params.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # Mass strictly before each token: a token is kept while that mass is below top_p.
        before = torch.cumsum(probs, dim=-1) - probs
        remove_sorted = before >= params.top_p
        remove = torch.zeros_like(remove_sorted).scatter(0, order, remove_sorted)
        logits = logits.masked_fill(remove, float("-inf"))
    return logits


def choose_tokens(logits: torch.Tensor, samplers: list[RowSampler]) -> torch.Tensor:
    """One token id per row of `logits` [rows, vocab] (any float dtype); returns LongTensor [rows]."""
    logits = logits.float()
    tokens = torch.argmax(logits, dim=-1)
    for row, sampler in enumerate(samplers):
        if not sampler.greedy:
            probs = torch.softmax(filter_logits(logits[row], sampler.params), dim=-1)
            tokens[row] = torch.multinomial(probs, 1, generator=sampler.generator)[0]
    return tokens


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Log-probability of ``tokens[row]`` under ``log_softmax(logits[row])`` in fp32; returns [rows]."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return logp.gather(-1, tokens.view(-1, 1)).view(-1)
