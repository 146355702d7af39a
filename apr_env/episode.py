"""The rules of threads for one problem: act, spawn, join, limits, verification, scheduling.

`Episode` is what both environments (Gymnasium and PettingZoo) and the runtime's runner
drive; there is no second implementation of spawn/join anywhere. A policy acts for one
running thread at a time (`act`), with any value as the action: text, a structured action
(`apr_env.actions`) or garbage. Every outcome is recorded on the tree; nothing raises.

Life of an action (thread t, running):

1. Coerce: str / dict / dataclass -> action; anything else ends t as ``invalid_action_*``.
   Plain text is sanitised to printable ASCII, tab and newline (other characters become
   ``?``, recorded as a format error) and gets the protocol's line separator (a ``\n`` in
   front when neither the context ends a line nor the action starts one; the episode wrote
   it, so the metrics count it as prefill, not generated). A structured action is rendered
   in the protocol's grammar first; its rendering, line breaks included, counts as generated.
2. Context window: if t's prompt + generated text exceed `limits.context_window` tokens,
   the text is cut at the window and t fails with reason ``context_window``. The text is
   counted and cut within a prefix bounded by the room left (`TextTokenizer.count_upto`,
   `encode_head`), so a megabyte action costs about what a window-sized one does.
3. Spawn: if the protocol parses a spawn request at the end of the text, children are
   created in spawn order (subject to depth, per-spawn and thread limits; refused or invalid
   requests are recorded and join as 'no solution') and t waits. Otherwise t finishes.
4. Join: when every child of a spawn has ended, each child's claimed answer is verified
   against the child's start state; only verified answers are joined (a false claim joins
   as 'no solution' and is counted). The protocol rewrites the parent's context and the
   parent runs again.
   Straggler control (`SpawnRequest.quorum` / `race`): the group joins as soon as `quorum`
   children have ended or one child's claim verifies; the children still active are then
   cancelled with their subtrees (reason ``cancelled``: what they generated counts in total
   tokens, they act no more, the critical path ends at the join, and an action still arriving
   for them is ignored without a format error).
   Talking threads (`Protocol.deliver`: board, messages, subscriptions): what a child sends
   is inserted into running recipients' contexts at once (prefill) and held for a waiting one
   (a parent) until it resumes, after its join text.
5. The episode ends when the root ends (its answer is verified against the problem), or is
   truncated when generated tokens exceed `limits.total_token_budget`.

Scheduling (`runnable`): first-in first-out. The root starts; children enter the queue in
spawn order; a parent re-enters at the back when its join completes; a thread that made a
partial action moves to the back.

The module is over 400 lines because it is the one rules engine: spawn, join, limits and
verification read each other's state, and splitting them would spread one lifecycle over
several files.

Token counts are exact but lazy: while a thread's text is shorter in characters than the
window, it cannot exceed the window in tokens (every token of printable ASCII text is at
least one character), so the tokenizer runs only near a limit and once, for the
final metrics.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from apr_env.actions import Answer, Join, Spawn, Text, coerce_action
from apr_env.limits import Limits
from apr_env.metrics import Metrics, compute_metrics, count_tokens
from apr_env.problem import Problem
from apr_env.protocols.base import Protocol, get_protocol
from apr_env.rewards import RewardConfig, compute_reward
from apr_env.tokenizer import load_tokenizer
from apr_env.tree import Call, ChildResult, SpawnGroup, Status, Thread, compact_tree
from apr_env.verifier import Verdict, verify

_PRINTABLE = bytes(range(0x20, 0x7F)) + b"\n\t"
_MASK = bytes(b if b in _PRINTABLE else ord("?") for b in range(256))


def _printable(text: str) -> bool:
    """Only printable ASCII, tab and newline? (C-speed: deleting the allowed bytes must leave nothing)."""
    return text.isascii() and not text.encode("ascii").translate(None, _PRINTABLE)


def _mask(text: str) -> str:
    """`text` with every character but printable ASCII, tab and newline replaced by ``?``, one for one.

    C-speed (an ASCII encode that writes ``?`` for each other code point, then a byte table), so
    a megabyte action costs milliseconds, as `_printable` does.
    """
    return text.encode("ascii", "replace").translate(_MASK).decode("ascii")


def _tail(thread: Thread) -> str:
    """The last character of the thread's context ('' when empty), without building the context."""
    call = thread.calls[-1]
    return call.completion[-1:] or call.prompt[-1:]


