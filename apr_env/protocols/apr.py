"""The APR fork-join protocol, byte-compatible with the official trace format.

Grammar (reference/apr-reference.md sections 2.7, 2.8, 3.3-3.7):

- Root prompt: ``[Sub Call Budget: {n} ]Moving to Node #0\\nCurrent State: {T}:{nums}, Operations: []``.
- Spawn: a segment whose last line is ``<End Calling Sub Searches>``; the block opened by the
  last ``<Calling Sub Searches>`` line lists one child per line,
  ``<Start Sub Search {i} at level {L}> Moving to Node #{id}``.
- What a child sees: ``Moving to Node #{id}\\nCurrent State: {T}:{nums}, Operations: {ops}``,
  the node's state read from the parent's own text (no ``eval``): from the ``Generated Node``
  lines that created the node and its ancestors, as in the official training data.
- Join: the parent's context becomes its text before the calling block followed by
  ``<Sub Searches>`` / per child ``<Goal Reached in Sub Search {i} at level {L} at Node #{id}>``
  + the child's answer path, or ``<No Solution in Sub Search {i} at level {L} at Node #{id}>`` /
  ``<End Sub Searches>``. Siblings share nothing.
- Answer: the path between the last two full ``T,T equal: Goal Reached`` lines.

Example (reference 2.9): the parent writes ``...<Calling Sub Searches>\\n<Start Sub Search 0
at level 1> Moving to Node #0,0,0\\n...<End Calling Sub Searches>``; child 0 gets prompt
``Moving to Node #0,0,0\\nCurrent State: 10:[2, 5], Operations: ['8/4=2', '6-1=5']`` and
answers ``Moving to Node #0,0,0 ... 10,10 equal: Goal Reached``; the parent resumes after
``<End Sub Searches>\\n``.

Fixes of official flaws (section 8): a child's claim is verified before it is joined (the
episode does this; a false claim joins as 'No Solution' and is recorded), ``level`` is the
real nesting level (byte-identical to the official ``level 1`` for children of the root),
an unknown node id fails that child with a recorded reason instead of aborting the problem,
and a child's state comes from its node's ``Generated Node`` line, not from a ``Moving to
Node`` line that the official solver sometimes follows with another node's state (item 4).
"""

from __future__ import annotations

from apr_env import grammar as g
from apr_env.problem import Problem
from apr_env.protocols.base import ChildSpec, Protocol, SpawnRequest, register
from apr_env.tree import ChildResult, SpawnGroup, Thread


def _node_state(
    context: str, node_id: str, memo: dict, depth: int = 0
) -> tuple[tuple[int, ...], list[str]] | None:
    """(nums, ops) of `node_id` as written in `context`, or None when the text never defines it.

    A node is what its ``Generated Node #X: ...`` line created: its numbers are that line's,
    its operations its parent node's plus the line's own (nested to the root). Only a node
    with no such line (the root, or the thread's own start node) is read from a ``Moving to
    Node #X`` line directly followed by a ``Current State`` line (the prompt's pair).

    This is what the official *solver* wrote into its training data (a child starts from the
    node object that its Generated line printed), not what the official *runtime* reads: the
    runtime prefers ``Moving to Node #X`` + ``Current State`` pairs, and after a failed spawn
    the solver sometimes writes ``Moving to Node #X`` followed by another node's state
    (section 8 item 4), so a later child of X would get the wrong operations (target 79,
    [22, 29, 62, 60]: ``['60-29=31', '22+33=55']`` instead of the trained
    ``['62-29=33', '22+33=55']``). When a model repeats a line for the same node, the first
    one counts (it created the node; the official runtime's map also keeps the first
    Generated line). String searches only; no eval. `memo` remembers nodes already read
    (siblings share their parent's lookup within one spawn).
    """
    if depth > 64:  # ids are comma paths; deeper than any Countdown tree
        return None
    if node_id not in memo:
        memo[node_id] = _read_node(context, node_id, memo, depth)
    return memo[node_id]


def _line_at(context: str, key: str) -> int:
    """Offset of the first line of `context` that starts with `key`, or -1."""
    pos = context.find(key)
    while pos > 0 and context[pos - 1] != "\n":
        pos = context.find(key, pos + 1)
    return pos


def _read_node(context: str, node_id: str, memo: dict, depth: int):
    """`_node_state` of a node not in `memo`."""
    if "," in node_id:  # the root "0" has no Generated line
        generated = _generated_state(context, node_id, memo, depth)
        if generated is not None:
            return generated
    pos = context.find(f"Moving to Node #{node_id}\nCurrent State: ")
    if pos < 0:
        return None
    start = context.index("\n", pos) + 1
    end = context.find("\n", start)
    parsed = g.parse_state(context[start : end if end >= 0 else len(context)])
    return None if parsed is None else (parsed[1], parsed[2])


def _generated_state(context: str, node_id: str, memo: dict, depth: int):
    """(nums, ops) from the node's first ``Generated Node`` line and its parent's state, or None."""
    pos = _line_at(context, f"Generated Node #{node_id}: ")
    if pos < 0:
        return None
    end = context.find("\n", pos)
    m = g.RE_GENERATED.fullmatch(context, pos, end if end >= 0 else len(context))
    if m is None:
        return None
    parent = _node_state(context, node_id.rpartition(",")[0], memo, depth + 1)
    if parent is None:
        return None
    try:
        nums = g.parse_nums(m.group(3))
    except ValueError:
        return None
    return nums, [*parent[1], f"{m.group(4)}{m.group(5)}{m.group(6)}={m.group(7)}"]


