"""Fork with full context: children inherit the parent's whole text (ThreadWeaver / Multiverse style).

Grammar: as `apr` (same calling and join blocks), but a child's prompt is the parent's
entire context before the calling block, followed by the child's own header line and the
state of its node::

    {parent text before <Calling Sub Searches>}<Start Sub Search {i} at level {L}> Moving to Node #{id}
    Current State: {T}:{nums}, Operations: {ops}

so a child knows everything its parent explored (it could avoid repeating it), at the price
of a longer context: `max_context_tokens` and `prefill_tokens` grow by the parent's prefix
per child. A runtime can fork the parent's KV cache instead of prefilling that prefix (the
transformers backend's ``fork_from``). The parent gets back verified answer paths, as in APR;
siblings share nothing. A child's answer is read from its own generated text only (the
inherited prefix never counts as its claim).

Example: parent text ``Moving to Node #0\\n...Generated Node #0,1: ...\\n`` + calling block;
child 1's prompt is that text + ``<Start Sub Search 1 at level 1> Moving to Node #0,1\\nCurrent
State: 10:[1, 4, 2], Operations: ['8-6=2']``.
"""

from __future__ import annotations

from apr_env import grammar as g
from apr_env.protocols.apr import AprProtocol
from apr_env.protocols.base import register
from apr_env.tree import Thread


@register
class ForkFullContextProtocol(AprProtocol):
    """APR grammar, but each child's prompt carries the parent's full pre-spawn context."""

    name = "fork_full_context"

    def child_prompt(self, thread: Thread, index: int, node_id: str, context: str, state_line: str) -> str:
        return f"{context}{g.start_sub_line(index, thread.depth + 1, node_id)}\n{state_line}"

    def extract_answer(self, thread: Thread) -> str | None:
        if thread.parent is None:
            return super().extract_answer(thread)
        own = "".join(call.completion for call in thread.calls)
        return g.extract_answer_path(own)

    def __repr__(self) -> str:
        return "ForkFullContextProtocol()"
