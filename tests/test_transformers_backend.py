"""Specification of the in-process transformers backend (runtime/backends/transformers_backend.py).

Covers: greedy equality with a full-recompute reference (batch 1, batch 8, mixed prompt
lengths, requests joining a running batch, eager attention, a model loaded from a folder);
stop token, stop string, max_new_tokens and context-length endings; KV reuse through
`cache_key` and `fork_from` (same tokens as a fresh request, `cached_tokens` reported),
`release` and the LRU bound; seeded sampling independent of batch composition; logprobs
against a reference; bad requests, errors in the model, `close` with pending requests and
64 concurrent requests. All on a tiny random Llama in fp32 on CPU.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from tiny_models import (
    make_tiny_llama,
    make_tiny_tokenizer,
    reference_greedy,
    reference_logprobs,
    save_tiny_model,
)

from runtime.backends.base import BackendError, GenerationRequest, SamplingParams
from runtime.backends.kv_slots import SlotKVCache, cache_kwargs
from runtime.backends.sampling import filter_logits
from runtime.backends.transformers_backend import TransformersBackend, TransformersBackendConfig


@pytest.fixture(scope="module")
def tokenizer():
    return make_tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tokenizer):
    return make_tiny_llama(tokenizer.vocab_size, seed=0)


def backend_for(model, tokenizer, **config) -> TransformersBackend:
    return TransformersBackend(model, tokenizer, TransformersBackendConfig(**config))


def random_prompts(lengths, vocab_size: int, seed: int = 0) -> list[list[int]]:
    """Prompts of the given lengths over the non-special ids (4..vocab_size-1)."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(4, vocab_size, (n,), generator=g).tolist() for n in lengths]


def greedy(prompt: list[int], n: int, **sampling) -> GenerationRequest:
    return GenerationRequest(prompt, SamplingParams(max_new_tokens=n, **sampling))


# ---- greedy equality with the reference -----------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 8], ids=["batch1", "batch8"])
def test_greedy_outputs_equal_full_recompute_reference(model, tokenizer, batch_size):
    prompts = random_prompts([3, 17, 5, 40, 9, 1, 25, 12, 8, 30], tokenizer.vocab_size)
    with backend_for(model, tokenizer, max_batch_size=batch_size) as backend:
        results = backend.generate([greedy(p, 24) for p in prompts])
    for prompt, result in zip(prompts, results):
        assert result.output_ids == reference_greedy(model, prompt, 24)
        assert result.finish_reason == "length"
        assert result.prompt_tokens == len(prompt)


def test_prefill_budget_splits_admission_without_changing_outputs(model, tokenizer):
    prompts = random_prompts([30, 2, 31, 7, 29], tokenizer.vocab_size, seed=1)
    with backend_for(model, tokenizer, max_batch_size=8, max_prefill_tokens=32) as backend:
        results = backend.generate([greedy(p, 10) for p in prompts])
    assert [r.output_ids for r in results] == [reference_greedy(model, p, 10) for p in prompts]


def test_requests_joining_a_running_batch_match_the_reference(model, tokenizer):
    long_prompt, short_prompt, *late_prompts = random_prompts([20, 4, 6, 33, 2], tokenizer.vocab_size, seed=2)
    late_futures = []
    with backend_for(model, tokenizer, max_batch_size=8) as backend:
        long_future = backend.submit(greedy(long_prompt, 120))
        short_future = backend.submit(greedy(short_prompt, 3))

        def submit_late(_):  # runs on the worker as the short request finishes: the long one is mid-decode
            late_futures.extend(backend.submit(greedy(p, 15)) for p in late_prompts)

        short_future.add_done_callback(submit_late)
        long_result = long_future.result(timeout=60)
        late_results = [f.result(timeout=60) for f in late_futures]
    assert len(late_results) == len(late_prompts)
    assert all(r.timings["total"] < long_result.timings["total"] for r in late_results)  # they overlapped it
    assert long_result.output_ids == reference_greedy(model, long_prompt, 120)
    assert short_future.result().output_ids == reference_greedy(model, short_prompt, 3)
    for prompt, result in zip(late_prompts, late_results):
        assert result.output_ids == reference_greedy(model, prompt, 15)


