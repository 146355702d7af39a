"""Run many episodes at once with any agent, through the environments' own rules.

`run_episodes(agent, problems, config)` keeps up to `max_concurrent` episodes
(`apr_env.Episode`) alive. Every runnable thread of every live episode is a pending
decision; decisions are handed to the agent in batches and the trees advance as results
come back. Nothing here re-implements spawn, join or metrics: `Episode.act` does.

Two ways to talk to the agent:

- waves (any `apr_env.agent.Agent`): all runnable threads of all live episodes go to
  `agent.act` in one batch; their actions are applied; repeat. Simple and exactly
  reproducible; what the symbolic agents use.
- continuous (agents with ``submit(observation) -> Future``, e.g. the LLM agent): each
  runnable thread is submitted as soon as it becomes runnable; whenever any result arrives
  it is applied at once, and the threads it makes runnable (children of a spawn, a parent
  after its join, the next episode) are submitted immediately. Requests from different
  threads and episodes therefore share the backend's batches (continuous batching), and
  per-episode wall-clock latency is not held back by the slowest thread of a wave.

A request the server refuses for length (`ContextLengthError`: its context is shorter than the
window) ends that thread as cut off by its window, a recorded outcome; any other agent error
stops the run (records already handed to ``on_record`` are kept).

Straggler control (``first_k``): when an early join cancels threads, the waves runner simply
stops asking for them (an action already computed for one in the same wave is ignored by the
episode), and the continuous runner drops their in-flight requests at once: the future is
cancelled, its result is discarded if it still arrives, the thread is never submitted again,
and the episode retires without waiting for it, so the saved decode shows up in the measured
latency. An agent with a ``cancel(episode, thread)`` method is told, so it can stop the work
(`agents.llm_agent.LLMAgent.cancel` stops a request's continuations and aborts the one in
flight: the in-process backend drops it from its batch at the next decode step, `SGLangBackend`
sends SGLang's ``/abort_request``; the OpenAI backend has no abort, so there it runs to its end).

Each finished episode yields a record (JSON-friendly): index, seed, problem, outcome,
correctness, answer, metrics, reward components, the compact tree, wall-clock latency, and
per-call data the agent attached (token ids, logprobs, timings) when `record_calls` is set.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path

from apr_env.agent import Agent, observe
from apr_env.episode import Episode
from apr_env.limits import Limits
from apr_env.problem import Problem
from apr_env.protocols import get_protocol
from apr_env.rewards import RewardConfig
from apr_env.seeding import episode_seed
from apr_env.tokenizer import load_tokenizer
from runtime.backends.base import ContextLengthError
from runtime.progress import progress_bar


@dataclass
class RunConfig:
    """How to run a batch of episodes."""

    protocol: str = "apr"
    """Registered protocol name."""
    protocol_kwargs: dict = field(default_factory=dict)
    """Protocol constructor kwargs, e.g. {'sub_call_budget': 10}."""
    limits: Limits = field(default_factory=Limits)
    reward: RewardConfig = field(default_factory=RewardConfig)
    seed: int = 0
    """Base seed; episode i gets a seed derived from (seed, i)."""
    max_concurrent: int = 64
    """Episodes alive at once."""
    record_calls: bool = False
    """Include every call's prompt/completion text and the agent's per-call data in records."""
    progress: bool = False
    """Show a progress bar."""

    def __post_init__(self) -> None:
        if self.max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {self.max_concurrent}")
        get_protocol(self.protocol, **self.protocol_kwargs)  # fail early on a bad name


def _record(ep: Episode, index: int, seed: int, latency: float, record_calls: bool) -> dict:
    rec = {"index": index, "seed": seed, **ep.summary(), "latency_s": latency}
    if record_calls:
        rec["calls"] = [
            [
                {
                    "prompt": c.prompt,
                    "completion": c.completion,
                    "inserted": c.inserted,
                    "completion_ids": c.completion_ids,
                    **(c.meta or {}),
                }
                for c in t.calls
            ]
            for t in ep.threads
        ]
    return rec


def run_episodes(
    agent: Agent,
    problems: Sequence[Problem],
    config: RunConfig | None = None,
    *,
    tokenizer=None,
    on_record: Callable[[dict], None] | None = None,
    skip: Collection[int] = (),
) -> list[dict]:
    """Play every problem once with `agent`; return one record per played problem, in problem order.

    Args:
        on_record: Called with each record as its episode finishes (before the next one is
            admitted), e.g. to append it to a file: if the run then fails, what finished is kept.
        skip: Indices not to play (episodes already recorded by an earlier, interrupted run);
            the others keep their index and seed, so a resumed run plays exactly what is missing.

    Raises:
        Whatever the agent raises (e.g. `BackendError` when the server is gone): the run stops;
        records of finished episodes were already handed to `on_record`.
    """
    config = config or RunConfig()
    tokenizer = load_tokenizer(tokenizer)
    n = len(problems)
    skip = frozenset(skip)
    records: list[dict | None] = [None] * n
    bar = progress_bar(
        n - len(skip & set(range(n))),
        enabled=config.progress,
        desc=f"episodes ({getattr(agent, 'name', 'agent')})",
        unit="ep",
    )
    live: dict[int, tuple[Episode, float]] = {}
    next_index = 0

    def admit() -> None:
        nonlocal next_index
        while next_index < n and len(live) < config.max_concurrent:
            if next_index in skip:
                next_index += 1
                continue
            protocol = get_protocol(config.protocol, **config.protocol_kwargs)
            ep = Episode(
                problems[next_index],
                protocol,
                limits=config.limits,
                tokenizer=tokenizer,
                reward=config.reward,
            )
            live[next_index] = (ep, time.perf_counter())
            next_index += 1

    def retire(index: int) -> None:
        ep, started = live.pop(index)
        rec = _record(
            ep, index, episode_seed(config.seed, index), time.perf_counter() - started, config.record_calls
        )
        records[index] = rec
        agent.end_episode(index)
        if on_record is not None:
            on_record(rec)
        bar.update(1)

    admit()
    submit = getattr(agent, "submit", None)
    try:
        if submit is None:
            while live:
                batch = [
                    observe(ep, tid, key=i, seed=episode_seed(config.seed, i))
                    for i, (ep, _) in live.items()
                    for tid in ep.runnable
                ]
                actions = agent.act(batch) if batch else []
                for obs, action in zip(batch, actions):
                    live[obs.episode][0].act(obs.thread, action)
                for i in [i for i, (ep, _) in live.items() if ep.done or not ep.runnable]:
                    retire(i)
                admit()
        else:
            _run_continuous(agent, live, admit, retire, config)
    finally:
        bar.close()
    return [r for r in records if r is not None]


def _run_continuous(agent, live, admit, retire, config: RunConfig) -> None:
    pending: dict[Future, tuple[int, int]] = {}
    in_flight: dict[tuple[int, int], Future] = {}  # (episode, thread) with a decision pending: one at a time
    cancel = getattr(agent, "cancel", None)
    open_requests: Counter[int] = Counter()  # per episode, decisions pending

    def submit_runnable() -> None:
        for i, (ep, _) in list(live.items()):
            for tid in ep.runnable:
                if (i, tid) not in in_flight:
                    open_requests[i] += 1
                    obs = observe(ep, tid, key=i, seed=episode_seed(config.seed, i))
                    fut = agent.submit(obs)
                    pending[fut] = (i, tid)
                    in_flight[(i, tid)] = fut

    def drop_cancelled(i: int, ep: Episode) -> None:
        """Requests of threads an early join cancelled: abandon them (see the module docstring)."""
        for key in [k for k in in_flight if k[0] == i and ep.threads[k[1]].reason == "cancelled"]:
            fut = in_flight.pop(key)
            pending.pop(fut, None)
            open_requests[i] -= 1
            fut.cancel()
            if cancel is not None:
                cancel(*key)

    submit_runnable()
    while pending:
        done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for fut in done:
            if fut not in pending:  # dropped (cancelled thread) earlier in this batch
                continue
            i, tid = pending.pop(fut)
            in_flight.pop((i, tid), None)
            open_requests[i] -= 1
            try:
                action = fut.result()  # an agent error propagates: no silent loss of an episode
            except ContextLengthError:  # the server's context is shorter than the window: cut off
                action = None
            if i not in live:  # a sibling already ended the episode (e.g. the shared token budget)
                continue
            ep = live[i][0]
            event = ep.truncate(tid) if action is None else ep.act(tid, action)
            if event in ("finish", "fail") and ep.groups:
                drop_cancelled(i, ep)
            if ep.done or (not ep.runnable and not open_requests[i]):
                retire(i)
        admit()
        submit_runnable()


def save_records(records: Sequence[dict], path: str | Path) -> Path:
    """Write records as JSON Lines."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for rec in records:
            f.write(json.dumps(rec) + "\n")
    return path