@register
class AprProtocol(Protocol):
    """Official APR fork-join: children get a node's state, parents get verified answer paths back.

    Args:
        sub_call_budget: if set, the root prompt starts with ``Sub Call Budget: {n} `` (section 4.1);
            children get no prefix.
    """

    name = "apr"

    def __init__(self, sub_call_budget: int | None = None):
        if sub_call_budget is not None and (not isinstance(sub_call_budget, int) or sub_call_budget < 0):
            raise ValueError(f"sub_call_budget must be None or an int >= 0, got {sub_call_budget!r}")
        self.sub_call_budget = sub_call_budget

    def root_prompt(self, problem: Problem) -> str:
        prefix = "" if self.sub_call_budget is None else g.sub_call_budget_prefix(self.sub_call_budget)
        return f"{prefix}{g.moving_line('0')}\n{g.state_line(problem.target, problem.numbers, [])}"

    def parse_spawn(self, thread: Thread) -> SpawnRequest | None:
        call = thread.calls[-1]
        text = call.completion
        end = len(text)
        while end and text[end - 1] == "\n":
            end -= 1
        # the usual case, a thread that ends without spawning: look at its last line only
        if g.END_CALLING not in text[text.rfind("\n", 0, end) + 1 : end]:
            return None
        completion = text[:end]
        start = completion.rfind(g.CALLING)
        # a malformed request spawns nothing: the parent joins at once and keeps its whole text
        if start < 0:
            return SpawnRequest([], len(call.prompt) + len(call.completion), ["calling_block_without_start"])
        if start > 0 and completion[start - 1] != "\n":
            return SpawnRequest(
                [], len(call.prompt) + len(call.completion), ["calling_block_not_at_line_start"]
            )
        request_start = len(call.prompt) + start
        children, errors, options = [], [], {}
        context = call.prompt + call.completion[:start]
        memo: dict = {}
        level = str(thread.depth + 1)
        body = completion[start + len(g.CALLING) :].split("\n")
        for line in body[:-1] if body[-1].strip() == g.END_CALLING else body:
            line = line.strip()
            if not line:
                continue
            m = g.RE_START_SUB.fullmatch(line)
            if m is None:
                if not self.spawn_option(line, options):
                    errors.append("malformed_spawn_line")
                continue
            index, line_level, node_id = m.groups()
            if index != str(len(children)) or line_level != level:
                errors.append("spawn_index_or_level_mismatch")
            children.append(self.child_spec(thread, len(children), node_id, context, memo))
        if body[-1].strip() != g.END_CALLING:
            errors.append("text_after_end_calling")
        if not children:
            errors.append("empty_spawn")
        return SpawnRequest(children, request_start, errors, **options)

    def spawn_option(self, line: str, options: dict) -> bool:
        """Protocols with options inside the calling block (straggler control) read `line` into
        `options` (`SpawnRequest` fields) and return True; APR has none, so every other line is
        ``malformed_spawn_line``."""
        return False

    def child_spec(self, thread: Thread, index: int, node_id: str, context: str, memo: dict) -> ChildSpec:
        """Child `index` of a spawn at `node_id`: its start state read from `context` (the parent's
        text before the calling block; `memo` is shared by the siblings), or an 'unknown_node' error."""
        state = _node_state(context, node_id, memo)
        if state is None or not state[0]:  # never defined, or a state without numbers
            return ChildSpec(label=node_id, error="unknown_node")
        nums, ops = state
        target = thread.start.target
        prompt = self.child_prompt(thread, index, node_id, context, g.state_line(target, nums, ops))
        return ChildSpec(label=node_id, prompt=prompt, start=Problem.trusted(target, nums))

    def child_prompt(self, thread: Thread, index: int, node_id: str, context: str, state_line: str) -> str:
        """A child's prompt: its node's ``Moving to Node`` and ``Current State`` lines."""
        return f"{g.moving_line(node_id)}\n{state_line}"

    def join(
        self, parent: Thread, group: SpawnGroup, request_start: int, results: list[ChildResult]
    ) -> tuple[str, str]:
        lines = g.join_lines(group.labels, [r.answer for r in results], parent.depth + 1)
        return parent.context[:request_start], "\n".join(lines) + "\n"

    def extract_answer(self, thread: Thread) -> str | None:
        call = thread.calls[-1]
        if g.GOAL_REACHED not in call.completion and g.GOAL_REACHED not in call.prompt:
            return None  # the usual child: no goal line anywhere, so no need to build the context
        return g.extract_answer_path(call.context)

    def render_spawn(self, thread: Thread, labels: list[str]) -> str:
        return "\n".join(g.calling_lines(labels, thread.depth + 1)) + "\n"

    def render_answer(self, thread: Thread, answer: str | None) -> str:
        return g.answer_text(thread.start.target, answer)

    def __repr__(self) -> str:
        return f"AprProtocol(sub_call_budget={self.sub_call_budget})"
