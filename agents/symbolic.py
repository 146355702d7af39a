"""Symbolic agents that play the environments thread by thread, under any built-in protocol.

One search policy (agents/search.py: multiply heuristic, top-K then shuffle, best-first beam
pops, promising coins) and one agent, `SymbolicAgent`, which renders it under each protocol,
so protocols can be compared with the policy held fixed:

- ``serial``: the SoS+ solver (`agents.sosp.SospSearch`) writes the whole trace in one action.
- ``apr``: the root is `agents.apr_solver.AprRootSearch` (segment up to each spawn; after a
  join it reads the children's answers from the join block in its context and resumes);
  each child is `ChildSearch` from its node's state. With the same seed the episode's texts
  equal `agents.apr_solver.apr_trace(problem, seed=...)`.
- ``fork_full_context``: identical search (children read their node from the end of their
  longer prompt), so only the context and prefill costs change.
- ``broadcast``: children are `agents.board_child.BoardChildSearch`: one iteration per
  action, publishing dead ends and skipping states on the sibling board.
- ``self_consistency``: the root spawns `n` children at the root node; each runs an
  independent SoS+ search (its own stream); the root answers with the majority claim.
- ``first_k``: the APR root adds ``<Join On Goal>`` (and ``<Join First {k}>`` when
  `SymbolicConfig.join_first` is set) to every calling block; children are APR children cut
  into one-node steps, so that the first to solve ends the wait and the rest are cancelled
  mid-search. Same texts as ``apr`` up to the cancellations.
- ``messaging``: step-wise APR children; one that reaches the goal messages every sibling
  ``Goal Reached`` (its name and the sibling count come from its prompt's ``<Sub Search i of
  n>`` line), and a child that receives such a message stops. No dead ends are sent: point to
  point, only the news that ends a search is worth its prefill.
- ``subscriptions``: broadcast's board children, each subscribing only to solutions and to
  dead ends that contain one of its start numbers (the only two-number states it can reach),
  so they skip exactly what broadcast's children skip and read less.

Randomness: every decision derives from the episode's seed (`ThreadObservation.seed`) and
the problem, and a child's from its parent's stream key and its node id (or, for
self-consistency, its position), so traces do not depend on batching, order or workers.
Beam sizes are drawn as the official generators draw them unless fixed in the config.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from agents import apr_solver, seeding, sosp
from agents.board_child import BoardChildSearch
from apr_env import grammar as g
from apr_env.actions import Answer, Spawn, Text
from apr_env.agent import Agent, ThreadObservation
from apr_env.problem import Problem
from apr_env.protocols.first_k import JOIN_ON_GOAL, join_first_line
from apr_env.protocols.messaging import message_line, received
from apr_env.protocols.self_consistency import vote
from apr_env.protocols.subscriptions import DEAD_TOPIC, GOAL_TOPIC, subscribe_line

PROTOCOLS = (
    "serial",
    "apr",
    "fork_full_context",
    "broadcast",
    "self_consistency",
    "first_k",
    "messaging",
    "subscriptions",
)
STEPWISE = ("broadcast", "first_k", "messaging", "subscriptions")
"""Protocols whose children act one node per step, so that what siblings do can reach them."""
_RE_NAME = re.compile(r"<Sub Search (\d+) of (\d+)>", re.ASCII)


@dataclass(frozen=True)
class SymbolicConfig:
    """Search settings; None means the official random draw per problem."""

    beam_size: int | None = None
    """Root beam: APR parent (official 1..10) or SoS+ (official 1..5)."""
    sub_beam_size: int | None = None
    """APR children's beam (official beam_size..15)."""
    n: int = 4
    """Self-consistency: children the root spawns."""
    promising: float | None = None
    """Branch coin: APR spawn (official 0.9) / SoS+ dive (official 0.5); None keeps the official value."""
    join_first: int | None = None
    """first_k: also join when this many children have ended (None: only on the first verified goal)."""

    def __post_init__(self) -> None:
        for name in ("beam_size", "sub_beam_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be None or an int >= 1, got {value!r}")
        if not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"n must be an int >= 1, got {self.n!r}")
        if self.join_first is not None and (not isinstance(self.join_first, int) or self.join_first < 1):
            raise ValueError(f"join_first must be None or an int >= 1, got {self.join_first!r}")


