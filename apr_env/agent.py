"""The small `Agent` interface: a batch of thread observations in, a batch of actions out.

It lives in `apr_env` so that the runtime's runner can drive any agent without importing
`agents/` (dependency direction `apr_env` <- `runtime` <- `agents`). Symbolic solvers, the
random agent, SB3 policies and the LLM agent all implement it.

An agent sees one `ThreadObservation` per runnable thread: the thread's context text plus
what a policy may legitimately know about the episode (the root problem, the protocol,
the thread's depth and label, and the episode's seed so that stochastic agents are
reproducible per episode, whatever the batch composition).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import NamedTuple

from apr_env.episode import Episode
from apr_env.problem import Problem


class ThreadObservation(NamedTuple):
    """What an agent sees of one runnable thread (an immutable record, built once per step)."""

    episode: int
    """Key of the episode within the caller's run (stable while the episode lives)."""
    thread: int
    """Thread id within the episode (0 is the root)."""
    context: str
    """The thread's prompt plus what it generated so far in this call."""
    problem: Problem
    """The episode's root problem."""
    protocol: str
    """Name of the episode's protocol."""
    depth: int
    label: str
    seed: int
    """The episode's seed: agents derive their randomness from it (and the thread's label)."""


def observe(episode: Episode, tid: int, *, key: int, seed: int) -> ThreadObservation:
    """The observation of thread `tid` of `episode`."""
    t = episode.threads[tid]
    return ThreadObservation(
        key, tid, t.context, episode.problem, episode.protocol.name, t.depth, t.label, seed
    )


class Agent(abc.ABC):
    """A policy over threads. Subclasses implement `act`; the other hooks are optional."""

    name: str = "agent"

    @abc.abstractmethod
    def act(self, observations: Sequence[ThreadObservation]) -> list:
        """One action per observation (text or a structured action from `apr_env.actions`)."""

    def end_episode(self, episode: int) -> None:  # noqa: B027 - optional hook
        """The episode with key `episode` is over: drop any state kept for it."""
