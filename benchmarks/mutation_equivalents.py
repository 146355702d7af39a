"""Equivalent mutants of the core modules: changes no input can tell from the original.

`benchmarks/mutation.py` sets these apart from the survivors when it scores a module. Each
entry names the module, the function (``Class.method`` or ``function``), the exact line(s) the
mutant removes and adds (stripped, as in ``mutmut show``), and why no test can kill it. An
entry that no longer matches a mutant (the line was edited) simply stops applying, and the
mutant counts as a survivor again until it is killed or re-argued here.
"""

from __future__ import annotations

_EMPTY_TEXT = (
    "the empty text has no tokens for every tokenizer the library loads (TextTokenizer.encode adds no "
    "special token unless asked; '' encodes to no ids), so skipping the tokenizer for it only saves a call"
)
_STRICTER_SHORTCUT = (
    "a stricter character bound only sends more texts to the exact token count, which decides the same "
    "(the bound is a shortcut: printable ASCII has at least one character per token, +2 for a prefix piece)"
)
_OFF_THE_QUEUE = (
    "the thread is not in the run queue here (act took the acting thread off it; a resumed parent was "
    "waiting), so asking _end_thread to remove it or not changes nothing"
)
_LAST_CHARACTER = "Protocol.separate looks only at the tail's last character and whether it is empty"
_LAST_THREAD = (
    "the thread with the largest id has no children (a child's id is larger than its parent's), "
    "so visiting it or not, or twice, adds nothing to any critical path"
)

