"""Equivalent mutants of the core modules: changes no input can tell from the original.

`benchmarks/mutation.py` sets these apart from the survivors when it scores a module. Each
entry names the module, the function (``Class.method`` or ``function``), the exact line(s) the
mutant removes and adds (stripped, as in ``mutmut show``), and why no test can kill it. An
entry that no longer matches a mutant (the line was edited) simply stops applying, and the
mutant counts as a survivor again until it is killed or re-argued here.
"""

from __future__ import annotations

_EMPTY_TEXT = (
    "count('') is 0 for every TextTokenizer (encode adds no special token unless asked), so "
    "skipping the tokenizer for empty text only saves a call"
)
_LAST_THREAD = (
    "the thread with the largest id has no children (a child's id is larger than its parent's), "
    "so visiting it or not, or twice, adds nothing to any critical path"
)

EQUIVALENT: list[dict[str, str]] = [
    # ---------------------------------------------------------------- metrics
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
