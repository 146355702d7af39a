"""Does a model do the arithmetic of its traces? Teacher-forced accuracy on operation results.

    python -m benchmarks.arithmetic_probe --problems runs/paper_cpu_v1/data/test_problems.json \
        --models runs/paper_cpu_v1/sft_apr runs/sizing/keep/apr_small/checkpoint-500 --n 40 \
        --operand-lines 300

Why: the paper experiment's first CPU run (`benchmarks/results/paper_cpu_v1/`) trained SFT models
that learned the trace format but solved nothing; their episodes were full of lines such as
``Exploring Operation: 16-5=13``. Sampling whole episodes is slow (minutes per model) and its
accuracy stays at 0 until the arithmetic is nearly right, so it cannot tell a model that is
halfway there from one that is not learning. This probe reads the solver's traces of held-out
problems (always correct arithmetic), feeds each row to the model with teacher forcing, and
counts the ``Exploring Operation: a op b=c`` lines whose result ``c`` the model predicts exactly
(greedy, every digit) given the line up to ``=``. Reported per operator and overall, per model,
with the training tokens of each checkpoint when its ``trainer_state.json`` or ``run.json`` says.

It also counts the lines whose operands ``a op b`` the model predicts exactly as the solver wrote
them (each token given the solver's prefix): the solver's choice of the next pair is a fixed
function of its state, so this is teacher-forced state tracking, free of the compounding errors
of a model's own episodes (which `generated_line_checks` measures).

What it leaves out: the ``Resulting Numbers`` lists; a model can get every line right under
teacher forcing and still drift in its own episodes.
"""

from __future__ import annotations

import argparse
import bisect
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from apr_env.arithmetic import apply_op
from apr_env.grammar import RE_EXPLORING, RE_SUB_RESULT, answer_path, parse_state
from apr_env.problem import Problem
from apr_env.verifier import verify
from trainers.sft_data import OPERATION_LINE as OPERATION

STATE = re.compile(r"Current State: \d+:\[([\d, ]*)\]")
"""The numbers of a state line. Looser than `apr_env.grammar.RE_STATE`, which needs a well-formed
``Operations: [...]`` too: a model's state with a garbled operation list still says which numbers
it believes it holds, and that is what its next operands are checked against."""


class OperationSpan(NamedTuple):
    """One ``Exploring Operation: a op b=c`` line of a row, as token positions."""

    op: str
    operands: list[int]
    """Positions of ``a op b`` (empty if they do not fall on whole tokens)."""
    result: list[int]
    """Positions of the digits of ``c`` (empty likewise)."""
    state: str | None
    """The numbers of the last ``Current State`` line before it (None: none yet)."""
    numbers: list[int] = []
    """Positions of the ``Resulting Numbers`` list after ``[``, closing ``]`` included (empty
    when the line has no such list, as in the warm-up's operation rows)."""


def operation_spans(ids: list[int], tokenizer) -> list[OperationSpan]:
    """Every operation line of a row, with its operand and result positions and its state.

    Positions come from decoding each token on its own (the Countdown tokenizer has one token per
    digit), so a regex's character span maps back to whole tokens. One decode per row serves
    both probes.
    """
    pieces = [tokenizer.decode([i]) for i in ids]
    starts, text = [], ""
    for piece in pieces:
        starts.append(len(text))
        text += piece

    def positions(lo: int, hi: int) -> list[int]:
        found = list(range(bisect.bisect_left(starts, lo), bisect.bisect_left(starts, hi)))
        return found if found and "".join(pieces[k] for k in found) == text[lo:hi] else []

    states = list(STATE.finditer(text))
    state_ends = [m.end() for m in states]
    spans = []
    for m in OPERATION.finditer(text):
        before = bisect.bisect_right(state_ends, m.start())
        state = states[before - 1].group(1) if before else None
        after = LIST_AFTER.match(text, m.end())
        listed = positions(after.start(1), after.end()) if after else []
        spans.append(
            OperationSpan(m.group(2), positions(m.start(1), m.end(3)), positions(*m.span(4)), state, listed)
        )
    return spans


LIST_AFTER = re.compile(r", Resulting Numbers: \[([\d, ]*)\]")
"""The list that follows an operation line's result in a trace."""


def result_spans(ids: list[int], tokenizer, part: str = "result") -> list[tuple[str, list[int]]]:
    """(operator, token positions of one part) for every operation line of a row whose part falls
    on whole tokens; `part` is ``"result"`` (the digits of ``c``) or ``"operands"`` (``a op b``)."""
    if part not in ("result", "operands"):
        raise ValueError(f"part must be 'result' or 'operands', not {part!r}")
    return [(s.op, getattr(s, part)) for s in operation_spans(ids, tokenizer) if getattr(s, part)]


