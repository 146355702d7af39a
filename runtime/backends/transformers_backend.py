"""In-process inference with a transformers causal LM: continuous batching over a static slot KV cache.

`TransformersBackend` implements `runtime.backends.base.Backend`. `submit` queues a request and
returns a `Future` at once; one background worker thread loops:

1. admit waiting requests into free slots and prefill them together (right-padded, one
   forward, at most `max_prefill_tokens` padded tokens), reusing retained KV for a prefix
   where a `cache_key` or `fork_from` names one;
2. run one batched decode step (one token per running sequence) through the model with the
   slot cache (`kv_slots.SlotKVCache`), explicit ``position_ids`` and a 4D attention mask, so
   sequences of different lengths share a batch without padding their KV;
3. finish sequences on a stop token, a stop string, `max_new_tokens` or the context length,
   resolve their futures, retain their KV when they have a `cache_key`, and go to 1.

The forward is the model's own ``model(input_ids, attention_mask=4D, position_ids, cache)``
(no ``generate``; ``past_key_values`` on transformers releases before the rename, see
`kv_slots.cache_kwargs`), so any decoder whose attention calls the cache's ``update`` works
(Llama, Qwen2/3, Mistral, ...) with ``sdpa`` or ``eager`` attention. Flash-attention kernels
do not take the custom mask and are not supported.

KV reuse: a finished sequence with a `cache_key` leaves a copy of its KV in an LRU store
(`kv_slots.RetainedStore`); idle sequences never hold a decode slot. A request naming that
key (continuation) or naming it in `fork_from` (a child forking its parent) gets the KV of
the longest common token prefix copied into its slot and prefills only the rest (at least
its last prompt token, whose logits give the first new token); `cached_tokens` reports how
many were reused. `release(key)` drops a retained sequence; `flush_cache()` drops them all
(call it after changing the model's weights: retained KV was computed with the old ones).

Sampling (`sampling.py`): greedy at temperature 0, else temperature, top-k, top-p with a
per-request generator seeded from ``sampling.seed``. Logprobs are the raw model's (fp32
``log_softmax`` at temperature 1, unfiltered) for each chosen token. CPU threads: the
worker uses torch's process-wide intra-op thread count (`TransformersBackendConfig.num_threads`
sets it); on a small shared CPU, set it to the cores you may use.

The module is ~450 lines, over the usual 300: admission, prefill, decode and finishing all
change the same running-sequence state and slot layout, and read best in one place.

What this module leaves to others: prompt construction and tokenization (callers send token
ids), retries, HTTP serving, and multi-GPU placement.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from runtime.backends.base import Backend, BackendError, GenerationRequest, GenerationResult
from runtime.backends.detokenize import make_decode, matched_stop_string
from runtime.backends.kv_slots import RetainedKV, RetainedStore, SlotKVCache, cache_kwargs, common_prefix
from runtime.backends.sampling import RowSampler, choose_tokens, make_row_sampler, token_logprobs
from runtime.backends.transformers_config import DTYPES, TransformersBackendConfig


@dataclass
class _Sequence:
    """A request in flight: its tokens so far and its accounting."""

    request: GenerationRequest
    future: Future
    t_submit: float
    tokens: list[int] = field(default_factory=list)
    """Prompt then generated ids; the last one has no KV yet while decoding."""
    output: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    top: list[list[tuple[int, float]]] = field(default_factory=list)
    limit: int = 0
    """Most tokens this request may generate (max_new_tokens, capped by the context left)."""
    kv_len: int = 0
    """Leading `tokens` whose keys/values are in the sequence's slot."""
    cached: int = 0
    sampler: RowSampler | None = None
    t_admit: float = 0.0
    prefill_s: float = 0.0
    t_prefilled: float = 0.0


logger = logging.getLogger(__name__)

__all__ = ["TransformersBackend", "TransformersBackendConfig"]