_NO_ANSWER = Verdict(False, "no_answer", "the thread claims no answer", "none")


class Episode:
    """One problem played by threads under a protocol.

    Args:
        problem: the Countdown problem of the root thread.
        protocol: a `Protocol` instance or registered name.
        limits: budgets (`apr_env.limits.Limits`); defaults are the official 4,096-token window.
        tokenizer: anything `apr_env.tokenizer.load_tokenizer` accepts (default: the package's
            Countdown tokenizer).
        reward: reward configuration (`apr_env.rewards.RewardConfig`).
    """

    def __init__(
        self,
        problem: Problem,
        protocol: Protocol | str = "apr",
        *,
        limits: Limits | None = None,
        tokenizer=None,
        reward: RewardConfig | None = None,
    ):
        self.problem = problem
        self.protocol = get_protocol(protocol)
        self.limits = limits or Limits()
        self.tokenizer = load_tokenizer(tokenizer)
        self.reward_config = reward or RewardConfig()
        # only protocols that override `board_update` or `deliver` send anything; skip the call otherwise
        kind = type(self.protocol)
        self._shares_board = (
            kind.board_update is not Protocol.board_update or kind.deliver is not Protocol.deliver
        )
        self._inbox: dict[int, list[str]] = {}  # waiting thread id -> deliveries held until it resumes
        root = Thread(
            id=0,
            parent=None,
            depth=0,
            start=problem,
            label="0",
            calls=[Call(prompt=self.protocol.root_prompt(problem))],
        )
        self.threads: list[Thread] = [root]
        self.groups: list[SpawnGroup] = []
        self._queue: deque[int] = deque([0])
        self.format_errors: list[tuple[int, str]] = []
        self.undelivered: list[tuple[int, str]] = []
        """(sender, code) of deliveries that were recorded no-ops (the recipient had ended)."""
        self.done = False
        self.truncated = False
        self.outcome: str | None = None
        self.answer: str | None = None
        self.verdict: Verdict | None = None
        self._generated_bound = 0  # upper bound on generated tokens so far (chars or exact ids)
        self._metrics: Metrics | None = None
        if not self._fits(root):
            self._end_episode("prompt_exceeds_context_window", truncated=True)

    # ----------------------------------------------------------------------------------
    # Queries
    # ----------------------------------------------------------------------------------

    @property
    def runnable(self) -> list[int]:
        """Ids of running threads, in scheduling order (head acts next)."""
        return list(self._queue)

    @property
    def next_thread(self) -> int | None:
        """The thread that acts next in sequential play (the queue's head), or None when none can."""
        return self._queue[0] if self._queue else None

    def observation(self, tid: int) -> str:
        """The context thread `tid` would continue: its current prompt plus what it generated in this call."""
        return self.threads[tid].context

    @property
    def metrics(self) -> Metrics:
        """Exact metrics (tokens counted on first access; cached once the episode is over)."""
        if self._metrics is not None:
            return self._metrics
        metrics = compute_metrics(self.threads, self.groups, self.tokenizer)
        if self.done:
            self._metrics = metrics
        return metrics

    def reward(self) -> dict[str, float]:
        """Reward components of the episode so far (0 until the root's answer verifies)."""
        m = self.metrics
        correct = bool(self.verdict and self.verdict.correct)
        return compute_reward(
            correct, m.critical_path_tokens, m.total_tokens, len(self.format_errors), self.reward_config
        )

    def summary(self) -> dict:
        """Outcome, answer, verdict, metrics, reward components and the compact tree (JSON-friendly)."""
        return {
            "problem": self.problem.info(),
            "protocol": self.protocol.name,
            "outcome": self.outcome,
            "truncated": self.truncated,
            "correct": bool(self.verdict and self.verdict.correct),
            "answer": self.answer,
            "verdict": None if self.verdict is None else self.verdict.code,
            "format_errors": [code for _, code in self.format_errors],
            "undelivered": len(self.undelivered),
            "metrics": self.metrics.to_dict(),
            **{f"reward_{k}" if k != "reward" else k: v for k, v in self.reward().items()},
            "tree": compact_tree(self.threads, self.groups),
        }

    # ----------------------------------------------------------------------------------
    # Acting
    # ----------------------------------------------------------------------------------

    def act(self, tid: int, action) -> str:
        """Apply `action` as thread `tid`'s next generation; returns the event name.

        Events: 'spawn', 'finish', 'partial', 'fail', and 'ignored' (the episode is over,
        or `tid` is not a running thread: a waiting parent's or a finished thread's action
        is ignored and recorded).
        """
        if self.done or not isinstance(tid, int) or not 0 <= tid < len(self.threads):
            return "ignored"
        thread = self.threads[tid]
        if thread.status is not Status.RUNNING:
            if thread.reason == "cancelled":  # the episode's decision, not the policy's mistake
                return "ignored"
            self.format_errors.append((tid, f"action_while_{thread.status.value}"))
            return "ignored"
        if type(action) is str:  # plain text, the usual action: no action object to build
            act, raw, ids = None, action, None
        else:
            act = coerce_action(action)
            if isinstance(act, str):
                self._end_thread(thread, Status.FAILED, act)
                return "fail"
            raw, ids = act.text, (act.token_ids if isinstance(act, Text) else None)
        text = self._clean(thread, raw)
        separators: list[int] = []  # offsets in `text` of inserted line separators (prefill, not generated)
        if ids is None:  # plain text gets the protocol's line separator; token-id actions stay as sampled
            text = self._separate(_tail(thread), text, separators)
        if isinstance(act, (Spawn, Answer)):
            if isinstance(act, Spawn):
                rendered, kind = self.protocol.render_spawn(thread, list(act.labels)), "spawn"
            else:
                rendered, kind = self.protocol.render_answer(thread, act.answer), "answer"
            if rendered is None:  # the protocol has no grammar for this structured action
                self._end_thread(thread, Status.FAILED, f"{kind}_not_supported")
                return "fail"
            if text:  # the line break between the action's text and its rendering belongs to the action
                text += self.protocol.separate(text[-1:], rendered)
            else:  # `separate` looks only at the context's last character: no need to build the context
                text = self._separate(_tail(thread), rendered, separators)
        call = thread.calls[-1]
        if not text and not ids:  # nothing generated: the thread ends (every other action adds a token)
            self._end_thread(thread, Status.FINISHED, None)
            return "finish"
        # the queue head is `tid` in sequential play; in parallel play it may sit anywhere
        self._queue.remove(tid)
        if not self._append(thread, call, text, ids, act.meta if isinstance(act, Text) else None, separators):
            return "fail"
        if self.done:
            return "fail"
        if thread.parent is not None and self._shares_board:
            self._share(thread, text)
        if isinstance(act, Text) and act.partial:
            self._queue.append(tid)
            return "partial"
        if isinstance(act, (Answer, Join)):
            self._end_thread(thread, Status.FINISHED, None, queued=False)
            return "finish"
        request = self.protocol.parse_spawn(thread)
        if request is None:
            self._end_thread(thread, Status.FINISHED, None, queued=False)
            return "finish"
        self._spawn(thread, request)
        return "spawn"

    def truncate(self, tid: int) -> str:
        """End running thread `tid` as cut off by its context window, with nothing more generated.

        For a runtime whose server refused the thread's next request for length (its real
        context is shorter than `limits.context_window`): the thread gets the outcome it would
        get had it run out of room itself (a child's result says ``context_window``; the root's
        ends the episode as truncated). Returns 'fail', or 'ignored' as `act` does.
        """
        if self.done or not isinstance(tid, int) or not 0 <= tid < len(self.threads):
            return "ignored"
        thread = self.threads[tid]
        if thread.status is not Status.RUNNING:
            self.format_errors.append((tid, f"action_while_{thread.status.value}"))
            return "ignored"
        self._end_thread(thread, Status.FAILED, "context_window")
        return "fail"

    def act_parallel(self, actions: dict[int, object]) -> dict[int, str]:
        """One parallel step: every thread running at the start of the step acts (ascending id order).

        Threads without an action in `actions` make no move this step. Actions for threads
        that are not running are ignored and recorded. Returns the event per acting id.
        """
        running = sorted(self._queue)
        running_set = set(running)
        # only actions for threads that are not running are decided on their status at the start
        status_at_start = {
            tid: self.threads[tid].status
            for tid in actions
            if tid not in running_set and isinstance(tid, int) and 0 <= tid < len(self.threads)
        }
        events = {}
        for tid in running:
            if self.done:
                break
            if tid in actions:
                events[tid] = self.act(tid, actions[tid])
        for tid in actions:
            if tid in events or tid in running_set:
                continue
            # decided on the state at the start of the step: a parent resumed by a join in this
            # step, or a child spawned in it, acts from the next step on
            status = status_at_start.get(tid)
            if status is not None and not self.done:
                self.format_errors.append((tid, f"action_while_{status.value}"))
            events[tid] = "ignored"
        return events

    # ----------------------------------------------------------------------------------
    # Internals
    # ----------------------------------------------------------------------------------

    def _clean(self, thread: Thread, text: str) -> str:
        """Printable ASCII (+ tab, newline) only, so contexts stay inside the observation space."""
        if not _printable(text):
            self.format_errors.append((thread.id, "unprintable_characters"))
            text = _mask(text)
        return text

    def _separate(self, tail: str, text: str, separators: list[int]) -> str:
        """`text` with the protocol's line separator in front if it needs one (`Protocol.separate`);
        the offset of each inserted ``\n`` goes to `separators` (they are prefill, not generated)."""
        separated = self.protocol.separate(tail, text)
        separators.extend(range(len(separated) - len(text)))
        return separated

    def _fits(self, thread: Thread) -> bool:
        """Does the prompt of the thread's latest call fit its context window?

        Counted the way the metrics count it (a resumed thread's prompt builds on its earlier
        calls' counts), so the check and the reported context agree and nothing is counted twice.
        """
        call = thread.calls[-1]
        if len(call.prompt) + 2 <= self.limits.context_window:  # every token covers >= 1 character
            return True
        count_tokens([thread], self.tokenizer)
        return call.prompt_tokens <= self.limits.context_window

    def _append(
        self,
        thread: Thread,
        call: Call,
        text: str,
        ids,
        meta: dict | None = None,
        separators: Sequence[int] = (),
    ) -> bool:
        """Add generated text to the call, enforcing the window and the token budget. False if t ended.

        `separators`: offsets in `text` of the line separators the episode inserted (those the
        window cut leaves are recorded on the call, so they count as prefill)."""
        window = self.limits.context_window
        new_len = len(ids) if ids is not None else len(text)
        # printable ASCII: every token is at least one character, so this bounds the tokens (+2 for
        # tokenizers that add a prefix piece)
        bound_ok = ids is None and len(call.prompt) + len(call.completion) + len(text) + 2 <= window
        cut = False
        if not bound_ok:
            count_tokens([thread], self.tokenizer)  # incremental: builds on the thread's earlier calls
            done = call.completion_tokens
            room = max(window - call.prompt_tokens - done, 0)
            # counted and cut within a prefix bounded by the room left, whatever the text's length
            new_len = len(ids) if ids is not None else self.tokenizer.count_upto(text, room)
            if new_len > room:
                keep = list(ids[:room]) if ids is not None else self.tokenizer.encode_head(text, room)
                text = self.tokenizer.decode(keep)
                ids = keep if ids is not None else None
                new_len, cut = len(keep), True
            exact_total = done + new_len
        else:
            exact_total = None
        if separators:
            base = len(call.completion)
            call.separators += tuple(base + o for o in separators if o < len(text))
            call.separator_tokens = None  # counted with the call's other counts
        call.completion += text
        if meta:
            call.meta = {**(call.meta or {}), **meta} if call.meta else dict(meta)
        if ids is not None:
            call.completion_ids = [*(call.completion_ids or ()), *ids]
        elif call.completion_ids is not None:  # mixing text into an id-exact call: fall back to counting
            call.completion_ids = None
        call.completion_tokens = exact_total  # known exactly only when we had to count
        self._generated_bound += new_len
        if cut:
            self._end_thread(thread, Status.FAILED, "context_window", queued=False)
            return False
        if self._generated_bound > self.limits.total_token_budget:
            count_tokens(self.threads, self.tokenizer)
            generated = sum(c.generated_tokens for t in self.threads for c in t.calls)
            self._generated_bound = generated
            if generated > self.limits.total_token_budget:
                for t in self.threads:
                    if t.active:
                        t.status, t.reason = Status.FAILED, "token_budget"
                self._queue.clear()
                self._end_episode("token_budget", truncated=True)
                return False
        return True

    def _share(self, thread: Thread, text: str) -> None:
        """Protocols whose threads talk (board, messages, subscriptions): insert what `thread` sent into
        running recipients' contexts now, and hold it for waiting ones until they resume."""
        parent = self.threads[thread.parent]
        siblings = [self.threads[c] for c in self.groups[parent.groups[-1]].children]
        deliveries, errors = self.protocol.deliver(thread, text, siblings, parent)
        for code in errors:
            self.format_errors.append((thread.id, code))
        for d in deliveries:
            recipient = d.recipient
            if recipient.status is Status.WAITING:
                self._inbox.setdefault(recipient.id, []).append(d.text)
            elif recipient.status is not Status.RUNNING:  # a race the sender cannot see: not its error
                self.undelivered.append((thread.id, "message_to_ended_thread"))
            else:
                prompt = recipient.context + d.text
                recipient.calls.append(Call(prompt=prompt, inserted=d.text, kept=len(recipient.context)))
                if not self._fits(recipient):
                    self._end_thread(recipient, Status.FAILED, "context_window")

    def _spawn(self, parent: Thread, request) -> None:
        for code in request.format_errors:
            self.format_errors.append((parent.id, code))
        group = SpawnGroup(
            parent=parent.id, call_index=len(parent.calls) - 1, request_start=request.request_start
        )
        group.quorum, group.race = request.quorum, request.race
        gi = len(self.groups)
        self.groups.append(group)
        parent.groups.append(gi)
        parent.status = Status.WAITING
        for pos, spec in enumerate(request.children):
            group.labels.append(spec.label)
            reason = spec.error
            if reason is None and parent.depth >= self.limits.max_depth:
                reason = "max_depth"
            elif reason is None and pos >= self.limits.max_children_per_spawn:
                reason = "max_children_per_spawn"
            elif reason is None and len(self.threads) >= self.limits.max_threads:
                reason = "max_threads"
            if reason is not None:
                group.rejected[pos] = reason
                if spec.error is not None:
                    self.format_errors.append((parent.id, spec.error))
                continue
            child = Thread(
                id=len(self.threads),
                parent=parent.id,
                depth=parent.depth + 1,
                start=spec.start,
                label=spec.label,
                calls=[Call(prompt=spec.prompt)],
                position=pos,
            )
            self.threads.append(child)
            group.children.append(child.id)
            if self._fits(child):
                self._queue.append(child.id)
                group.open += 1
            else:  # ended here, not via _end_thread: the group must not join before all children exist
                child.status, child.reason = Status.FAILED, "prompt_exceeds_context_window"
                child.result = self._child_result(child)
        self._maybe_join(gi)

    def _child_result(self, thread: Thread) -> ChildResult:
        if thread.status is Status.FAILED:
            return ChildResult(None, False, False, thread.reason or "failed")
        answer = self.protocol.extract_answer(thread)
        if answer is None:
            return ChildResult(None, False, False, "no_answer")
        verdict = verify(self.protocol.child_problem(thread), answer)
        return ChildResult(answer if verdict.correct else None, True, verdict.correct, verdict.code, answer)

    def _end_thread(self, thread: Thread, status: Status, reason: str | None, *, queued: bool = True) -> None:
        if queued and thread.id in self._queue:
            self._queue.remove(thread.id)
        was_active = thread.active
        thread.status = status
        if thread.parent is None:
            if status is Status.FAILED:
                thread.reason = reason
                self._end_episode(reason or "failed", truncated=reason == "context_window")
                return
            self.answer = self.protocol.extract_answer(thread)
            self.verdict = _NO_ANSWER if self.answer is None else verify(self.problem, self.answer)
            thread.result = ChildResult(
                self.answer, self.answer is not None, self.verdict.correct, self.verdict.code
            )
            thread.reason = "answer" if self.answer is not None else "no_answer"
            self._end_episode("correct" if self.verdict.correct else self.verdict.code)
            return
        thread.result = self._child_result(thread)
        thread.reason = reason or ("answer" if thread.result.claimed else "no_answer")
        if thread.result.claimed and not thread.result.verified:
            self.format_errors.append((thread.id, "false_claim"))
        gi = self.threads[thread.parent].groups[-1]
        if was_active:
            self.groups[gi].open -= 1
        self._maybe_join(gi)

    def _maybe_join(self, gi: int) -> None:
        group = self.groups[gi]
        if group.joined:
            return
        if group.open and (group.race or group.quorum is not None) and self._early_join_due(group):
            for cid in group.children:
                if self.threads[cid].active:
                    self._cancel(self.threads[cid])
                    group.cancelled.append(cid)
            group.open = 0
        if group.open:
            return
        group.joined = True
        by_pos = {self.threads[c].position: self.threads[c].result for c in group.children}
        results = [
            by_pos.get(pos) or ChildResult(None, False, False, group.rejected.get(pos, "rejected"))
            for pos in range(len(group.labels))
        ]
        parent = self.threads[group.parent]
        kept, inserted = self.protocol.join(parent, group, group.request_start, results)
        held = self._inbox.pop(parent.id, None)
        if held:  # what was sent to the parent while it waited arrives after the join text
            inserted += "".join(held)
        parent.calls.append(Call(prompt=kept + inserted, inserted=inserted, kept=len(kept)))
        parent.status = Status.RUNNING
        if self._fits(parent):
            self._queue.append(parent.id)
        else:
            self._end_thread(parent, Status.FAILED, "context_window", queued=False)

    def _early_join_due(self, group: SpawnGroup) -> bool:
        """Straggler control: has a child's claim verified (race), or have `quorum` children ended?"""
        ended = [self.threads[c] for c in group.children if not self.threads[c].active]
        if group.race and any(t.result is not None and t.result.verified for t in ended):
            return True
        return group.quorum is not None and len(ended) >= group.quorum

    def _cancel(self, thread: Thread) -> None:
        """End an active thread and its whole subtree as ``cancelled``: what it generated so far stays
        (total tokens count it), it acts no more, and its group joins without it."""
        for gi in thread.groups:
            for cid in self.groups[gi].children:
                if self.threads[cid].active:
                    self._cancel(self.threads[cid])
        if thread.id in self._queue:
            self._queue.remove(thread.id)
        self._inbox.pop(thread.id, None)
        thread.status, thread.reason = Status.FAILED, "cancelled"
        thread.result = ChildResult(None, False, False, "cancelled")

    def _end_episode(self, outcome: str, *, truncated: bool = False) -> None:
        for t in self.threads:
            if t.active:
                t.status, t.reason = Status.FAILED, t.reason or "episode_over"
        self._queue.clear()
        self.done = True
        self.truncated = truncated
        self.outcome = outcome