def probe(model_dir, rows: list[dict], tokenizer) -> dict:
    """Exact-result accuracy of one model (a folder, or a loaded causal LM) on the operation lines
    of `rows` (teacher forcing).

    Also the exact operands (capped: see `operand_probe`) and, for trace rows, the exact
    ``Resulting Numbers`` list by the size of the state it comes from (``exact_list_by_state``;
    the list is a function of the state and the operation in the solver's order, so teacher
    forcing has one right answer): the skill the continued CPU model lacked most in its own
    episodes (`generated_line_checks`).
    """
    import torch

    from trainers.models import load_model

    model = (load_model(model_dir) if isinstance(model_dir, (str, Path)) else model_dir).eval()
    right: dict[str, int] = {}
    total: dict[str, int] = {}
    operands_right = 0
    lists, lists_right = Counter(), Counter()  # by state size
    with torch.no_grad():
        for row in rows:
            ids = row["input_ids"]
            logits = model(input_ids=torch.tensor([ids])).logits[0]
            predicted = logits.argmax(-1).tolist()  # predicted[k] is the guess for ids[k + 1]
            for span in operation_spans(ids, tokenizer):
                if span.result:
                    total[span.op] = total.get(span.op, 0) + 1
                    right[span.op] = right.get(span.op, 0) + _forced(predicted, ids, span.result)
                if span.operands:
                    operands_right += _forced(predicted, ids, span.operands)
                if span.numbers and span.state is not None:
                    size = len(_numbers(span.state))
                    lists[size] += 1
                    lists_right[size] += _forced(predicted, ids, span.numbers)
    lines = sum(total.values())
    return {
        "model": str(model_dir),
        "tokens_trained": _tokens_trained(Path(model_dir)) if isinstance(model_dir, (str, Path)) else None,
        "lines": lines,
        "exact_result_accuracy": sum(right.values()) / lines if lines else 0.0,
        "exact_operand_accuracy": operands_right / lines if lines else 0.0,
        "by_operator": {op: {"lines": total[op], "accuracy": right[op] / total[op]} for op in sorted(total)},
        "exact_list_by_state": _shares(lists_right, lists),
    }


def _forced(predicted: list[int], ids: list[int], positions: list[int]) -> bool:
    """Did teacher forcing predict every token at `positions` (predicted[k] guesses ids[k + 1])?"""
    return all(predicted[k - 1] == ids[k] for k in positions)


