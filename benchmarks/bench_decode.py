"""pytest-benchmark suite of the transformers backend: batched decode, prefill, and KV fork copy.

Timed run (from the repository root):

    .venv/bin/pytest benchmarks/bench_decode.py --benchmark-enable --benchmark-only

``make test`` runs each benchmark once, un-timed (``--benchmark-disable``), as a smoke test;
the side-by-side ratios against ``model.generate`` live in ``benchmarks/decode_side_by_side.py``.
The model is the ~5M-parameter random Llama of that script (hidden 256, 6 layers), fp32, and
torch uses 2 threads (this machine's cores), set by the module fixture.
"""

from __future__ import annotations

import pytest
import torch

from runtime.backends.base import GenerationRequest, SamplingParams
from runtime.backends.kv_slots import SlotKVCache, cache_kwargs
from runtime.backends.transformers_backend import TransformersBackend, TransformersBackendConfig
from tests.tiny_models import make_tiny_llama, make_tiny_tokenizer

NEW_TOKENS = 32
PREFIX = 256


@pytest.fixture(scope="module")
def tokenizer():
    return make_tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tokenizer):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield make_tiny_llama(tokenizer.vocab_size, hidden=256, layers=6, heads=4, kv_heads=2, max_pos=1024)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def backend(model, tokenizer):
    with TransformersBackend(model, tokenizer, TransformersBackendConfig(max_batch_size=8)) as backend:
        yield backend


def _requests(n: int, vocab: int, **extra) -> list[GenerationRequest]:
    g = torch.Generator().manual_seed(n)
    prompts = [torch.randint(4, vocab, (32,), generator=g).tolist() for _ in range(n)]
    return [GenerationRequest(p, SamplingParams(max_new_tokens=NEW_TOKENS), **extra) for p in prompts]


@pytest.mark.parametrize("batch", [1, 8], ids=["batch1", "batch8"])
def test_greedy_decode_of_a_batch(benchmark, backend, tokenizer, batch):
    requests = _requests(batch, tokenizer.vocab_size)
    results = benchmark(backend.generate, requests)
    assert [len(r.output_ids) for r in results] == [NEW_TOKENS] * batch


def _prefilled_cache(model, tokenizer) -> tuple[SlotKVCache, list[int], dict]:
    prefix = torch.randint(
        4, tokenizer.vocab_size, (PREFIX,), generator=torch.Generator().manual_seed(1)
    ).tolist()
    inputs = {
        "input_ids": torch.tensor([prefix]),
        "position_ids": torch.arange(PREFIX)[None],
        "attention_mask": (torch.arange(PREFIX)[None, :] <= torch.arange(PREFIX)[:, None])[None, None],
        "logits_to_keep": 1,
    }
    return SlotKVCache(num_slots=2, max_len=PREFIX + 8), prefix, inputs


def test_prefill_of_a_256_token_prefix(benchmark, model, tokenizer):
    cache, _, inputs = _prefilled_cache(model, tokenizer)

    def prefill():
        cache.plan_prefill(0, [0], [PREFIX])
        with torch.inference_mode():
            return model(**cache_kwargs(model, cache), **inputs).logits

    logits = benchmark(prefill)
    assert torch.isfinite(logits).all()


def test_kv_fork_copy_of_a_256_token_prefix(benchmark, model, tokenizer):
    cache, prefix, inputs = _prefilled_cache(model, tokenizer)
    cache.plan_prefill(0, [0], [PREFIX])
    with torch.inference_mode():
        model(**cache_kwargs(model, cache), **inputs)
        retained = cache.export(0, PREFIX, prefix)

    def fork():
        with torch.inference_mode():
            cache.load(1, retained, PREFIX)

    benchmark(fork)
    assert all(torch.equal(k[1, :, :PREFIX], k[0, :, :PREFIX]) for k in cache.keys)