def parse_join(context: str) -> list[str | None]:
    """Per child, in spawn order, the answer path in the last join block of `context` (None: no solution)."""
    start = context.rfind(g.SUB_SEARCHES + "\n")
    end = context.rfind(g.END_SUB_SEARCHES)
    results: dict[int, str | None] = {}
    current, path = None, []
    for line in context[start + len(g.SUB_SEARCHES) + 1 : end].split("\n"):
        m = g.RE_SUB_RESULT.fullmatch(line) if line[:1] == "<" else None  # path lines never start with '<'
        if m is not None:
            if current is not None:
                results[current] = "\n".join(path) or None
            current, path = int(m.group(2)), []
            if m.group(1) == "No Solution":
                results[current], current = None, None
        elif current is not None and line:
            path.append(line)
    if current is not None:
        results[current] = "\n".join(path) or None
    return [results.get(i) for i in range(max(results, default=-1) + 1)]


def _child_start(context: str) -> tuple[str, int, tuple[int, ...], list[str]]:
    """(node id, target, nums, ops) from the last two lines of a child's prompt."""
    head, _, state = context.rstrip("\n").rpartition("\n")
    parsed = g.parse_state(state)
    node = g.RE_MOVING.search(head[head.rfind("\n") + 1 :])
    if parsed is None or node is None:
        raise ValueError(f"not a child prompt: {context[-200:]!r}")
    return node.group(1), parsed[0], parsed[1], parsed[2]


def _with_join_options(text: str, join_first: int | None) -> str:
    """A first_k spawn: the calling block gains ``<Join On Goal>`` (and ``<Join First {k}>``)."""
    cut = text.rfind(g.END_CALLING)
    options = JOIN_ON_GOAL + "\n" + ("" if join_first is None else join_first_line(join_first) + "\n")
    return text[:cut] + options + text[cut:]


def _goal_message(context: str) -> tuple[set, bool]:
    """messaging: a received ``Goal Reached`` message ends the search; nothing else is read."""
    return set(), any(body.startswith("Goal Reached") for _, body in received(context))


def _child_options(obs: ThreadObservation, nums) -> dict:
    """How a step-wise child talks under `obs.protocol` (`BoardChildSearch` keyword arguments)."""
    if obs.protocol == "first_k":
        return {"publish": False}
    if obs.protocol == "messaging":
        m = _RE_NAME.match(obs.context)
        if m is None:  # a prompt without a name: nobody to tell
            return {"publish": False, "read": _goal_message}
        me, n = int(m.group(1)), int(m.group(2))
        return {
            "publish": False,
            "read": _goal_message,
            "on_goal": lambda node: [
                message_line(f"Goal Reached at Node #{node}", j) for j in range(n) if j != me
            ],
        }
    if obs.protocol == "subscriptions":
        topics = [GOAL_TOPIC]
        if len(nums) > 2:  # a two-number start reaches no two-number state but itself
            topics.append(f"{DEAD_TOPIC} With {', '.join(map(str, sorted(set(nums))))}")
        return {"header": [subscribe_line(t) for t in topics]}
    return {}


