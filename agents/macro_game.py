"""The macro-action game: one numeric decision per step of a thread's best-first search.

`MacroGame` holds one `apr_env.Episode` (protocol ``apr``) and, per thread, the search state of
`agents.search` (frontier heap, multiply heuristic, top-K then shuffle). At each decision the
acting thread chooses one of ``max_spawn + 2`` joint actions:

- ``0`` (`EXPAND`): pop the best frontier node and expand it serially (its lines are written,
  its children pushed; reaching the target writes the goal line and the answer path);
- ``k`` in ``1..max_spawn``: spawn k child threads on the k best frontier nodes (a calling
  block); the children are threads of the same game, so the same policy plays them;
- ``max_spawn + 1`` (`give_up`): write ``No solution found.`` and end the thread.

Every decision is rendered into the protocol's text and played through `Episode.act` (an
expansion that leaves the thread running is a partial `Text`), so token counts, the critical
path, verification and the reward are exactly those of the text environment replaying the
same texts (`played` keeps them). Moves without a choice are played without a decision
(`forced_text`): the answer after a join that brought a verified child answer (the first one
in spawn order, as the APR solver does), ``No solution found.`` when the frontier is empty,
and giving up when no action fits the limits (the episode then cuts and fails the thread).

Legality (`masks`), exactly as the episode would judge the action's own text: expand and give
up when their text fits the thread's context window and the total token budget; spawn k when
also k <= the frontier size, k <= ``limits.max_children_per_spawn``, the thread's depth <
``limits.max_depth``, the episode's threads + k <= ``limits.max_threads`` and every child's
prompt fits its window. What happens after the action (a join block that later overflows the
parent's window) is its consequence, not part of its legality.

Node expansions draw their shuffle from a stream keyed by (thread key, node id), so the text of
an expansion does not depend on when it happens: the mask can compute it ahead and the step reuse it.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from agents import apr_solver, lines, seeding
from agents.search import SearchContext, expand, ops_text_of, path_lines, start_node
from apr_env import grammar
from apr_env.actions import Text
from apr_env.envs.common import EnvConfig
from apr_env.errors import ConfigError
from apr_env.metrics import count_tokens
from apr_env.problem import Problem
from apr_env.tree import Status

EXPAND = 0
"""Action 0: expand the best frontier node serially."""
MAX_NUMBERS = 6
"""Number slots in the observation (the generator allows up to 6 numbers)."""
VALUE_SCALE = 100.0
"""Targets, numbers and heuristic values are divided by this (APR targets are 10..100)."""


@dataclass(frozen=True)
class MacroConfig:
    """Macro-action settings (the other keyword arguments of the env are `EnvConfig`'s)."""

    max_spawn: int = 8
    """K: spawn actions 1..K (children on the K best frontier nodes); actions are 0..K+1."""
    beam_size: int | None = None
    """Children kept per expansion in the root thread; None draws it as the APR solver does (1..10)."""
    sub_beam_size: int | None = None
    """Children kept per expansion in child threads; None draws it as the APR solver does (beam..15)."""
    illegal_penalty: float = 0.1
    """Reward of a masked (illegal) action, which is a recorded no-op."""
    max_illegal_actions: int = 64
    """Illegal actions per episode before it is truncated (outcome 'illegal_action_limit')."""
    token_cost: float = 0.0
    """Shaping (off by default): minus this per 1,000 tokens a decision generates, logged apart."""

    def __post_init__(self) -> None:
        if isinstance(self.max_spawn, bool) or not isinstance(self.max_spawn, int) or self.max_spawn < 1:
            raise ConfigError(f"max_spawn must be an int >= 1, got {self.max_spawn!r}")
        for name in ("beam_size", "sub_beam_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be None or an int >= 1, got {value!r}")
        if self.illegal_penalty < 0 or self.token_cost < 0:
            raise ConfigError(
                f"illegal_penalty={self.illegal_penalty} and token_cost={self.token_cost} must be >= 0"
            )
        if not isinstance(self.max_illegal_actions, int) or self.max_illegal_actions < 1:
            raise ConfigError(f"max_illegal_actions must be an int >= 1, got {self.max_illegal_actions!r}")

    @property
    def n_actions(self) -> int:
        return self.max_spawn + 2

    @property
    def give_up(self) -> int:
        """The give-up action's index (K + 1)."""
        return self.max_spawn + 1

    def action_name(self, action: int) -> str:
        if action == EXPAND:
            return "expand"
        return "give_up" if action == self.give_up else f"spawn_{action}"


def observation_space(macro: MacroConfig) -> spaces.Dict:
    """A flat Dict of float32 Boxes (SB3 `MultiInputPolicy`); values are clipped into the bounds.

    - ``target`` (1,): target / 100.
    - ``numbers`` (6,): the best frontier node's numbers / 100, largest first, -1 for empty slots.
    - ``frontier`` (1 + K,): frontier size / 64, then the heuristic / 100 of the K best nodes (-1: none).
    - ``budgets`` (5,): fractions left of the threads, of this thread's window (tokens), of the total
      token budget (a character upper bound of the generated tokens), and this thread's expansions
      / 64 and spawns / 8 so far.
    - ``depth`` (1,): the thread's depth; ``thread`` (1,): its id / max_threads.
    """
    k = macro.max_spawn

    def box(low, high, n):
        return spaces.Box(low, high, (n,), np.float32)

    return spaces.Dict(
        {
            "target": box(0.0, 100.0, 1),
            "numbers": box(-1.0, 100.0, MAX_NUMBERS),
            "frontier": box(-1.0, 100.0, 1 + k),
            "budgets": box(0.0, 16.0, 5),
            "depth": box(0.0, 64.0, 1),
            "thread": box(0.0, 1.0, 1),
        }
    )


class ThreadSearch:
    """One thread's best-first search, driven one decision at a time."""

    def __init__(self, start, start_ops: tuple[str, ...], target: int, beam_size: int, key: str):
        self.ctx = SearchContext(target, beam_size, None)  # rng: set per expansion (`expansion`)
        self.start = start
        self.start_ops = start_ops
        self.key = key
        self.heap = [(start.h, start)]
        self.spawned: list = []
        self.expansions = 0
        self.spawns = 0
        self._cache = None  # (node, lines, explore, goal): the best node's expansion, computed ahead
        self._counted = (None, 0, 0)  # (call, characters counted, tokens): `context_tokens`, incremental

    def expansion(self, node) -> tuple[list[str], list, bool]:
        """The lines expanding `node` writes, its nodes to explore, and whether it reached the goal."""
        if self._cache is not None and self._cache[0] is node:
            return self._cache[1:]
        ctx = self.ctx
        out = ctx.lines = []
        if node is not self.start:  # the start node's two lines are the thread's prompt
            out.append(lines.moving(node.id))
            out.append(lines.state(ctx.target_text, node.nums_text, ops_text_of(node)))
        ctx.rng = seeding.make_rng(f"{self.key}#{node.id}")
        explore, goal = expand(ctx, node)
        self._cache = (node, out, explore, goal)
        return out, explore, goal

    def context_tokens(self, call, tokenizer) -> int:
        """Tokens of the call's context for the observation, counting only what was added since.

        Exact for tokenizers whose tokens never cross a line end (the Countdown tokenizer); the
        texts are added a line at a time. The limits themselves are checked exactly (`MacroGame._fits`).
        """
        seen, chars, tokens = self._counted  # chars: of the completion (the prompt is counted once)
        if seen is not call or chars > len(call.completion):
            chars, tokens = 0, tokenizer.count(call.prompt) if call.prompt else 0
        if len(call.completion) > chars:
            tokens += tokenizer.count(call.completion[chars:])
        self._counted = (call, len(call.completion), tokens)
        return tokens

    def best_nodes(self, k: int) -> list:
        """The k best frontier nodes in the order k pops would take them (the heap is left as is)."""
        heap = self.heap[:]
        return [heapq.heappop(heap)[1] for _ in range(min(k, len(heap)))]

    def full_ops(self, node) -> tuple[str, ...]:
        """Operations from the root problem to `node` (the thread's start ops + its own path)."""
        ops = []
        while node.parent is not None:
            ops.append(node.op)
            node = node.parent
        return self.start_ops + tuple(reversed(ops))


def _prefix(thread) -> str:
    """A newline when the thread's context does not end a line (its first text after the prompt)."""
    call = thread.calls[-1]
    tail = call.completion[-1:] or call.prompt[-1:]
    return "\n" if tail and tail != "\n" else ""


class MacroGame:
    """One episode of the macro-action game (see the module docstring).

    Args:
        problem: the Countdown problem.
        config: the environment's `EnvConfig` (protocol must be 'apr').
        macro: the macro-action settings.
        seed: fixes the beam draws and every expansion's shuffle.
    """

    def __init__(self, problem: Problem, config: EnvConfig, macro: MacroConfig, seed: int):
        if config.protocol.name != "apr":
            raise ConfigError(
                f"the macro-action environment writes the APR grammar; protocol {config.protocol.name!r} "
                "is not supported (accepted: 'apr')"
            )
        self.macro = macro
        self.episode = config.new_episode(problem)
        self.tokenizer = self.episode.tokenizer
        self.limits = self.episode.limits
        self.beams = apr_solver.beam_sizes(problem, seed, macro.beam_size, macro.sub_beam_size)
        root_key = apr_solver.root_key(problem, seed)
        self.searches = {0: self._search(start_node("0", problem.target, problem.numbers), (), 0, root_key)}
        self.played: list[tuple[int, Text]] = []
        """Every (thread, text action) played on the episode, in order: the text env replays these."""
        self.decisions: list[tuple[int, int]] = []
        """Every (thread, action index) the policy chose."""
        self._chars = 0  # generated characters + 2 per text: an upper bound of the generated tokens
        self._step_cache: tuple | None = None  # (tid, version, options, masks)
        self._version = 0

    def _search(self, start, start_ops, depth: int, key: str) -> ThreadSearch:
        beam = self.beams[0] if depth == 0 else self.beams[1]
        return ThreadSearch(start, start_ops, self.episode.problem.target, beam, key)

    # ----------------------------------------------------------------------------------
    # What the acting thread may do
    # ----------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.episode.done or self.episode.next_thread is None

    def _options(self, tid: int) -> tuple[list, list[bool]]:
        """(texts per action, masks) for thread `tid`, cached until the game changes."""
        if self._step_cache is not None and self._step_cache[:2] == (tid, self._version):
            return self._step_cache[2], self._step_cache[3]
        macro, ep, lim = self.macro, self.episode, self.limits
        thread = ep.threads[tid]
        search = self.searches[tid]
        pre = _prefix(thread)
        texts: list = [None] * macro.n_actions
        masks = [False] * macro.n_actions
        if search.heap:
            node = search.heap[0][1]
            out, explore, goal = search.expansion(node)
            left = len(search.heap) - 1 + len(explore)
            body = "\n".join(out)
            if not goal and left == 0:
                body += "\n" + grammar.NO_SOLUTION
            texts[EXPAND] = Text(pre + body + "\n", partial=not goal and left > 0)
            masks[EXPAND] = self._fits(thread, texts[EXPAND].text)
            best = search.best_nodes(macro.max_spawn)
            prompts_fit = thread.depth < lim.max_depth  # and every child's prompt so far fits its window
            block = grammar.calling_lines([n.id for n in best], thread.depth + 1)  # [open, starts..., close]
            for k in range(1, len(best) + 1):
                texts[k] = Text(pre + "\n".join(block[: k + 1]) + "\n" + block[-1] + "\n")
                prompts_fit = prompts_fit and self._prompt_fits(search, best[k - 1])
                masks[k] = (
                    prompts_fit
                    and k <= lim.max_children_per_spawn
                    and len(ep.threads) + k <= lim.max_threads
                    and self._fits(thread, texts[k].text)
                )
        texts[macro.give_up] = Text(pre + grammar.NO_SOLUTION + "\n")
        masks[macro.give_up] = self._fits(thread, texts[macro.give_up].text)
        self._step_cache = (tid, self._version, texts, masks)
        return texts, masks

    def masks(self, tid: int) -> np.ndarray:
        """Legal actions of thread `tid` (bool array of length K + 2)."""
        return np.array(self._options(tid)[1], dtype=bool)

    def decision_text(self, tid: int, action: int) -> Text | None:
        """The text action `action` would play for thread `tid`, legal or not (None: impossible)."""
        return self._options(tid)[0][action]

    def _fits(self, thread, text: str) -> bool:
        """Would `text` fit the thread's window and the total token budget (`Episode._append`'s rules)?"""
        call = thread.calls[-1]
        window = self.limits.context_window
        exact = None
        if len(call.prompt) + len(call.completion) + len(text) + 2 > window:
            count_tokens([thread], self.tokenizer)
            new = self.tokenizer.count(text)
            if new > window - call.prompt_tokens - call.completion_tokens:
                return False
            exact = call.completion_tokens + new
        budget = self.limits.total_token_budget
        if self._chars + len(text) + 2 <= budget:
            return True
        count_tokens(self.episode.threads, self.tokenizer)
        others = sum(c.completion_tokens for t in self.episode.threads for c in t.calls if c is not call)
        mine = exact if exact is not None else self.tokenizer.count(call.completion + text)
        return others + mine <= budget

    def _prompt_fits(self, search: ThreadSearch, node) -> bool:
        """Does the child prompt of `node` fit a window? (`ops_text_of` holds the ops from the root.)"""
        prompt = lines.node_prompt(node.id, search.ctx.target_text, node.nums_text, ops_text_of(node))
        window = self.limits.context_window
        return len(prompt) + 2 <= window or self.tokenizer.count(prompt) <= window

    # ----------------------------------------------------------------------------------
    # Forced moves and decisions
    # ----------------------------------------------------------------------------------

    def forced_text(self, tid: int) -> Text | None:
        """The move thread `tid` must make without a choice, or None when it has a decision."""
        thread = self.episode.threads[tid]
        search = self.searches[tid]
        if search.spawned:
            answers = self._join_answers(thread)
            for node, answer in zip(search.spawned, answers):
                if answer is not None:
                    out = [grammar.goal_line(search.ctx.target, search.ctx.target)]
                    out += path_lines(search.ctx, node)[:-1]  # the answer starts at the child's node
                    out.append(answer.strip("\n"))
                    return Text(_prefix(thread) + "\n".join(out) + "\n")
            search.spawned = []  # no child succeeded: the search goes on without those nodes
        if not search.heap:
            return Text(_prefix(thread) + grammar.NO_SOLUTION + "\n")
        if not any(self._options(tid)[1]):
            return self._options(tid)[0][self.macro.give_up]  # nothing fits: the episode cuts it
        return None

    def _join_answers(self, thread) -> list[str | None]:
        """Per spawned node, in spawn order, the verified answer its child joined (None: none)."""
        ep = self.episode
        group = ep.groups[thread.groups[-1]]
        by_pos = {ep.threads[c].position: ep.threads[c].result for c in group.children}
        return [None if by_pos.get(pos) is None else by_pos[pos].answer for pos in range(len(group.labels))]

    def play_forced(self, tid: int) -> Text | None:
        """Play thread `tid`'s forced move, if it has one; return its text (None: it has a decision)."""
        forced = self.forced_text(tid)
        if forced is not None:
            self._play(tid, forced, None)
        return forced

    def advance(self) -> int | None:
        """Play forced moves until a thread has a decision; return its id (None: the episode is over)."""
        while not self.done:
            tid = self.episode.next_thread
            if self.play_forced(tid) is None:
                return tid
        return None

    def decide(self, tid: int, action: int) -> Text:
        """Play legal action `action` for thread `tid` (the caller checks `masks`); return its text."""
        text = self.decision_text(tid, action)
        if text is None or not self._options(tid)[1][action]:
            raise ValueError(
                f"action {action} ({self.macro.action_name(action)}) is not legal for thread {tid}"
            )
        self.decisions.append((tid, action))
        self._play(tid, text, action)
        return text

    def _play(self, tid: int, text: Text, action: int | None) -> str:
        search = self.searches[tid]
        best = search.best_nodes(action) if action not in (None, EXPAND, self.macro.give_up) else []
        if action == EXPAND:
            node = heapq.heappop(search.heap)[1]
            _, explore, goal = search.expansion(node)
            search._cache = None
            search.expansions += 1
            if not goal:
                for child in explore:
                    heapq.heappush(search.heap, (child.h, child))
        elif best:
            for _ in best:
                heapq.heappop(search.heap)
            search.spawned = best
            search.spawns += 1
        elif action is None:
            search.spawned = []
        self._chars += len(text.text) + 2
        self._version += 1
        self.played.append((tid, text))
        event = self.episode.act(tid, text)
        if event == "spawn" and best:
            ep = self.episode
            thread = ep.threads[tid]
            group = ep.groups[thread.groups[-1]]
            by_label = {n.id: n for n in best}
            for cid in group.children:
                child = ep.threads[cid]
                node = by_label[child.label]
                start = start_node(node.id, search.ctx.target, node.nums, search.full_ops(node))
                key = seeding.child_key(search.key, node.id)
                self.searches[cid] = self._search(start, search.full_ops(node), child.depth, key)
        return event

    # ----------------------------------------------------------------------------------
    # Observations
    # ----------------------------------------------------------------------------------

    def observe(self, tid: int | None) -> dict[str, np.ndarray]:
        """The observation of thread `tid` (see `observation_space`); zeros when `tid` is None."""
        k = self.macro.max_spawn
        obs = {
            "target": np.zeros(1, np.float32),
            "numbers": np.full(MAX_NUMBERS, -1.0, np.float32),
            "frontier": np.full(1 + k, -1.0, np.float32),
            "budgets": np.zeros(5, np.float32),
            "depth": np.zeros(1, np.float32),
            "thread": np.zeros(1, np.float32),
        }
        if tid is None:
            return obs
        ep, lim = self.episode, self.limits
        thread = ep.threads[tid]
        search = self.searches[tid]
        obs["target"][0] = min(ep.problem.target / VALUE_SCALE, 100.0)
        best = search.best_nodes(k)
        if best:
            nums = sorted(best[0].nums, reverse=True)[:MAX_NUMBERS]
            obs["numbers"][: len(nums)] = np.minimum(np.array(nums, np.float32) / VALUE_SCALE, 100.0)
        obs["frontier"][0] = min(len(search.heap) / 64.0, 100.0)
        for i, node in enumerate(best):
            obs["frontier"][1 + i] = min(node.h / VALUE_SCALE, 100.0)
        call = thread.calls[-1]
        used = search.context_tokens(call, self.tokenizer)
        obs["budgets"][:] = np.clip(
            [
                1.0 - len(ep.threads) / lim.max_threads,
                1.0 - used / lim.context_window,
                1.0 - self._chars / lim.total_token_budget,
                search.expansions / 64.0,
                search.spawns / 8.0,
            ],
            0.0,
            16.0,
        )
        obs["depth"][0] = min(thread.depth, 64)
        obs["thread"][0] = tid / lim.max_threads
        return obs

    def thread_running(self, tid: int) -> bool:
        return self.episode.threads[tid].status is Status.RUNNING