def operand_probe(model_dir, rows: list[dict], tokenizer, max_lines: int = 400) -> dict:
    """Does the model pick operands its state holds, with the solver's trace as the context?

    For `max_lines` operation lines spread evenly over `rows`, the model greedily writes the line
    from ``Exploring Operation: `` to ``=`` after the solver's prefix; the operands it writes are
    checked against the numbers of the last ``Current State`` line of that prefix. The solver
    shuffles the children it prints, so the exact operands are not a fixed target (hence
    `probe`'s low ``exact_operand_accuracy`` even for good models); being in the state is.
    Unlike `generated_line_checks`, the context is always a correct trace, so this separates
    state tracking from the drift of a model's own episodes.
    """
    import torch

    from trainers.models import load_model

    model = (load_model(model_dir) if isinstance(model_dir, (str, Path)) else model_dir).eval()
    found = [
        (row["input_ids"], span)
        for row in rows
        for span in operation_spans(row["input_ids"], tokenizer)
        if span.operands and span.state is not None
    ]
    picked = (
        [found[k * len(found) // max_lines] for k in range(max_lines)] if len(found) > max_lines else found
    )
    in_state = parsed = 0
    with torch.no_grad():
        for ids, span in picked:  # spread evenly over the rows (a trace has ~50 lines)
            written = _greedy(model, ids[: span.operands[0]], tokenizer, stop="=", max_new_tokens=12)
            m = re.match(r"(\d+)[-+*/](\d+)=", written)
            if m:
                parsed += 1
                in_state += _holds(Counter(_numbers(span.state)), int(m.group(1)), int(m.group(2)))
    lines = len(picked)
    return {
        "model": str(model_dir),
        "lines": lines,
        "well_formed": parsed / lines if lines else 0.0,
        "operands_in_state": in_state / lines if lines else 0.0,
    }


def _greedy(model, prefix: list[int], tokenizer, stop: str, max_new_tokens: int) -> str:
    """The model's greedy continuation of `prefix`, up to and including the first `stop`."""
    import torch

    out = model.generate(
        input_ids=torch.tensor([prefix]),
        attention_mask=torch.ones(1, len(prefix), dtype=torch.long),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_id,
    )[0, len(prefix) :].tolist()
    text = tokenizer.decode(out)
    return text[: text.index(stop) + 1] if stop in text else text


def _tokens_trained(folder: Path) -> int | None:
    """Input tokens the checkpoint has seen, from the SFT run's own records (None if unknown)."""
    state = folder / "trainer_state.json"
    if state.is_file():
        history = json.loads(state.read_text()).get("log_history", [])
        seen = [h["num_input_tokens_seen"] for h in history if "num_input_tokens_seen" in h]
        if seen:
            return int(seen[-1])
    run = folder / "run.json"
    if run.is_file():
        return json.loads(run.read_text()).get("tokens_seen")
    return None


def held_out_records(problems_file: str, n: int, protocol: str, beam: int | None, sub_beam: int | None):
    """Solver trace records of the first `n` problems of a held-out file (the probe's fixed input)."""
    from apr_env import load_problems
    from trainers.data import build_traces

    return build_traces(
        load_problems(problems_file)[:n],
        protocol,
        seed=0,
        beam_size=beam,
        sub_beam_size=sub_beam if protocol == "apr" else None,
    )


def held_out_rows(
    problems_file: str, n: int, protocol: str, beam: int | None, sub_beam: int | None, max_length: int
):
    """The SFT rows of `held_out_records` (all of them, with condition prefixes), and the tokenizer."""
    from apr_env.tokenizer import default_tokenizer
    from trainers.sft_data import build_rows

    tokenizer = default_tokenizer()
    records = held_out_records(problems_file, n, protocol, beam, sub_beam)
    rows, _ = build_rows(records, tokenizer, condition=True, solved_only=False, max_length=max_length)
    return rows, tokenizer


def generated_line_checks(records: list[dict]) -> dict:
    """What the model itself wrote in evaluation episodes (`apr-env eval --records`), line by line.

    For every ``Exploring Operation: a op b=c`` line a model generated: are `a` and `b` in the
    thread's current state (the last ``Current State`` line of the call, in the prompt or
    generated), and is `c` the result under the environment's rules (`apr_env.arithmetic.apply_op`)?
    The probe above measures results with the solver's operands given; this measures both skills
    in the model's own search, where the first CPU run's APR model chose operands from its state
    in 88% of lines but got 8% of results right, and the second's (operation rows with loss on
    the operands too) 75% and 84% (`benchmarks/results/paper_cpu/README.md`). Also: is the line's
    ``Resulting Numbers`` list the state minus the operands plus the result (as multisets: the
    order of equal numbers is free), and does the line repeat an operation already written since
    the current state line (a search that loops instead of trying the next pair)?

    ``resulting_numbers_by_state`` splits the list check by how many numbers the state holds
    (as a string key): a 2-number state leaves only the result, so the overall share hides that
    the 24M-token CPU APR model wrote 59% of lists right from 3 numbers and 36% from 4 (it keeps an
    operand and drops another number), which is what sends children off with wrong states.
    """
    lines = in_state = right = listed = repeated = 0
    by_state, by_state_right = Counter(), Counter()  # lines and right lists by state size
    for call in (call for record in records for thread in record["calls"] for call in thread):
        nums: Counter | None = None
        seen: set[str] = set()  # the operations written since the current state line
        for generated, line in _call_lines(call):
            state = STATE.search(line)
            if state:
                nums, seen = Counter(_numbers(state.group(1))), set()
                continue
            op = OPERATION.search(line)
            if not (op and nums is not None):
                continue
            a, sign, b, c = int(op.group(1)), op.group(2), int(op.group(3)), int(op.group(4))
            if generated:
                lines += 1
                in_state += _holds(nums, a, b)
                right += apply_op(a, sign, b) == c
                after = LIST_AFTER.match(line, op.end())
                good = bool(after) and Counter(_numbers(after.group(1))) == nums - Counter([a, b]) + Counter(
                    [c]
                )
                listed += good
                by_state[nums.total()] += 1
                by_state_right[nums.total()] += good
                repeated += op.group(0) in seen
            seen.add(op.group(0))
    return {
        "lines": lines,
        "operands_in_state": in_state / lines if lines else 0.0,
        "result_right": right / lines if lines else 0.0,
        "resulting_numbers_right": listed / lines if lines else 0.0,
        "repeated": repeated / lines if lines else 0.0,
        "resulting_numbers_by_state": _shares(by_state_right, by_state),
    }


def _shares(right: Counter, total: Counter) -> dict[str, float]:
    """right / total per key, keyed by the key as a string (JSON), in key order."""
    return {str(k): right[k] / total[k] for k in sorted(total)}


def _numbers(text: str) -> list[int]:
    """The numbers of a model-written list; laxer than `apr_env.grammar.parse_nums` (``"1,2"`` too)."""
    return [int(x) for x in text.split(",") if x.strip()]


def _holds(nums: Counter, a: int, b: int) -> bool:
    """Does the multiset `nums` hold both operands (``a`` twice when ``a == b``)?"""
    return all(nums[k] >= v for k, v in Counter([a, b]).items())


def joined_goal_checks(records: list[dict]) -> dict:
    """How APR episodes end once a child has reported the goal.

    An episode "joined a goal" when a prompt of its root thread holds a join line
    ``<Goal Reached in Sub Search ...>``. The environment writes that line for a child whose
    claim it verified *from the child's own start state*, which the parent wrote: when the
    parent's ``Resulting Numbers`` list was wrong, the child's goal is not a solution of the
    problem. So this counts the episodes that joined a goal, how many of those joined a child
    path that is valid from the problem's own numbers (`valid_when_joined`), and how many were
    solved. In the continued CPU model's 200 validation episodes 9 of 11 joined goals were such
    false goals, which is why a root "copying the answer" so rarely solved. SoS+ episodes have
    no joins and count 0.
    """
    joined, valid = [], 0
    for r in records:
        # a resumed root's prompt holds its earlier join blocks again: each path is judged once
        paths = {
            tuple(ops)
            for call in (r["calls"][0] if r["calls"] else [])
            for ops in _joined_paths(call["prompt"])
        }
        if paths:
            joined.append(r)
            problem = Problem.from_dict(r["problem"])
            valid += any(_valid_path(problem, ops) for ops in paths)
    return {
        "episodes": len(records),
        "joined_goal": len(joined) / len(records) if records else 0.0,
        "valid_when_joined": valid / len(joined) if joined else 0.0,
        "solved_when_joined": sum(bool(r["correct"]) for r in joined) / len(joined) if joined else 0.0,
    }


def _joined_paths(prompt: str) -> list[list[str]]:
    """The operations of each child path a prompt joins as a goal (`grammar.sub_goal_line`).

    A joined path is the child's answer path under its join line: its last ``Current State``
    holds the operations so far (from the root's numbers) and its last ``Exploring Operation``
    the final one. A join with no parseable path gives an empty list (never valid).
    """
    paths = []
    for m in RE_SUB_RESULT.finditer(prompt):
        if m.group(1) != "Goal Reached":
            continue
        ops, last = [], None
        for line in prompt[m.end() :].split("\n")[1:]:
            line = line.strip()
            if line.startswith("<"):
                break
            if (state := parse_state(line)) is not None:
                ops = state[2]
            if (e := RE_EXPLORING.fullmatch(line)) is not None:
                last = f"{e[1]}{e[2]}{e[3]}={e[4]}"
        paths.append([*ops, last] if last else [])
    return paths


def _valid_path(problem: Problem, ops: tuple[str, ...]) -> bool:
    """Do `ops` solve `problem` from its own numbers (replayed by `apr_env.verifier.verify`)?"""
    if not ops:
        return False
    try:
        text = answer_path(problem.target, problem.numbers, ops)
    except ValueError:  # an operand not among the numbers left
        return False
    return verify(problem, text).correct


def _call_lines(call: dict):
    """(generated?, line) for every line of a model call: its prompt's, then its completion's."""
    for generated, text in ((False, call["prompt"]), (True, call["completion"])):
        for line in text.split("\n"):
            yield generated, line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", required=True, help="model folders or checkpoints")
    parser.add_argument("--problems", required=True, help="held-out problem file")
    parser.add_argument("--n", type=int, default=40, help="problems whose solver traces are probed")
    parser.add_argument("--protocol", choices=("apr", "serial"), default="apr")
    parser.add_argument("--beam", type=int, default=3)
    parser.add_argument("--sub-beam", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--operand-lines", type=int, default=0,
                        help="also run operand_probe on this many operation lines (0: no)")  # fmt: skip
    parser.add_argument("--out", default=None, help="JSON path for the results")
    args = parser.parse_args(argv)
    import torch

    from apr_env.provenance import provenance

    torch.set_num_threads(args.threads)
    rows, tokenizer = held_out_rows(
        args.problems, args.n, args.protocol, args.beam, args.sub_beam, args.max_length
    )
    results = []
    for model in args.models:
        r = probe(model, rows, tokenizer)
        if args.operand_lines:
            r["operands"] = operand_probe(model, rows, tokenizer, args.operand_lines)
        results.append(r)
        ops = ", ".join(f"{op} {v['accuracy']:.3f}" for op, v in r["by_operator"].items())
        print(
            f"{model}: results {r['exact_result_accuracy']:.3f} of {r['lines']} lines ({ops}), "
            f"operands exact {r['exact_operand_accuracy']:.3f}"
            + (f", in state {r['operands']['operands_in_state']:.3f}" if "operands" in r else "")
            + f"; tokens {r['tokens_trained']}"
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        report = {"command": "python -m benchmarks.arithmetic_probe " + " ".join(sys.argv[1:]),
                  "config": vars(args), "provenance": provenance(), "results": results}  # fmt: skip
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