def test_eager_attention_gives_the_same_greedy_outputs(tokenizer):
    model = make_tiny_llama(tokenizer.vocab_size, seed=3)
    model.set_attn_implementation("eager")
    prompts = random_prompts([5, 19, 11], tokenizer.vocab_size, seed=3)
    with backend_for(model, tokenizer, max_batch_size=4) as backend:
        results = backend.generate([greedy(p, 12) for p in prompts])
    assert [r.output_ids for r in results] == [reference_greedy(model, p, 12) for p in prompts]


def test_backend_loads_model_and_tokenizer_from_a_folder(model, tokenizer, tmp_path):
    folder = save_tiny_model(tmp_path / "tiny", model, tokenizer)
    prompt = random_prompts([9], tokenizer.vocab_size, seed=4)[0]
    with TransformersBackend(folder, config=TransformersBackendConfig(device="cpu")) as backend:
        result = backend.generate([greedy(prompt, 10)])[0]
    assert result.output_ids == reference_greedy(model, prompt, 10)
    assert result.text == tokenizer.decode(result.output_ids)


def test_text_is_the_decoded_output_with_special_tokens_kept(model, tokenizer):
    prompt = random_prompts([6], tokenizer.vocab_size, seed=5)[0]
    with backend_for(model, tokenizer) as backend:
        result = backend.generate([greedy(prompt, 30)])[0]
    assert result.text == tokenizer.decode(result.output_ids, skip_special_tokens=False)
    assert set(result.timings) == {"queue", "prefill", "decode", "total"}
    assert all(v >= 0 for v in result.timings.values())


# ---- how generation ends --------------------------------------------------------------------------------


def test_stop_token_ends_generation_and_is_kept(model, tokenizer):
    prompt = random_prompts([7], tokenizer.vocab_size, seed=6)[0]
    reference = reference_greedy(model, prompt, 30)
    stop_id = reference[10]
    expected = reference[: reference.index(stop_id) + 1]
    with backend_for(model, tokenizer) as backend:
        result = backend.generate([greedy(prompt, 30, stop_token_ids=(stop_id,))])[0]
    assert result.output_ids == expected
    assert (result.finish_reason, result.matched_stop) == ("stop", stop_id)


def test_stop_string_ends_generation_once_the_text_ends_with_it(model, tokenizer):
    prompt = random_prompts([8], tokenizer.vocab_size, seed=7)[0]
    reference = reference_greedy(model, prompt, 30)
    stop = tokenizer.decode(reference[:12])[-3:]
    n = next(i for i in range(1, 31) if tokenizer.decode(reference[:i]).endswith(stop))
    with backend_for(model, tokenizer) as backend:
        result = backend.generate([greedy(prompt, 30, stop=("never seen", stop))])[0]
    assert result.output_ids == reference[:n]
    assert (result.finish_reason, result.matched_stop) == ("stop", stop)
    assert result.text.endswith(stop)


def test_max_new_tokens_ends_with_length(model, tokenizer):
    prompt = random_prompts([5], tokenizer.vocab_size, seed=8)[0]
    with backend_for(model, tokenizer) as backend:
        capped, empty = backend.generate([greedy(prompt, 7), greedy(prompt, 0)])
    assert (len(capped.output_ids), capped.finish_reason) == (7, "length")
    assert (empty.output_ids, empty.finish_reason, empty.text) == ([], "length", "")


@pytest.mark.parametrize(
    ("prompt_len", "expected_tokens"), [(60, 4), (64, 0), (70, 0)], ids=["room-for-4", "full", "over"]
)
def test_context_length_bounds_prompt_plus_output(model, tokenizer, prompt_len, expected_tokens):
    prompt = random_prompts([prompt_len], tokenizer.vocab_size, seed=9)[0]
    with backend_for(model, tokenizer, context_length=64) as backend:
        result = backend.generate([greedy(prompt, 20)])[0]
    assert (len(result.output_ids), result.finish_reason) == (expected_tokens, "length")
    assert result.output_ids == reference_greedy(model, prompt, expected_tokens)


# ---- KV reuse -------------------------------------------------------------------------------------------


def test_cache_key_continuation_equals_fresh_request_and_reports_cached_tokens(model, tokenizer):
    prompt, extra = random_prompts([15, 4], tokenizer.vocab_size, seed=10)
    with backend_for(model, tokenizer) as backend:
        first = backend.generate(
            [GenerationRequest(prompt, SamplingParams(max_new_tokens=10), cache_key="t0")]
        )[0]
        full = prompt + first.output_ids + extra
        second = backend.generate(
            [GenerationRequest(full, SamplingParams(max_new_tokens=12), cache_key="t0")]
        )[0]
    assert second.output_ids == reference_greedy(model, full, 12)
    # Every token but the last generated one had its KV computed during the first request.
    assert second.cached_tokens == len(prompt) + len(first.output_ids) - 1
    assert first.cached_tokens == 0


