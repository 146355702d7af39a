"""The LLM agent: a language model behind any runtime backend plays every thread.

One `submit(observation)` per runnable thread becomes one generation request; the runner
(`runtime.runner`) keeps many in flight, so threads of many episodes share the backend's
batches. Everything a model needs to play a protocol is decided here, client side:

- prompt token ids: bos + the thread's context. Token ids go end to end: the agent keeps
  each thread's ids (prompt + sampled output) and, when the environment rewrites the
  context (a join drops the calling block and appends the join block; broadcast inserts a
  board), it keeps the longest run of its own ids whose text is still a prefix of the new
  context and tokenizes only the rest. Sampled text is never re-tokenized while it stays in
  the context, so the model is conditioned on exactly what it generated (reference flaws
  21, 22), and the KV of that prefix can be reused (`cache_key`);
- stop conditions: EOS, or the ``<End Calling Sub Searches>`` marker (a spawn request);
- a self-written ``<Sub Searches>`` (the model inventing join results) is handled as the
  official runtime does (reference 3.2): generation stops there, that marker is dropped,
  ``<Calling Sub Searches>`` is appended and generation continues, at most
  `max_forced_spawns` times;
- per-call ``max_new_tokens`` = context window - prompt tokens (no server patch needed,
  flaw 15);
- condition prefixes (``Sub Call Budget``, ``Token Budget``) come from the protocol's own
  prompts (protocol kwargs), so the agent needs no special case for them;
- sampling seeds derive from (episode seed, thread, call), so a sampled episode is
  reproducible whatever else is in the batch (on backends that honour per-request seeds);
- KV hints: each thread is a `cache_key` ``"{episode}/{thread}"``; a child names its parent in
  `fork_from` (pays off when the child's prompt starts with the parent's context, as in
  `fork_full_context`).

Each action is an `apr_env.actions.Text` with the sampled `token_ids` and `meta` holding the
prompt ids, output ids, logprobs, finish reason, cached tokens, timings and
``forced_positions`` (indices into the output ids of the ``<Calling Sub Searches>`` tokens the
agent inserted rather than sampled, which training must mask), which the runner's records keep
for training.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from apr_env import grammar as g
from apr_env.actions import Text
from apr_env.agent import Agent, ThreadObservation
from apr_env.text import common_prefix_len
from runtime.backends.base import Backend, GenerationRequest, GenerationResult, SamplingParams


@dataclass
class LLMAgentConfig:
    """Sampling and protocol settings of `LLMAgent`."""

    context_window: int = 4096
    """Tokens per thread; must match the environment's `Limits.context_window`."""
    temperature: float = 0.0
    """0: greedy (the paper's evaluation setting)."""
    top_p: float = 1.0
    top_k: int = -1
    max_new_tokens: int | None = None
    """Cap per call; None: whatever the context window leaves."""
    add_bos: bool = True
    """Prepend the tokenizer's bos id to every prompt (as in SFT: bos + text + eos)."""
    max_forced_spawns: int = 4
    """How often a self-written ``<Sub Searches>`` is turned into a spawn before the call just ends."""
    return_logprob: bool = True
    reuse_kv: bool = True
    """Send `cache_key` / `fork_from` hints (the in-process backend reuses KV; HTTP ones ignore them)."""


@dataclass
class _ThreadState:
    ids: list[int] = field(default_factory=list)
    text: str = ""
    ends: list[int] = field(default_factory=list)
    """ends[i]: length of the text of ids[: i + 1]."""