class SymbolicAgent(Agent):
    """The symbolic searcher under any built-in protocol (see the module docstring)."""

    name = "symbolic"

    def __init__(self, config: SymbolicConfig | None = None):
        self.config = config or SymbolicConfig()
        self._roots: dict[int, apr_solver.AprRootSearch] = {}
        self._children: dict[tuple[int, int], BoardChildSearch] = {}
        self._requests: dict[int, dict[str, apr_solver.SpawnRequest]] = {}
        self._ready: dict[int, dict[str, str]] = {}  # episode -> node id -> a spawned child's text

    def act(self, observations: Sequence[ThreadObservation]) -> list:
        return [self._act(o) for o in observations]

    def end_episode(self, episode: int) -> None:
        self._roots.pop(episode, None)
        self._requests.pop(episode, None)
        self._ready.pop(episode, None)
        for key in [k for k in self._children if k[0] == episode]:
            del self._children[key]

    # ----------------------------------------------------------------------------------

    def _act(self, obs: ThreadObservation):
        if obs.protocol == "serial":
            return self._sosp(obs.problem, obs.seed)
        if obs.protocol == "self_consistency":
            return self._self_consistency(obs)
        if obs.protocol in ("apr", "fork_full_context", *STEPWISE):
            return self._apr_root(obs) if obs.thread == 0 else self._apr_child(obs)
        raise ValueError(
            f"SymbolicAgent does not know protocol {obs.protocol!r}; known: {', '.join(PROTOCOLS)}"
        )

    def _sosp(self, problem: Problem, seed: int) -> str:
        beam = sosp.sosp_beam_size(problem, seed, self.config.beam_size)
        promising = sosp.PROMISING if self.config.promising is None else self.config.promising
        return sosp.SospSearch(problem, beam, seed, promising=promising).run()

    def _self_consistency(self, obs: ThreadObservation):
        if obs.thread == 0:
            if g.END_SUB_SEARCHES not in obs.context:
                return Spawn(("0",) * self.config.n)
            answer = vote(parse_join(obs.context))
            return Answer(answer)
        return self._sosp(obs.problem, seeding.stable_seed(f"{obs.seed}/sc/{obs.label}/{obs.thread}"))

    def _beams(self, problem: Problem, seed: int) -> tuple[int, int]:
        return apr_solver.beam_sizes(problem, seed, self.config.beam_size, self.config.sub_beam_size)

    def _apr_root(self, obs: ThreadObservation) -> str:
        root = self._roots.get(obs.episode)
        if root is None:
            beam, sub = self._beams(obs.problem, obs.seed)
            promising = apr_solver.PROMISING if self.config.promising is None else self.config.promising
            root = apr_solver.AprRootSearch(
                obs.problem, beam_size=beam, sub_beam_size=sub, seed=obs.seed, promising=promising
            )
            self._roots[obs.episode] = root
        elif root.waiting:
            root.resume(parse_join(obs.context))
        if root.finished:
            return ""
        segment = root.next_segment()
        if segment.spawns:  # the children's start states, so they need not be parsed back from prompts
            self._requests[obs.episode] = {r.node_id: r for r in segment.spawns}
            if obs.protocol not in STEPWISE:
                # Search every child now, back to back, as a runtime launches a spawn's children
                # together; each child's step then returns its text. Same texts (each child has
                # its own stream), and the solver runs ~8% faster than when every search is
                # interleaved with the environment's steps (benchmarks/agents_side_by_side.py).
                self._ready[obs.episode] = {
                    r.node_id: apr_solver.ChildSearch.from_request(r).run() for r in segment.spawns
                }
            if obs.protocol == "first_k":
                return _with_join_options(segment.text, self.config.join_first)
        return segment.text

    def _apr_child(self, obs: ThreadObservation):
        ready = self._ready.get(obs.episode)
        text = None if ready is None else ready.pop(obs.label, None)
        if text is not None:
            return text
        key = (obs.episode, obs.thread)
        child = self._children.get(key)
        if child is None:
            requests = self._requests.get(obs.episode)
            request = None if requests is None else requests.get(obs.label)
            if request is not None:  # the usual case: this agent also played the root's spawn
                node_id, target, nums, ops = request.node_id, request.target, request.nums, request.ops
                sub, seed_key = request.beam_size, request.seed_key
            else:  # a root played by someone else: read the start node from the prompt
                node_id, target, nums, ops = _child_start(obs.context)
                sub = self._beams(obs.problem, obs.seed)[1]
                seed_key = seeding.child_key(apr_solver.root_key(obs.problem, obs.seed), node_id)
            if obs.protocol not in STEPWISE:
                return apr_solver.ChildSearch(node_id, target, nums, ops, sub, seed_key=seed_key).run()
            child = self._children[key] = BoardChildSearch(
                node_id, target, nums, ops, sub, seed_key=seed_key, **_child_options(obs, nums)
            )
        child.observe(obs.context)
        text = child.step()
        return Text(text, partial=not child.finished)