def test_repeating_a_retained_prompt_reuses_all_but_its_last_token(model, tokenizer):
    prompt = random_prompts([13], tokenizer.vocab_size, seed=22)[0]
    with backend_for(model, tokenizer) as backend:
        first = backend.generate(
            [GenerationRequest(prompt, SamplingParams(max_new_tokens=6), cache_key="r")]
        )[0]
        again = backend.generate(
            [GenerationRequest(prompt, SamplingParams(max_new_tokens=6), cache_key="r")]
        )[0]
    assert again.output_ids == first.output_ids == reference_greedy(model, prompt, 6)
    assert again.cached_tokens == len(prompt) - 1  # its logits are needed for the first new token


def test_fork_from_copies_the_parent_prefix_into_each_child(model, tokenizer):
    prompt, *tails = random_prompts([12, 3, 5, 1], tokenizer.vocab_size, seed=11)
    with backend_for(model, tokenizer) as backend:
        parent = backend.generate(
            [GenerationRequest(prompt, SamplingParams(max_new_tokens=8), cache_key="p")]
        )[0]
        shared = prompt + parent.output_ids
        children = backend.generate(
            [
                GenerationRequest(
                    shared + tail, SamplingParams(max_new_tokens=10), cache_key=f"p/{i}", fork_from="p"
                )
                for i, tail in enumerate(tails)
            ]
        )
    for tail, child in zip(tails, children):
        assert child.output_ids == reference_greedy(model, shared + tail, 10)
        assert child.cached_tokens == len(shared) - 1


def test_fork_of_a_diverging_prompt_reuses_only_the_common_prefix(model, tokenizer):
    prompt, other = random_prompts([20, 5], tokenizer.vocab_size, seed=12)
    child_prompt = prompt[:9] + other
    with backend_for(model, tokenizer) as backend:
        backend.generate([GenerationRequest(prompt, SamplingParams(max_new_tokens=2), cache_key="p")])
        child = backend.generate(
            [GenerationRequest(child_prompt, SamplingParams(max_new_tokens=8), fork_from="p")]
        )[0]
    assert child.output_ids == reference_greedy(model, child_prompt, 8)
    assert child.cached_tokens == 9 + (other[0] == prompt[9])


def test_release_drops_the_retained_sequence(model, tokenizer):
    prompt = random_prompts([10], tokenizer.vocab_size, seed=13)[0]
    with backend_for(model, tokenizer) as backend:
        first = backend.generate(
            [GenerationRequest(prompt, SamplingParams(max_new_tokens=4), cache_key="x")]
        )[0]
        backend.release("x")
        again = backend.generate(
            [GenerationRequest(prompt + first.output_ids, SamplingParams(max_new_tokens=4), cache_key="x")]
        )[0]
    assert again.cached_tokens == 0
    assert again.output_ids == reference_greedy(model, prompt + first.output_ids, 4)


def test_retained_sequences_are_bounded_least_recently_used_first(model, tokenizer):
    a, b = random_prompts([10, 11], tokenizer.vocab_size, seed=14)
    with backend_for(model, tokenizer, max_retained_sequences=1) as backend:
        backend.generate([GenerationRequest(a, SamplingParams(max_new_tokens=2), cache_key="a")])
        backend.generate([GenerationRequest(b, SamplingParams(max_new_tokens=2), cache_key="b")])
        evicted, kept = backend.generate(
            [
                GenerationRequest([*a, 5], SamplingParams(max_new_tokens=2), fork_from="a"),
                GenerationRequest([*b, 5], SamplingParams(max_new_tokens=2), fork_from="b"),
            ]
        )
    assert evicted.cached_tokens == 0
    assert kept.cached_tokens > 0


def test_retained_memory_bound_drops_sequences_too_big_to_keep(model, tokenizer):
    prompt = random_prompts([40], tokenizer.vocab_size, seed=23)[0]
    # 2 layers x (K + V) x 2 kv heads x 16 dims x 4 bytes = 512 bytes per token: 40 tokens do not fit 0.01 MiB.
    with backend_for(model, tokenizer, max_retained_mib=0.01) as backend:
        backend.generate([GenerationRequest(prompt, SamplingParams(max_new_tokens=2), cache_key="big")])
        again = backend.generate(
            [GenerationRequest(prompt, SamplingParams(max_new_tokens=2), cache_key="big")]
        )[0]
    assert again.cached_tokens == 0