@dataclass
class BackendStats:
    """Counters of the worker loop, for benchmarks (read them between runs; `reset` zeroes them)."""

    decode_steps: int = 0
    decode_tokens: int = 0
    """Tokens produced by decode steps (one per running sequence per step)."""
    decode_s: float = 0.0
    prefill_forwards: int = 0
    prefill_tokens: int = 0
    """Prompt tokens actually run through the model."""
    reused_tokens: int = 0
    """Prompt tokens whose KV was reused (continuations and forks)."""
    prefill_s: float = 0.0

    def add_decode(self, rows: int, seconds: float) -> None:
        self.decode_steps += 1
        self.decode_tokens += rows
        self.decode_s += seconds

    def add_prefill(self, tokens: int, reused: int, seconds: float) -> None:
        self.prefill_forwards += 1
        self.prefill_tokens += tokens
        self.reused_tokens += reused
        self.prefill_s += seconds

    @property
    def mean_batch(self) -> float:
        return self.decode_tokens / self.decode_steps if self.decode_steps else 0.0

    def reset(self) -> None:
        for f in fields(self):
            setattr(self, f.name, f.default)


class TransformersBackend(Backend):
    """Continuous-batching generation with a transformers causal LM in this process.

    Args:
        model_or_path: a loaded ``PreTrainedModel`` (moved/cast in place when the config asks
            for another device or dtype) or a local folder for ``AutoModelForCausalLM.from_pretrained``.
        tokenizer: any object with ``decode(ids)``, used for result text and stop strings;
            None with a path loads ``AutoTokenizer`` from it, None with a model gives empty
            texts and rejects requests with stop strings.
        config: `TransformersBackendConfig`; None for the defaults.

    Results: `output_ids` keep a matched stop token; `text` is ``tokenizer.decode(output_ids)``
    with special tokens kept and no clean-up; `finish_reason` is 'stop' (`matched_stop` is the
    token id or the string) or 'length' (max_new_tokens reached, or prompt + output reached
    `context_length`; a prompt already that long gets no tokens, not an error). Timings in
    seconds: 'queue' (submit to admission), 'prefill' (the prefill forward this request was
    batched into, KV copies included), 'decode' (first token to finish), 'total'.

    Failures: a request that cannot run (empty, ids outside the vocabulary, stop strings
    without a tokenizer) fails its own future; an exception during a forward fails the
    futures of the sequences in flight, and the backend keeps serving the waiting ones;
    `close` fails whatever has not finished. Futures never hang on a dead worker.
    """

    def __init__(
        self, model_or_path: Any, tokenizer: Any = None, config: TransformersBackendConfig | None = None
    ):
        self.config = config = config or TransformersBackendConfig()
        if config.num_threads is not None:
            torch.set_num_threads(config.num_threads)
        if isinstance(model_or_path, (str, os.PathLike)):
            model_or_path, tokenizer = self._load(model_or_path, tokenizer, config)
        self.model = model_or_path.eval()
        current = next(self.model.parameters()).device
        self.device = torch.device(config.device) if config.device else current
        if config.dtype is not None or self.device != current:
            self.model.to(device=self.device, dtype=DTYPES.get(config.dtype or ""))
        self.tokenizer = tokenizer
        self._decode = make_decode(tokenizer)
        model_config = self.model.config
        self.context_length = config.context_length or int(model_config.max_position_embeddings)
        self.vocab_size = int(self.model.get_input_embeddings().weight.shape[0])
        attention = getattr(model_config, "_attn_implementation", None) or "sdpa"
        if attention not in ("sdpa", "eager"):
            raise ValueError(
                f"the model uses attn_implementation={attention!r}; this backend passes its own 4D masks, which "
                "only 'sdpa' and 'eager' accept: call model.set_attn_implementation('sdpa') first"
            )
        self._bool_mask = attention == "sdpa"
        self._dtype = next(self.model.parameters()).dtype  # of eager attention's additive mask
        self._cache = SlotKVCache(
            config.max_batch_size, self.context_length, self.device, config.initial_kv_len
        )
        self._cache_kwargs = cache_kwargs(self.model, self._cache)
        self._store = RetainedStore(config.max_retained_sequences, int(config.max_retained_mib * 2**20))
        self.stats = BackendStats()
        self._running: list[_Sequence] = []  # running[i] occupies slot i
        self._admitting: list[_Sequence] = []
        self._waiting: collections.deque[_Sequence] = collections.deque()
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._worker, name="TransformersBackend", daemon=True)
        self._thread.start()

    @staticmethod
    def _load(path: str | os.PathLike, tokenizer: Any, config: TransformersBackendConfig) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kwargs: dict[str, Any] = {}
        if config.dtype is not None:
            kwargs["dtype"] = DTYPES[config.dtype]
        if config.attn_implementation is not None:
            kwargs["attn_implementation"] = config.attn_implementation
        model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
        model.to(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(str(path))
        return model, tokenizer

    # ---- public interface -------------------------------------------------------------------------------

    def submit(self, request: GenerationRequest) -> Future[GenerationResult]:
        """Queue `request`; the future gives its `GenerationResult` or raises `BackendError`."""
        future: Future[GenerationResult] = Future()
        problem = self._check(request)
        if problem is not None:
            future.set_exception(
                BackendError(f"transformers backend: request {request.request_id}: {problem}")
            )
            return future
        with self._lock:
            if self._closed:
                future.set_exception(BackendError("transformers backend is closed; create a new one"))
                return future
            self._inbox.put(_Sequence(request, future, time.perf_counter()))
        return future

    def release(self, cache_key: str) -> None:
        """Drop the retained KV of `cache_key` (applied in order with submissions)."""
        with self._lock:
            if not self._closed:
                self._inbox.put(("release", cache_key))

    def flush_cache(self) -> None:
        """Drop every retained sequence's KV, e.g. after the model's weights changed (it was computed with the old ones).

        Applied in order with submissions: requests submitted after this call reuse nothing
        retained before it. Sequences still running keep their KV until they finish.
        """
        with self._lock:
            if not self._closed:
                self._inbox.put(("flush", None))

    def abort(self, request_id: str) -> None:
        """Stop `request_id` at its next step; its future resolves with what it generated, finish 'abort'."""
        with self._lock:
            if not self._closed:
                self._inbox.put(("abort", request_id))

    def score_prompt(self, input_ids: list[int]) -> Future[list[float]]:
        """Logprob of each prompt token given the ones before it (the first has none: 0.0), in fp32.

        For SGLang's ``input_token_logprobs`` (``sgl.select`` ranks choices with them). Runs on the
        worker thread between steps, so it never races a generation for the model.
        """
        future: Future[list[float]] = Future()
        problem = self._check(GenerationRequest(input_ids=list(input_ids)))
        with self._lock:
            if problem is not None or self._closed:
                future.set_exception(BackendError(f"transformers backend: {problem or 'closed'}"))
            else:
                self._inbox.put(("score", list(input_ids), future))
        return future

    def update_weights_from_disk(self, model_path: str) -> None:
        """Load the weights of a model folder of the same architecture into the served model.

        Runs on the worker thread between steps; retained KV is dropped (it was computed with
        the old weights). Raises (old weights kept) when the folder is not a model of the same shapes.
        """
        from runtime.model_files import check_model_folder

        check_model_folder(model_path)
        future: Future[None] = Future()
        with self._lock:
            if self._closed:
                raise BackendError("transformers backend is closed; create a new one")
            self._inbox.put(("reload", model_path, future))
        future.result()

    def close(self) -> None:
        """Stop the worker; requests not finished yet fail with `BackendError`. Idempotent."""
        with self._lock:
            self._closed = True
            self._inbox.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _check(self, request: GenerationRequest) -> str | None:
        """Why `request` cannot run, or None."""
        ids = request.input_ids
        if len(ids) == 0:
            return "input_ids is empty; send at least one token (e.g. bos)"
        low, high = min(ids), max(ids)
        if low < 0 or high >= self.vocab_size:
            return f"input_ids hold ids in [{low}, {high}], the model accepts [0, {self.vocab_size - 1}]"
        if request.sampling.stop and self.tokenizer is None:
            return f"stop strings {request.sampling.stop} need a tokenizer; pass tokenizer= to the backend"
        return None

    # ---- worker -----------------------------------------------------------------------------------------

    def _worker(self) -> None:
        try:
            with torch.inference_mode():
                while not self._closed:
                    self._drain(block=not (self._running or self._waiting))
                    if self._closed:
                        break
                    try:
                        self._admit()
                        if self._running:
                            self._decode_step()
                    except Exception as error:  # fail what was in flight, keep serving the rest
                        self._fail(self._running + self._admitting, f"generation failed: {error!r}", error)
                        self._running, self._admitting = [], []
        finally:
            with self._lock:  # also when the loop died: later submissions must fail, not wait forever
                self._closed = True
            self._drain(block=False)
            self._fail(
                self._running + self._admitting + list(self._waiting), "backend closed before it finished"
            )
            self._running, self._admitting = [], []
            self._waiting.clear()
            self._store.clear()

    def _drain(self, block: bool) -> None:
        """Move submissions from the inbox to the waiting queue and apply releases."""
        while True:
            try:
                item = self._inbox.get(block=block)
            except queue.Empty:
                return
            block = False
            if item is None:
                continue
            if isinstance(item, tuple):
                if item[0] == "flush":
                    self._store.clear()
                elif item[0] == "abort":
                    self._abort(item[1])
                elif item[0] in ("score", "reload"):
                    try:
                        value = self._score(item[1]) if item[0] == "score" else self._reload(item[1])
                    except Exception as err:  # the caller's future carries it; the worker goes on
                        item[2].set_exception(err)
                    else:
                        item[2].set_result(value)
                else:
                    self._store.pop(item[1])
            else:
                self._waiting.append(item)

    def _abort(self, request_id: str) -> None:
        """Finish `request_id` now with 'abort', wherever it is (waiting or running)."""
        for seq in list(self._waiting):
            if seq.request.request_id == request_id:
                self._waiting.remove(seq)
                if seq.future.set_running_or_notify_cancel():
                    self._finish(seq, "abort", None, slot=None)
                return
        for slot, seq in enumerate(self._running):
            if seq.request.request_id == request_id:
                self._finish(seq, "abort", None, slot=None)  # no KV retained: it was cut short
                self._drop_slot(slot)
                return

    def _drop_slot(self, slot: int) -> None:
        """Free running slot `slot`, moving the last running sequence into it."""
        last = len(self._running) - 1
        if slot != last:
            self._cache.copy_slot(last, slot, self._running[last].kv_len)
            self._running[slot] = self._running[last]
        self._running.pop()

    def _score(self, ids: list[int]) -> list[float]:
        """Prompt logprobs with a plain forward (no cache): [0.0, logp(ids[1] | ids[:1]), ...]."""
        logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0, :-1].float()
        targets = torch.tensor(ids[1:], device=self.device)
        return [0.0, *token_logprobs(logits, targets).tolist()]

    def _reload(self, path: str) -> None:
        from transformers import AutoModelForCausalLM

        fresh = AutoModelForCausalLM.from_pretrained(path)
        try:
            self.model.load_state_dict(fresh.state_dict())
        except RuntimeError as err:
            raise ValueError(f"{path} does not fit the served model: {str(err)[:400]}") from err
        self._store.clear()

    def _fail(self, seqs: list[_Sequence], message: str, cause: BaseException | None = None) -> None:
        for seq in seqs:
            if not seq.future.done():
                error = BackendError(f"transformers backend: request {seq.request.request_id}: {message}")
                error.__cause__ = cause
                seq.future.set_exception(error)

    # ---- admission and prefill ----------------------------------------------------------------------------

    def _admit(self) -> None:
        """Start waiting requests in free slots, prefilling them in one forward within the token budget."""
        free = self.config.max_batch_size - len(self._running)
        batch: list[tuple[_Sequence, int, RetainedKV | int | None]] = []
        longest = 0
        while self._waiting and len(batch) < free:
            seq = self._waiting[0]
            if seq.t_admit == 0.0:  # first look at it: claim the future, settle trivial cases
                if not seq.future.set_running_or_notify_cancel():
                    self._waiting.popleft()
                    continue
                seq.t_admit = time.perf_counter()
                seq.tokens = list(seq.request.input_ids)
                seq.limit = min(seq.request.sampling.max_new_tokens, self.context_length - len(seq.tokens))
                if seq.limit <= 0:  # nothing to generate: prompt fills the context, or max_new_tokens=0
                    self._waiting.popleft()
                    self._finish(seq, "length", None, slot=None)
                    continue
            cached, source = self._find_reuse(seq)
            new = len(seq.tokens) - cached
            if batch and (len(batch) + 1) * max(longest, new) > self.config.max_prefill_tokens:
                break
            self._waiting.popleft()
            longest = max(longest, new)
            batch.append((seq, cached, source))
        if batch:
            self._prefill(batch)

    def _find_reuse(self, seq: _Sequence) -> tuple[int, RetainedKV | int | None]:
        """Tokens of `seq`'s prompt with reusable KV, and where: a retained entry, a running slot, or None."""
        best: tuple[int, RetainedKV | int | None] = (0, None)
        prompt = seq.tokens
        for key in (seq.request.cache_key, seq.request.fork_from):
            if key is None:
                continue
            retained = self._store.get(key)
            candidates: list[tuple[list[int], RetainedKV | int]] = (
                [(retained.tokens, retained)] if retained else []
            )
            for slot, other in enumerate(self._running):
                if other.request.cache_key == key:
                    candidates.append((other.tokens[: other.kv_len], slot))
            for tokens, source in candidates:
                n = min(common_prefix(tokens, prompt), len(prompt) - 1)  # the last prompt token is always run
                if n > best[0]:
                    best = (n, source)
        return best

    def _prefill(self, batch: list[tuple[_Sequence, int, RetainedKV | int | None]]) -> None:
        """Run the new prompt tokens of `batch` (slots after the running ones) and pick each first token."""
        t0 = time.perf_counter()
        first = len(self._running)
        self._admitting = [seq for seq, _, _ in batch]
        for i, (seq, cached, source) in enumerate(batch):
            if isinstance(source, RetainedKV):
                self._cache.load(first + i, source, cached)
            elif source is not None:
                self._cache.copy_slot(source, first + i, cached)
            seq.cached = seq.kv_len = cached
            if seq.request.cache_key is not None:  # superseded: this request retains it again when done
                self._store.pop(seq.request.cache_key)
        starts = [seq.kv_len for seq, _, _ in batch]
        lengths = [len(seq.tokens) - seq.kv_len for seq, _, _ in batch]
        width = max(lengths)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        for i, (seq, _, _) in enumerate(batch):
            ids[i, : lengths[i]] = torch.tensor(seq.tokens[seq.kv_len :])
        start = torch.tensor(starts)[:, None]
        positions = start + torch.arange(width)[None, :]  # [rows, width]; padded columns continue the count
        end = max(s + n for s, n in zip(starts, lengths))
        key_pos = torch.arange(end)[None, None, :]
        # Row i, query q sees keys j <= start_i + q that are real (j < start_i + length_i); padded
        # queries thus still see at least one key, so no row is fully masked (no NaN).
        mask = (key_pos <= positions[:, :, None]) & (
            key_pos < (start + torch.tensor(lengths)[:, None])[:, :, None]
        )
        self._cache.plan_prefill(first, starts, lengths)
        last = torch.tensor(lengths)[:, None] - 1
        logits = self._forward(ids, positions, mask[:, None], logits_to_keep=last.to(self.device))[:, 0]
        t1 = time.perf_counter()
        self.stats.add_prefill(sum(lengths), sum(starts), t1 - t0)
        for seq, _, _ in batch:
            seq.kv_len = len(seq.tokens)
            seq.sampler = make_row_sampler(seq.request.sampling, self.device)
            seq.prefill_s, seq.t_prefilled = t1 - t0, t1
        self._running.extend(self._admitting)
        self._admitting = []
        self._emit(logits, first)

    # ---- decode -------------------------------------------------------------------------------------------

    def _decode_step(self) -> None:
        """One token for every running sequence."""
        running = self._running
        ids = torch.tensor([[seq.tokens[-1]] for seq in running])
        kv_len = max(seq.kv_len for seq in running) + 1
        positions = torch.tensor([seq.kv_len for seq in running])
        on_device = positions.to(self.device)  # copied once: the cache plan and the model share it
        self._cache.plan_decode(on_device, kv_len)
        key_pos = torch.arange(kv_len)
        mask = (key_pos[None, :] <= positions[:, None])[:, None, None, :]
        t0 = time.perf_counter()
        logits = self._forward(ids, on_device[:, None], mask)[:, -1]
        for seq in running:
            seq.kv_len += 1
        self._emit(logits, 0)
        self.stats.add_decode(len(running), time.perf_counter() - t0)

    def _forward(
        self, ids: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor, logits_to_keep: Any = 0
    ) -> torch.Tensor:
        """Model logits [rows, kept, vocab] for `ids` [rows, q] at `positions`, `mask` [rows, 1, q, keys] bool."""
        if not self._bool_mask:  # eager attention adds the mask to the scores
            mask = torch.zeros(mask.shape, dtype=self._dtype).masked_fill(~mask, torch.finfo(self._dtype).min)
        out = self.model(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=positions.to(self.device),
            use_cache=True,
            **self._cache_kwargs,
            logits_to_keep=logits_to_keep,
        )
        return out.logits

    def _emit(self, logits: torch.Tensor, first: int) -> None:
        """Choose the next token of running rows ``first..``, from `logits` [rows, vocab]; finish those done."""
        seqs = self._running[first:]
        logits = logits.float()  # once: sampling and logprobs both work in fp32
        tokens = choose_tokens(logits, [seq.sampler for seq in seqs])
        for row, seq in enumerate(seqs):  # teacher forcing: the model ran, the given token is emitted
            forced = seq.request.forced_output_ids
            if forced is not None and len(seq.output) < len(forced):
                tokens[row] = forced[len(seq.output)]
        want_logprobs = any(seq.request.return_logprob for seq in seqs)
        logprobs = token_logprobs(logits, tokens).tolist() if want_logprobs else None
        top_n = max(seq.request.top_logprobs_num for seq in seqs)
        if top_n > 0:
            values, ids = torch.log_softmax(logits, dim=-1).topk(min(top_n, logits.shape[-1]), dim=-1)
            top_values, top_ids = values.tolist(), ids.tolist()
        done: list[tuple[int, str, int | str | None]] = []
        for row, (seq, token) in enumerate(zip(seqs, tokens.tolist())):
            seq.tokens.append(token)
            seq.output.append(token)
            if logprobs is not None and seq.request.return_logprob:
                seq.logprobs.append(logprobs[row])
            if seq.request.top_logprobs_num > 0:
                n = seq.request.top_logprobs_num
                seq.top.append(list(zip(top_ids[row][:n], top_values[row][:n])))
            if seq.request.on_token is not None:
                try:
                    seq.request.on_token(token)
                except Exception:  # a broken stream listener must not stop the batch
                    logger.exception("on_token callback of %s failed", seq.request.request_id)
            params = seq.request.sampling
            if token in params.stop_token_ids:
                done.append((first + row, "stop", token))
            elif params.stop and (match := matched_stop_string(seq.output, params.stop, self._decode)):
                done.append((first + row, "stop", match))
            elif len(seq.output) >= seq.limit:
                done.append((first + row, "length", None))
        for slot, reason, matched in sorted(done, reverse=True):  # highest slot first keeps compaction simple
            self._finish(self._running[slot], reason, matched, slot)
            self._drop_slot(slot)

    def _finish(self, seq: _Sequence, reason: str, matched: int | str | None, slot: int | None) -> None:
        """Resolve `seq`'s future and retain its KV when it has a cache key."""
        key = seq.request.cache_key
        if key is not None and slot is not None and seq.kv_len > 0 and self.config.max_retained_sequences > 0:
            self._store.put(key, self._cache.export(slot, seq.kv_len, seq.tokens))
        now = time.perf_counter()
        prefilled = seq.t_prefilled or now
        result = GenerationResult(
            request_id=seq.request.request_id,
            output_ids=list(seq.output),
            text=self._decode(seq.output) if seq.output else "",
            finish_reason=reason,
            matched_stop=matched,
            logprobs=list(seq.logprobs) if seq.request.return_logprob else None,
            top_logprobs=list(seq.top) if seq.request.top_logprobs_num > 0 else None,
            prompt_tokens=len(seq.request.input_ids),
            cached_tokens=seq.cached,
            timings={
                "queue": seq.t_admit - seq.t_submit,
                "prefill": seq.prefill_s,
                "decode": now - prefilled,
                "total": now - seq.t_submit,
            },
        )
        seq.future.set_result(result)

    def __repr__(self) -> str:
        return (
            f"TransformersBackend({type(self.model).__name__}, device={self.device}, "
            f"max_batch_size={self.config.max_batch_size}, context_length={self.context_length})"
        )