EQUIVALENT: list[dict[str, str]] = [
    # ---------------------------------------------------------------- verifier
    {
        "module": "verifier",
        "function": "_apply",
        "removed": "return result.numerator if result.denominator == 1 else result",
        "added": "return result.numerator if (result.denominator == 1) and False else result",
        "why": "an integral Fraction compares, prints and computes like the int it equals",
    },
    {
        "module": "verifier",
        "function": "_unavailable",
        "removed": "missing = a if a not in current or (a == b and current.count(a) < 2) else b",
        "added": "missing = a if a not in current or (a == b and current.count(None) < 2) else b",
        "why": "with a == b this is only reached when fewer than two copies of a are left (otherwise the "
        "operation was available), and then either condition names a",
    },
    {
        "module": "verifier",
        "function": "_unavailable",
        "removed": "missing = a if a not in current or (a == b and current.count(a) < 2) else b",
        "added": "missing = a if a not in current or (a == b and current.count(a) <= 2) else b",
        "why": "with a == b this is only reached when fewer than two copies of a are left (otherwise the "
        "operation was available), and then either condition names a",
    },
    {
        "module": "verifier",
        "function": "_unavailable",
        "removed": "missing = a if a not in current or (a == b and current.count(a) < 2) else b",
        "added": "missing = a if a not in current or (a == b and current.count(a) < 3) else b",
        "why": "with a == b this is only reached when fewer than two copies of a are left (otherwise the "
        "operation was available), and then either condition names a",
    },
    {
        "module": "verifier",
        "function": "verify_expression",
        "removed": "expect_operand = False",
        "added": "expect_operand = None",
        "why": "`expect_operand` is only tested for truth, and None is false like False",
    },
    {
        "module": "verifier",
        "function": "verify_path",
        "removed": 'current_text = ", ".join(map(str, current))',
        "added": "current_text = None",
        "why": "the text of the current numbers is a shortcut: when the stated list's text differs from it, "
        "the parsed multiset comparison decides",
    },
    {
        "module": "verifier",
        "function": "verify_path",
        "removed": 'current_text = ", ".join(map(str, current))',
        "added": 'current_text = "XX, XX".join(map(str, current))',
        "why": "the text of the current numbers is a shortcut: when the stated list's text differs from it, "
        "the parsed multiset comparison decides",
    },
    {
        "module": "verifier",
        "function": "verify_path",
        "removed": "target_text = str(target)",
        "added": "target_text = None",
        "why": "the target's text is a shortcut: when a stated target's text differs from it, int() decides",
    },
    {
        "module": "verifier",
        "function": "verify_path",
        "removed": "target_text = str(target)",
        "added": "target_text = str(None)",
        "why": "the target's text is a shortcut: when a stated target's text differs from it, int() decides",
    },
    {
        "module": "verifier",
        "function": "verify_path",
        "removed": "last_op = None  # (a, op, b, c) strings of the last replayed operation",
        "added": 'last_op = ""  # (a, op, b, c) strings of the last replayed operation',
        "why": "last_op is only compared with a 4-tuple of strings, which equals neither None nor ''",
    },
    {
        "module": "verifier",
        "function": "verify_path",
        "removed": "if long_number and _LONG_NUMBER.search(line):",
        "added": "if long_number or _LONG_NUMBER.search(line):",
        "why": "long_number is whether the whole text holds such a run; when it does not, no line does, so "
        "searching each line finds nothing (the flag only skips the per-line search)",
    },
    # ---------------------------------------------------------------- episode
    {
        "module": "episode",
        "function": "_printable",
        "removed": 'return text.isascii() and not text.encode("ascii").translate(None, _PRINTABLE)',
        "added": 'return text.isascii() and not text.encode("ASCII").translate(None, _PRINTABLE)',
        "why": "codec names are case-insensitive: 'ASCII' is the same codec",
    },
    {
        "module": "episode",
        "function": "_mask",
        "removed": 'return text.encode("ascii", "replace").translate(_MASK).decode("ascii")',
        "added": 'return text.encode("ASCII", "replace").translate(_MASK).decode("ascii")',
        "why": "codec names are case-insensitive: 'ASCII' is the same codec",
    },
    {
        "module": "episode",
        "function": "_mask",
        "removed": 'return text.encode("ascii", "replace").translate(_MASK).decode("ascii")',
        "added": 'return text.encode("ascii", "replace").translate(_MASK).decode("ASCII")',
        "why": "codec names are case-insensitive: 'ASCII' is the same codec",
    },
    {
        "module": "episode",
        "function": "Episode._cancel",
        "removed": "self._inbox.pop(thread.id, None)",
        "added": "self._inbox.pop(None, None)",
        "why": "what was held for a cancelled thread is never read: only a join resumes a waiting thread, "
        "and a cancelled thread's children are cancelled too, so its group never joins",
    },
    {
        "module": "episode",
        "function": "Episode.act",
        "removed": "text += self.protocol.separate(text[-1:], rendered)",
        "added": "text += self.protocol.separate(text[-2:], rendered)",
        "why": _LAST_CHARACTER,
    },
    {
        "module": "episode",
        "function": "_tail",
        "removed": "return call.completion[-1:] or call.prompt[-1:]",
        "added": "return call.completion[-2:] or call.prompt[-1:]",
        "why": _LAST_CHARACTER,
    },
    {
        "module": "episode",
        "function": "_tail",
        "removed": "return call.completion[-1:] or call.prompt[-1:]",
        "added": "return call.completion[-1:] or call.prompt[-2:]",
        "why": _LAST_CHARACTER,
    },
    {
        "module": "episode",
        "function": "Episode.__init__",
        "removed": "self._generated_bound = 0  # upper bound on generated tokens so far (chars or exact ids)",
        "added": "self._generated_bound = 1  # upper bound on generated tokens so far (chars or exact ids)",
        "why": "a bound one too high can only start the exact recount earlier; the recount decides and "
        "replaces the bound",
    },
    {
        "module": "episode",
        "function": "Episode._append",
        "removed": "bound_ok = ids is None and len(call.prompt) + len(call.completion) + len(text) + 2 <= window",
        "added": "bound_ok = ids is None and len(call.prompt) + len(call.completion) + len(text) + 3 <= window",
        "why": _STRICTER_SHORTCUT,
    },
    {
        "module": "episode",
        "function": "Episode._append",
        "removed": "bound_ok = ids is None and len(call.prompt) + len(call.completion) + len(text) + 2 <= window",
        "added": "bound_ok = ids is None and len(call.prompt) + len(call.completion) + len(text) + 2 < window",
        "why": _STRICTER_SHORTCUT,
    },
    {
        "module": "episode",
        "function": "Episode._fits",
        "removed": "if len(call.prompt) + 2 <= self.limits.context_window:  # every token covers >= 1 character",
        "added": "if len(call.prompt) + 3 <= self.limits.context_window:  # every token covers >= 1 character",
        "why": _STRICTER_SHORTCUT,
    },
    {
        "module": "episode",
        "function": "Episode._fits",
        "removed": "if len(call.prompt) + 2 <= self.limits.context_window:  # every token covers >= 1 character",
        "added": "if len(call.prompt) + 2 < self.limits.context_window:  # every token covers >= 1 character",
        "why": _STRICTER_SHORTCUT,
    },
    {
        "module": "episode",
        "function": "Episode._append",
        "removed": "cut = False",
        "added": "cut = None",
        "why": "`cut` is only tested for truth, and None is false like False",
    },
    {
        "module": "episode",
        "function": "Episode._append",
        "removed": "new_len = len(ids) if ids is not None else len(text)",
        "added": "new_len = len(ids) if (ids is not None) and False else len(text)",
        "why": "with token ids the character shortcut is off (bound_ok is False), so new_len is "
        "recomputed from the ids before it is used",
    },
    {
        "module": "episode",
        "function": "Episode._append",
        "removed": "call.meta = {**(call.meta or {}), **meta} if call.meta else dict(meta)",
        "added": "call.meta = {**(call.meta or {}), **meta} if (call.meta) or True else dict(meta)",
        "why": "when the call has no meta yet, {**({}), **meta} is the same new dict as dict(meta)",
    },
    {
        "module": "episode",
        "function": "Episode._append",
        "removed": "if self._generated_bound > self.limits.total_token_budget:",
        "added": "if self._generated_bound >= self.limits.total_token_budget:",
        "why": "at exactly the budget the mutant only recounts; the exact count is not over the budget, "
        "so the episode goes on either way",
    },
    {
        "module": "episode",
        "function": "Episode._append",
        "removed": "return False",
        "added": "return True",
        "after": 'self._end_episode("token_budget", truncated=True)',
        "why": "the episode is over: act sees `self.done` right after and returns 'fail' all the same",
    },
    {
        "module": "episode",
        "function": "Episode.act",
        "removed": 'return "fail"',
        "added": 'return "XXfailXX"',
        "after": "if self.done:",
        "why": "unreachable: _append returned True, so nothing ended the episode while appending",
    },
    {
        "module": "episode",
        "function": "Episode.act",
        "removed": 'return "fail"',
        "added": 'return "FAIL"',
        "after": "if self.done:",
        "why": "unreachable: _append returned True, so nothing ended the episode while appending",
    },
    {
        "module": "episode",
        "function": "Episode.act",
        "removed": "if type(action) is str:  # plain text, the usual action: no action object to build",
        "added": "if type(None) is str:  # plain text, the usual action: no action object to build",
        "why": "coerce_action turns a str into Text(str): no ids, no meta, not partial, the same path "
        "(the branch only saves building the action object)",
    },
    {
        "module": "episode",
        "function": "Episode._child_result",
        "removed": 'return ChildResult(None, False, False, thread.reason or "failed")',
        "added": 'return ChildResult(None, False, False, thread.reason or "XXfailedXX")',
        "why": "unreachable fallback: every failure is recorded with its reason before the result is built",
    },
    {
        "module": "episode",
        "function": "Episode._child_result",
        "removed": 'return ChildResult(None, False, False, thread.reason or "failed")',
        "added": 'return ChildResult(None, False, False, thread.reason or "FAILED")',
        "why": "unreachable fallback: every failure is recorded with its reason before the result is built",
    },
    {
        "module": "episode",
        "function": "Episode._end_thread",
        "removed": 'self._end_episode(reason or "failed", truncated=reason == "context_window")',
        "added": 'self._end_episode(reason or "XXfailedXX", truncated=reason == "context_window")',
        "why": "unreachable fallback: every call that fails a thread passes a reason",
    },
    {
        "module": "episode",
        "function": "Episode._end_thread",
        "removed": 'self._end_episode(reason or "failed", truncated=reason == "context_window")',
        "added": 'self._end_episode(reason or "FAILED", truncated=reason == "context_window")',
        "why": "unreachable fallback: every call that fails a thread passes a reason",
    },
    {
        "module": "episode",
        "function": "Episode._end_thread",
        "removed": "if queued and thread.id in self._queue:",
        "added": "if queued or thread.id in self._queue:",
        "why": "callers pass queued=True only for running threads (in the queue) and queued=False only "
        "for threads already off it, so both conditions agree",
    },
    {
        "module": "episode",
        "function": "Episode._append",
        "removed": 'self._end_thread(thread, Status.FAILED, "context_window", queued=False)',
        "added": 'self._end_thread(thread, Status.FAILED, "context_window", queued=None)',
        "why": _OFF_THE_QUEUE,
    },
    {
        "module": "episode",
        "function": "Episode._maybe_join",
        "removed": 'self._end_thread(parent, Status.FAILED, "context_window", queued=False)',
        "added": 'self._end_thread(parent, Status.FAILED, "context_window", queued=None)',
        "why": _OFF_THE_QUEUE,
    },
    {
        "module": "episode",
        "function": "Episode.act",
        "removed": "self._end_thread(thread, Status.FINISHED, None, queued=False)",
        "added": "self._end_thread(thread, Status.FINISHED, None, queued=None)",
        "why": _OFF_THE_QUEUE,
    },
    {
        "module": "episode",
        "function": "Episode._append",
        "removed": 'self._end_thread(thread, Status.FAILED, "context_window", queued=False)',
        "added": 'self._end_thread(thread, Status.FAILED, "context_window", )',
        "why": _OFF_THE_QUEUE,
    },
    {
        "module": "episode",
        "function": "Episode._maybe_join",
        "removed": 'self._end_thread(parent, Status.FAILED, "context_window", queued=False)',
        "added": 'self._end_thread(parent, Status.FAILED, "context_window", )',
        "why": _OFF_THE_QUEUE,
    },
    {
        "module": "episode",
        "function": "Episode.act",
        "removed": "self._end_thread(thread, Status.FINISHED, None, queued=False)",
        "added": "self._end_thread(thread, Status.FINISHED, None, )",
        "why": _OFF_THE_QUEUE,
    },
    {
        "module": "episode",
        "function": "Episode._append",
        "removed": 'self._end_thread(thread, Status.FAILED, "context_window", queued=False)',
        "added": 'self._end_thread(thread, Status.FAILED, "context_window", queued=True)',
        "why": _OFF_THE_QUEUE,
    },
    {
        "module": "episode",
        "function": "Episode._maybe_join",
        "removed": 'self._end_thread(parent, Status.FAILED, "context_window", queued=False)',
        "added": 'self._end_thread(parent, Status.FAILED, "context_window", queued=True)',
        "why": _OFF_THE_QUEUE,
    },
    {
        "module": "episode",
        "function": "Episode.act",
        "removed": "self._end_thread(thread, Status.FINISHED, None, queued=False)",
        "added": "self._end_thread(thread, Status.FINISHED, None, queued=True)",
        "why": _OFF_THE_QUEUE,
    },
    {
        "module": "episode",
        "function": "Episode._maybe_join",
        "removed": 'by_pos.get(pos) or ChildResult(None, False, False, group.rejected.get(pos, "rejected"))',
        "added": "by_pos.get(pos) or ChildResult(None, False, False, group.rejected.get(pos, None))",
        "why": "unreachable default: every requested child has a thread (with a result) or a rejection reason",
    },
    {
        "module": "episode",
        "function": "Episode._maybe_join",
        "removed": 'by_pos.get(pos) or ChildResult(None, False, False, group.rejected.get(pos, "rejected"))',
        "added": "by_pos.get(pos) or ChildResult(None, False, False, group.rejected.get(pos, ))",
        "why": "unreachable default: every requested child has a thread (with a result) or a rejection reason",
    },
    {
        "module": "episode",
        "function": "Episode._maybe_join",
        "removed": 'by_pos.get(pos) or ChildResult(None, False, False, group.rejected.get(pos, "rejected"))',
        "added": 'by_pos.get(pos) or ChildResult(None, False, False, group.rejected.get(pos, "XXrejectedXX"))',
        "why": "unreachable default: every requested child has a thread (with a result) or a rejection reason",
    },
    {
        "module": "episode",
        "function": "Episode._maybe_join",
        "removed": 'by_pos.get(pos) or ChildResult(None, False, False, group.rejected.get(pos, "rejected"))',
        "added": 'by_pos.get(pos) or ChildResult(None, False, False, group.rejected.get(pos, "REJECTED"))',
        "why": "unreachable default: every requested child has a thread (with a result) or a rejection reason",
    },
    {
        "module": "episode",
        "function": "Episode._end_episode",
        "removed": 't.status, t.reason = Status.FAILED, t.reason or "episode_over"',
        "added": 't.status, t.reason = Status.FAILED, t.reason or "XXepisode_overXX"',
        "why": "unreachable fallback: a thread still active when the episode ends already has its reason "
        "(the token budget sets 'token_budget' first; a root that cannot fit its prompt gets "
        "'prompt_exceeds_context_window'; a root ends only after its children)",
    },
    {
        "module": "episode",
        "function": "Episode._end_episode",
        "removed": 't.status, t.reason = Status.FAILED, t.reason or "episode_over"',
        "added": 't.status, t.reason = Status.FAILED, t.reason or "EPISODE_OVER"',
        "why": "unreachable fallback: a thread still active when the episode ends already has its reason "
        "(the token budget sets 'token_budget' first; a root that cannot fit its prompt gets "
        "'prompt_exceeds_context_window'; a root ends only after its children)",
    },
    # ---------------------------------------------------------------- metrics
    {
        "module": "metrics",
        "function": "count_tokens",
        "removed": "if call.separators and newline is None:",
        "added": "if call.separators or newline is None:",
        "why": "this only decides when to count the newline once for the separators; counting it when no "
        "call has separators changes no count",
    },
    {
        "module": "metrics",
        "function": "count_tokens",
        "removed": "call.inserted_tokens = count(call.inserted) if call.inserted else 0",
        "added": "call.inserted_tokens = count(call.inserted) if (call.inserted) or True else 0",
        "why": _EMPTY_TEXT,
    },
    {
        "module": "metrics",
        "function": "count_tokens",
        "removed": "call.prompt_tokens = count(call.prompt) if call.prompt else 0",
        "added": "call.prompt_tokens = count(call.prompt) if (call.prompt) or True else 0",
        "why": _EMPTY_TEXT,
    },
    {
        "module": "metrics",
        "function": "_completion_tokens",
        "removed": "call.completion_tokens = count(call.completion) if call.completion else 0",
        "added": "call.completion_tokens = count(call.completion) if (call.completion) or True else 0",
        "why": _EMPTY_TEXT,
    },
    {
        "module": "metrics",
        "function": "_kept_tokens",
        "removed": "head = count(prev.completion[:cut]) if cut else 0",
        "added": "head = count(prev.completion[:cut]) if (cut) or True else 0",
        "why": _EMPTY_TEXT,
    },
    {
        "module": "metrics",
        "function": "count_tokens",
        "removed": "prev = None",
        "added": 'prev = ""',
        "why": "only a thread's first call sees this value, and a first call has no `kept` "
        "(Call.kept is for calls after the first), so `call.kept is None` decides the same way",
    },
    {
        "module": "metrics",
        "function": "critical_path",
        "removed": "for node in range(len(threads) - 1, -1, -1):",
        "added": "for node in range(len(threads) - 2, -1, -1):",
        "why": _LAST_THREAD,
    },
    {
        "module": "metrics",
        "function": "critical_path",
        "removed": "for node in range(len(threads) - 1, -1, -1):",
        "added": "for node in range(len(threads) - 1, -2, -1):",
        "why": _LAST_THREAD,
    },
]