class LLMAgent(Agent):
    """Plays threads with a backend and a tokenizer (see the module docstring).

    Args:
        backend: any `runtime.backends.base.Backend`.
        tokenizer: an `apr_env.tokenizer.TextTokenizer` or anything `load_tokenizer` accepts
            (the model's tokenizer; the Countdown tokenizer by default).
        config: `LLMAgentConfig`.
    """

    name = "llm"

    def __init__(self, backend: Backend, tokenizer=None, config: LLMAgentConfig | None = None):
        from apr_env.tokenizer import load_tokenizer

        self.backend = backend
        self.tokenizer = load_tokenizer(tokenizer)
        self.config = config or LLMAgentConfig()
        self._eos = self.tokenizer.eos_id
        self._end_calling = self._single_id(g.END_CALLING)
        self._sub_searches = self._single_id(g.SUB_SEARCHES)
        self._calling = self._single_id(g.CALLING)
        stop_ids = [i for i in (self._eos, self._end_calling, self._sub_searches) if i is not None]
        self._stop_ids = tuple(stop_ids)
        self._stop_strings = tuple(
            s
            for s, i in ((g.END_CALLING, self._end_calling), (g.SUB_SEARCHES, self._sub_searches))
            if i is None
        )
        self._pieces = hasattr(self.tokenizer, "id_to_token")
        self._threads: dict[tuple[int, int], _ThreadState] = {}
        self._inflight: dict[tuple[int, int], str] = {}
        """Each thread's latest request id (what `cancel` aborts); dropped with the episode."""
        self._lock = threading.Lock()

    def _single_id(self, text: str) -> int | None:
        try:
            return self.tokenizer.token_id(text)
        except KeyError:
            return None

    # ----------------------------------------------------------------------------------

    def act(self, observations: Sequence[ThreadObservation]) -> list:
        futures = [self.submit(o) for o in observations]
        return [f.result() for f in futures]

    def submit(self, obs: ThreadObservation) -> Future:
        """Start generating thread `obs.thread`'s next segment; the future resolves to a `Text` action."""
        out: Future = Future()
        prompt_ids = self._prompt_ids(obs)
        state = {
            "obs": obs,
            "prompt_ids": prompt_ids,
            "ids": [],
            "logprobs": [],
            "forced": 0,
            "forced_at": [],
            "cached": 0,
            "timings": {},
            "call": self._call_index(obs),
        }
        self._send(state, out)
        return out

    def end_episode(self, episode: int) -> None:
        with self._lock:
            keys = [k for k in self._threads if k[0] == episode]
            for k in keys:
                del self._threads[k]
            for k in [k for k in self._inflight if k[0] == episode]:
                del self._inflight[k]
        for _, tid in keys:
            self.backend.release(f"{episode}/{tid}")

    def cancel(self, episode: int, thread: int) -> None:
        """The runner dropped this thread (an early join cancelled it): forget its ids and abort its
        generation. Its future was cancelled, so a forced-spawn continuation is not sent (`_done`);
        the request in flight is aborted in the backend (`Backend.abort`: the in-process backend
        drops it from the batch at its next step, SGLang gets ``/abort_request``; a backend without
        abort lets it run to its end)."""
        with self._lock:
            self._threads.pop((episode, thread), None)
            request_id = self._inflight.pop((episode, thread), None)
        if request_id is not None:
            self.backend.abort(request_id)

    # ----------------------------------------------------------------------------------

    def _call_index(self, obs: ThreadObservation) -> int:
        return obs.context.count(g.END_SUB_SEARCHES)

    def _prompt_ids(self, obs: ThreadObservation) -> list[int]:
        """bos + ids of the context, reusing this thread's own ids for the unchanged prefix."""
        key = (obs.episode, obs.thread)
        with self._lock:
            st = self._threads.get(key)
        bos = [self.tokenizer.bos_id] if self.config.add_bos and self.tokenizer.bos_id is not None else []
        keep = _common_token_prefix(st, obs.context) if st is not None else 0
        if keep <= len(bos):
            keep = 0
            ids = bos + self.tokenizer.encode(obs.context)
        else:
            ids = st.ids[:keep] + self.tokenizer.encode(obs.context[st.ends[keep - 1] :])
        self._remember(key, ids, base=st, kept=keep)
        return ids

    def _remember(self, key, ids: list[int], *, base: _ThreadState | None = None, kept: int = 0) -> None:
        """Keep the thread's ids with the text offset after each (needs a per-token string table).

        The first `kept` ids are `base`'s own, so only the ids after them are looked up: a
        thread's state grows by its new tokens per call instead of being rebuilt.
        """
        if not self._pieces:
            return
        if base is None or kept == 0:
            st = _ThreadState()
        else:
            st = _ThreadState(
                ids=base.ids[:kept], text=base.text[: base.ends[kept - 1]], ends=base.ends[:kept]
            )
        total = st.ends[-1] if st.ends else 0
        parts = [st.text]
        for tid in ids[kept:]:
            piece = "" if tid == self.tokenizer.bos_id else (self.tokenizer.id_to_token(tid) or "")
            parts.append(piece)
            total += len(piece)
            st.ends.append(total)
        st.ids.extend(ids[kept:])
        st.text = "".join(parts)
        with self._lock:
            self._threads[key] = st

    def _send(self, state: dict, out: Future) -> None:
        obs = state["obs"]
        ids = state["prompt_ids"] + state["ids"]
        room = self.config.context_window - len(ids)
        max_new = room if self.config.max_new_tokens is None else min(room, self.config.max_new_tokens)
        seed = (obs.seed * 1_000_003 + obs.thread * 10_007 + state["call"] * 101 + state["forced"]) % (2**31)
        sampling = SamplingParams(
            max_new_tokens=max(max_new, 0),
            temperature=self.config.temperature,
            top_p=self.config.top_p,
            top_k=self.config.top_k,
            stop_token_ids=self._stop_ids,
            stop=self._stop_strings,
            seed=seed,
        )
        request = GenerationRequest(
            input_ids=ids,
            sampling=sampling,
            return_logprob=self.config.return_logprob,
            cache_key=f"{obs.episode}/{obs.thread}" if self.config.reuse_kv else None,
            fork_from=self._parent_key(obs) if self.config.reuse_kv else None,
        )
        with self._lock:
            self._inflight[(obs.episode, obs.thread)] = request.request_id
        try:
            future = self.backend.submit(request)
        except Exception as err:
            out.set_exception(err)
            return
        future.add_done_callback(lambda f: self._done(f, state, out))

    def _parent_key(self, obs: ThreadObservation) -> str | None:
        return None if obs.thread == 0 else f"{obs.episode}/0"

    def _done(self, future: Future, state: dict, out: Future) -> None:
        if out.cancelled():  # the runner dropped the thread (an early join): no continuation, no result
            return
        try:
            result: GenerationResult = future.result()
            ids = list(result.output_ids)
            logprobs = list(result.logprobs or [])
            state["cached"] += result.cached_tokens
            for k, v in result.timings.items():
                state["timings"][k] = state["timings"].get(k, 0.0) + v
            forced = (
                result.finish_reason == "stop"
                and self._sub_searches is not None
                and ids[-1:] == [self._sub_searches]
                and self._calling is not None
            )
            if forced and state["forced"] < self.config.max_forced_spawns:
                state["forced_at"].append(len(state["ids"]) + len(ids) - 1)
                state["ids"] += [*ids[:-1], self._calling]
                if self.config.return_logprob:  # the forced id was not sampled: logprob 0
                    state["logprobs"] += [*logprobs[: len(ids) - 1], 0.0]
                state["forced"] += 1
                self._send(state, out)
                return
            state["ids"] += ids
            state["logprobs"] += logprobs
            out.set_result(self._action(state, result))
        except Exception as err:
            out.set_exception(err)

    def _action(self, state: dict, result: GenerationResult) -> Text:
        ids = state["ids"]
        if ids and ids[-1] == self._eos:  # EOS ends the thread; it is not part of the text
            gen_ids = ids[:-1]
        else:
            gen_ids = ids
        text = self.tokenizer.decode(gen_ids)
        obs = state["obs"]
        key = (obs.episode, obs.thread)
        with self._lock:
            base = self._threads.get(key)  # holds the prompt ids since `_prompt_ids`
        self._remember(
            key, state["prompt_ids"] + gen_ids, base=base, kept=len(state["prompt_ids"]) if base else 0
        )
        meta = {
            "prompt_ids": state["prompt_ids"],
            "output_ids": ids,
            "logprobs": state["logprobs"],
            "finish_reason": result.finish_reason,
            "cached_tokens": state["cached"],
            "forced_spawns": state["forced"],
            "forced_positions": state["forced_at"],
            "timings": state["timings"],
        }
        return Text(text, tuple(gen_ids), meta=meta)


def _common_token_prefix(st: _ThreadState, context: str) -> int:
    """How many of the thread's ids (bos included) spell a prefix of the new `context`."""
    return bisect.bisect_right(st.ends, common_prefix_len(st.text, context))