def test_flush_cache_drops_every_retained_sequence(model, tokenizer):
    a, b = random_prompts([10, 12], tokenizer.vocab_size, seed=24)
    with backend_for(model, tokenizer) as backend:
        for key, prompt in (("a", a), ("b", b)):
            backend.generate([GenerationRequest(prompt, SamplingParams(max_new_tokens=2), cache_key=key)])
        backend.flush_cache()
        results = backend.generate(
            [
                GenerationRequest(p, SamplingParams(max_new_tokens=2), fork_from=k)
                for k, p in (("a", a), ("b", b))
            ]
        )
    assert [r.cached_tokens for r in results] == [0, 0]


def test_kv_buffers_grow_past_their_initial_length_without_changing_outputs(model, tokenizer):
    prompts = random_prompts([5, 21, 3], tokenizer.vocab_size, seed=25)
    with backend_for(model, tokenizer, initial_kv_len=8) as backend:
        results = backend.generate([greedy(p, 40) for p in prompts])  # 8 -> 32 at prefill, then 64
    assert [r.output_ids for r in results] == [reference_greedy(model, p, 40) for p in prompts]


# ---- sampling and logprobs ------------------------------------------------------------------------------


def sampled(prompt, seed, n=20) -> GenerationRequest:
    return GenerationRequest(
        prompt, SamplingParams(max_new_tokens=n, temperature=0.9, top_p=0.9, top_k=40, seed=seed)
    )


def test_seeded_sampling_is_the_same_alone_and_in_a_mixed_batch(model, tokenizer):
    prompt, *others = random_prompts([9, 3, 22, 14, 6], tokenizer.vocab_size, seed=15)
    with backend_for(model, tokenizer, max_batch_size=1) as backend:
        alone = backend.generate([sampled(prompt, seed=7)])[0]
    with backend_for(model, tokenizer, max_batch_size=8) as backend:
        mixed = backend.generate(
            [sampled(others[0], 1), greedy(others[1], 25), sampled(prompt, 7), sampled(others[2], 2, n=5)]
        )[2]
        other_seed = backend.generate([sampled(prompt, seed=8)])[0]
    assert mixed.output_ids == alone.output_ids
    assert other_seed.output_ids != alone.output_ids


def test_top_k_one_sampling_is_greedy(model, tokenizer):
    prompt = random_prompts([10], tokenizer.vocab_size, seed=16)[0]
    request = GenerationRequest(prompt, SamplingParams(max_new_tokens=15, temperature=1.5, top_k=1, seed=0))
    with backend_for(model, tokenizer) as backend:
        result = backend.generate([request])[0]
    assert result.output_ids == reference_greedy(model, prompt, 15)


def test_top_p_keeps_the_smallest_set_reaching_the_mass():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    kept = filter_logits(logits, SamplingParams(temperature=1.0, top_p=0.8)).isfinite().tolist()
    assert kept == [True, True, False, False]
    kept = filter_logits(logits, SamplingParams(temperature=1.0, top_p=0.81)).isfinite().tolist()
    assert kept == [True, True, True, False]


@pytest.mark.parametrize("request_kind", ["greedy", "sampled"])
def test_logprobs_equal_the_raw_model_distribution(model, tokenizer, request_kind):
    prompt, other = random_prompts([11, 4], tokenizer.vocab_size, seed=17)
    request = greedy(prompt, 12) if request_kind == "greedy" else sampled(prompt, seed=3, n=12)
    request.return_logprob = True
    with backend_for(model, tokenizer) as backend:
        result, without = backend.generate([request, greedy(other, 5)])
    expected = reference_logprobs(model, prompt, result.output_ids)
    assert len(result.logprobs) == len(result.output_ids)
    assert all(math.isfinite(x) for x in result.logprobs)
    assert result.logprobs == pytest.approx(expected, abs=1e-4)
    assert without.logprobs is None


# ---- failures, shutdown, concurrency --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("input_ids", "sampling", "message"),
    [([], SamplingParams(), "input_ids is empty"), ([5, 10_000], SamplingParams(), "the model accepts")],
    ids=["empty", "out-of-vocab"],
)
def test_bad_requests_fail_their_future_with_a_backend_error(model, tokenizer, input_ids, sampling, message):
    with backend_for(model, tokenizer) as backend:
        future = backend.submit(GenerationRequest(input_ids, sampling))
        with pytest.raises(BackendError, match=message):
            future.result(timeout=10)


def test_stop_strings_without_a_tokenizer_are_rejected(model):
    with TransformersBackend(model) as backend:
        future = backend.submit(greedy([5, 6], 3, stop=("x",)))
        with pytest.raises(BackendError, match="need a tokenizer"):
            future.result(timeout=10)
        assert backend.generate([greedy([5, 6], 3)])[0].text == ""


def test_an_error_in_the_model_fails_the_batch_and_the_backend_keeps_serving(tokenizer, monkeypatch):
    model = make_tiny_llama(tokenizer.vocab_size, seed=18)
    prompt = random_prompts([6], tokenizer.vocab_size, seed=18)[0]
    with backend_for(model, tokenizer) as backend:
        with monkeypatch.context() as patch:
            patch.setattr(model, "forward", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
            future = backend.submit(greedy(prompt, 5))
            with pytest.raises(BackendError, match="boom"):
                future.result(timeout=10)
        assert backend.generate([greedy(prompt, 5)])[0].output_ids == reference_greedy(model, prompt, 5)


def test_close_fails_pending_requests_and_later_submissions(model, tokenizer):
    prompts = random_prompts([5] * 6, tokenizer.vocab_size, seed=19)
    backend = backend_for(model, tokenizer, max_batch_size=1)
    futures = [backend.submit(greedy(p, 400)) for p in prompts]
    backend.close()
    assert all(f.done() for f in futures)
    failed = [f for f in futures if f.exception() is not None]
    assert len(failed) >= len(prompts) - 1
    assert all(isinstance(f.exception(), BackendError) for f in failed)
    with pytest.raises(BackendError, match="closed"):
        backend.submit(greedy(prompts[0], 2)).result(timeout=1)
    backend.close()  # idempotent


def test_64_concurrent_requests_from_8_callers_all_complete_correctly(model, tokenizer):
    prompts = random_prompts([1 + (7 * i) % 37 for i in range(64)], tokenizer.vocab_size, seed=20)
    with backend_for(model, tokenizer, max_batch_size=16) as backend:

        def caller(chunk):
            return [f.result(timeout=120) for f in [backend.submit(greedy(p, 6)) for p in chunk]]

        with ThreadPoolExecutor(8) as pool:
            results = [r for chunk in pool.map(caller, [prompts[i::8] for i in range(8)]) for r in chunk]
    ordered = [p for i in range(8) for p in prompts[i::8]]
    assert len(results) == 64
    assert [r.output_ids for r in results] == [reference_greedy(model, p, 6) for p in ordered]


def test_a_cancelled_waiting_request_is_skipped(model, tokenizer):
    prompts = random_prompts([4, 4, 4], tokenizer.vocab_size, seed=21)
    with backend_for(model, tokenizer, max_batch_size=1) as backend:
        futures = [backend.submit(greedy(p, n)) for p, n in zip(prompts, (200, 5, 5))]
        assert futures[1].cancel()  # still waiting: the only slot decodes the first request
        results = [futures[0].result(timeout=60), futures[2].result(timeout=60)]
    assert [r.output_ids for r in results] == [
        reference_greedy(model, prompts[0], 200),
        reference_greedy(model, prompts[2], 5),
    ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("dtype", "fp8", "dtype must be one of"),
        ("max_batch_size", 0, "max_batch_size must be >= 1"),
        ("context_length", 1, "context_length must be >= 2"),
        ("max_retained_mib", -1.0, "must be >= 0"),
        ("attn_implementation", "flash_attention_2", "attn_implementation must be 'sdpa', 'eager'"),
    ],
    ids=lambda x: str(x)[:20],
)
def test_config_rejects_out_of_range_values_with_the_value_in_the_message(field, value, message):
    with pytest.raises(ValueError, match=message):
        TransformersBackendConfig(**{field: value})


# ---- the cache keyword ----------------------------------------------------------------------------------


def test_cache_goes_to_the_forward_under_the_name_it_declares(model):
    cache = SlotKVCache(num_slots=1, max_len=8)

    class OldForward:  # transformers before the rename: only past_key_values
        def forward(self, input_ids=None, past_key_values=None, use_cache=None, **kwargs): ...

    assert cache_kwargs(model, cache) == {"cache": cache}
    assert cache_kwargs(OldForward(), cache) == {"past_key_values": cache}
