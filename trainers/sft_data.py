"""SFT rows from solver traces: pre-tokenised ``input_ids`` with ``labels`` = -100 where the model does not write.

One row per thread segment the runtime asks the model for (reference section 2.10, with
flaw 9 fixed): ``input_ids`` = bos + the segment's prompt + what the model generates, and
``labels`` = -100 on bos and the prompt. The prompt is everything the runtime provides: a
thread's two start lines, and for a resumed parent its earlier text and the inserted join
block, so a resumed parent segment is masked up to and including ``<End Sub Searches>\\n``
and each generated span is trained exactly once.

The labelled tokens are exactly the ids the LLM agent (`agents.llm_agent`) must sample for the
environment to reproduce the trace:

- a segment that spawns ends with the ``<End Calling Sub Searches>`` token, which is a stop
  token of the agent: the trace's newline after it is never generated, so it is not in the row
  (the join drops the calling block anyway), and there is no eos;
- a thread's last segment (a child, the parent's final segment, an SoS+ trace) ends with its
  last line's ``\\n`` and then eos, which ends the thread;
- prompt ids are ``bos + encode(prompt)``, the ids the agent sends: the Countdown tokenizer
  never merges across a newline and every cut is at a newline, so encoding the prompt and the
  completion apart gives the same ids as the agent's incremental encoding (tested on golden trees).

Options: condition prefixes (reference section 4): APR root prompts get ``Sub Call Budget: n ``
(n = the demonstration's children per spawn, rounded; 0 without a spawn), SoS+ prompts get
``Token Budget: b `` (b = the trace's bos + text + eos tokens rounded up to a 512 bin, at most
4096); solved-only (drop traces whose search failed; the official data keeps them).

What this module leaves to others: generating traces (`trainers.data`), training (`trainers.sft`).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from pathlib import Path

from apr_env import Problem
from apr_env import grammar as g
from apr_env.errors import AprEnvError
from apr_env.tokenizer import TextTokenizer
from trainers.data import segments
from trainers.sft_config import OPERATION_LOSSES

IGNORE = -100
"""Label of a token without loss (the `labels` convention of transformers and TRL)."""


class TraceDataError(AprEnvError, ValueError):
    """A traces file is missing or not in the layout `apr-env data traces` writes."""


def sub_call_budget(record: dict) -> int:
    """Children per spawn of an APR demonstration, rounded half up (0 when it never spawns)."""
    groups = record["trace_dict"]["sub_calls"]
    if not groups:
        return 0
    return math.floor(sum(map(len, groups)) / len(groups) + 0.5)


def token_budget(record: dict, tokenizer: TextTokenizer) -> int:
    """The SoS+ token budget bin of a trace: bos + text + eos tokens, rounded up to 512, at most 4096."""
    return g.token_budget_bin(tokenizer.count(record["search_path"]) + 2)


def condition_prefix(record: dict, tokenizer: TextTokenizer) -> str:
    """The root prompt's condition prefix for `record` (``Sub Call Budget: n `` or ``Token Budget: b ``)."""
    if "trace_dict" in record:
        return g.sub_call_budget_prefix(sub_call_budget(record))
    return g.token_budget_prefix(token_budget(record, tokenizer))


def record_rows(
    record: dict, tokenizer: TextTokenizer, *, condition: bool = False, index: int = 0
) -> list[dict]:
    """The SFT rows of one trace record (see the module docstring).

    Each row: ``input_ids``, ``labels`` (same length, -100 on bos and the prompt), ``length``,
    ``loss_tokens``, ``kind`` ('parent', 'child' or 'serial') and the record ``index``.
    """
    prefix = condition_prefix(record, tokenizer) if condition else ""
    bos = [tokenizer.bos_id]
    rows = []
    for seg in segments(record, index):
        prompt, completion = seg["prompt"], seg["completion"]
        if seg["kind"] != "child":  # the root thread's prompts all start with the root prompt
            prompt = prefix + prompt
        body = completion.rstrip("\n")
        spawns = body.endswith(g.END_CALLING)
        prompt_ids = bos + tokenizer.encode(prompt)
        out_ids = tokenizer.encode(body if spawns else completion) + ([] if spawns else [tokenizer.eos_id])
        rows.append(
            {
                "input_ids": prompt_ids + out_ids,
                "labels": [IGNORE] * len(prompt_ids) + out_ids,
                "length": len(prompt_ids) + len(out_ids),
                "loss_tokens": len(out_ids),
                "kind": seg["kind"],
                "index": index,
            }
        )
    return rows


def build_rows(
    records: list[dict],
    tokenizer: TextTokenizer,
    *,
    condition: bool = False,
    solved_only: bool = True,
    max_length: int | None = None,
) -> tuple[list[dict], dict]:
    """Rows of many records, and statistics of what was kept.

    Rows longer than `max_length` are dropped whole (a cut row would train a thread that never
    ends); the statistics count them. Returns ``(rows, stats)``.
    """
    rows, traces, dropped = [], 0, 0
    for i, record in enumerate(records):
        if solved_only and not record.get("solved"):
            continue
        traces += 1
        for row in record_rows(record, tokenizer, condition=condition, index=i):
            if max_length is not None and row["length"] > max_length:
                dropped += 1
            else:
                rows.append(row)
    stats = {
        "traces": len(records),
        "traces_used": traces,
        "solved_only": solved_only,
        "condition": condition,
        "rows": len(rows),
        "rows_dropped_too_long": dropped,
        "tokens": sum(r["length"] for r in rows),
        "loss_tokens": sum(r["loss_tokens"] for r in rows),
    }
    return rows, stats


OPERATION_LINE = re.compile(r"Exploring Operation: (\d+)([-+*/])(\d+)=(\d+)")
"""One ``Exploring Operation: a op b=c`` line of a trace (the arithmetic a Countdown model must
do); groups a, op, b, c."""


def operation_lines(texts) -> list[str]:
    """Every operation line of `texts`, in order (duplicates kept: they are the operand distribution)."""
    return [m.group(0) for text in texts for m in OPERATION_LINE.finditer(text)]


def operation_rows(
    records: list[dict],
    tokenizer: TextTokenizer,
    *,
    row_tokens: int = 512,
    solved_only: bool = True,
    seed: int = 0,
    loss: str = "all",
) -> tuple[list[dict], dict]:
    """Arithmetic warm-up rows: the operation lines of the records' generated text, shuffled and
    packed (newline-separated, bos first) into rows of at most `row_tokens` tokens; loss on every
    token but bos (`loss` "all"), or only on each result and its newline ("results").

    Why: in a trace, operation results are about a tenth of the loss tokens (the rest is copying
    the state), and a small model trained on whole traces learns the format long before the
    arithmetic: the paper run's `mini` model got 15% of results right after 8M trace tokens,
    while the same model trained on these rows alone got 88% after 5.8M
    (`benchmarks/results/paper_cpu_v1/README.md`). Trace SFT started from such a model only has
    the search to learn. Returns ``(rows, stats)`` shaped like `build_rows`'.

    Why "results": the operands of these lines are a random draw, so a loss on them teaches an
    unconditional operand prior that competes, in a trace, with copying operands from the state:
    the second configuration's APR model (warm-up and mix with loss on all tokens) got 91.5% of
    results right but wrote operands its state does not hold (``12-2=10`` from [11, 2, 2, 14]).
    """
    texts = [
        seg["completion"]
        for i, record in enumerate(records)
        if record.get("solved") or not solved_only
        for seg in segments(record, i)
    ]
    lines = operation_lines(texts)
    random.Random(seed).shuffle(lines)
    rows = pack_operation_lines(lines, tokenizer, row_tokens=row_tokens, loss=loss)
    stats = {
        "traces": len(records),
        "traces_used": sum(bool(r.get("solved")) or not solved_only for r in records),
        "solved_only": solved_only,
        "condition": False,
        "operations_only": True,
        "operation_loss": loss,
        "operation_lines": len(lines),
        "rows": len(rows),
        "rows_dropped_too_long": 0,
        "tokens": sum(r["length"] for r in rows),
        "loss_tokens": sum(r["loss_tokens"] for r in rows),
    }
    return rows, stats


def pack_operation_lines(
    lines: list[str], tokenizer: TextTokenizer, *, row_tokens: int = 512, loss: str = "all"
) -> list[dict]:
    """`lines` in order, newline-terminated, packed into rows of at most `row_tokens` tokens (bos
    first; a line longer than a row gets a row of its own), labelled as `operation_rows` says."""
    if row_tokens < 2:
        raise TraceDataError(f"row_tokens={row_tokens}: a row needs bos and at least one token")
    if loss not in OPERATION_LOSSES:
        raise TraceDataError(f"loss={loss!r}; accepted: {', '.join(OPERATION_LOSSES)}")
    # each line as two pieces, the operands up to "=" and the result: the same ids as the whole
    # line (the Countdown tokenizer has one token per digit), with a place to cut the labels
    heads = tokenizer.encode_batch([line[: line.index("=") + 1] for line in lines])
    tails = tokenizer.encode_batch([line[line.index("=") + 1 :] + "\n" for line in lines])
    packed, ids, labels = [], [tokenizer.bos_id], [IGNORE]
    for head, tail in zip(heads, tails, strict=True):
        if len(ids) + len(head) + len(tail) > row_tokens and len(ids) > 1:
            packed.append((ids, labels))
            ids, labels = [tokenizer.bos_id], [IGNORE]
        ids += head + tail
        labels += (head if loss == "all" else [IGNORE] * len(head)) + tail
    if len(ids) > 1:
        packed.append((ids, labels))
    return [
        {"input_ids": r, "labels": lab, "length": len(r), "loss_tokens": sum(x != IGNORE for x in lab),
         "kind": "operations", "index": k}
        for k, (r, lab) in enumerate(packed)
    ]  # fmt: skip


def mix_rows(rows: list[dict], extra: list[dict], share: float) -> tuple[list[dict], dict]:
    """`rows` plus rows of `extra` (cycled when too few) until they hold `share` of all tokens.

    Used to mix operation rows (`operation_rows`) among trace rows, so that trace SFT from an
    arithmetic warm-up does not forget the arithmetic: in the paper experiment's second CPU
    configuration, trace SFT at the warm-up's learning rate took exact results on held-out traces
    from 71% to 43% (`benchmarks/results/paper_cpu/README.md`). Returns the rows (trace rows
    first; the trainer shuffles) and what was added.
    """
    if not 0 <= share < 1:
        raise ValueError(f"share={share}; accepted: [0, 1)")
    if share and not extra:
        raise TraceDataError("no rows to mix in: the traces hold no operation lines")
    want = share / (1 - share) * sum(r["length"] for r in rows)
    added, tokens = [], 0
    while tokens < want:
        row = extra[len(added) % len(extra)]
        added.append(row)
        tokens += row["length"]
    mixed = rows + added
    return mixed, {"share": share, "rows": len(added), "tokens": tokens,
                   "actual_share": tokens / max(sum(r["length"] for r in mixed), 1)}  # fmt: skip


def load_trace_records(path: str | os.PathLike) -> list[dict]:
    """Trace records from an `apr-env data traces` output folder (its ``traces.json``) or that file.

    Raises:
        TraceDataError: no such file, not JSON, or records without ``trace_dict``/``search_path``.
    """
    path = Path(path)
    file = path / "traces.json" if path.is_dir() else path
    expected = "the traces.json written by `apr-env data traces --out DIR` (or that folder)"
    if not file.is_file():
        raise TraceDataError(f"no trace file at {str(file)!r}; expected {expected}")
    try:
        records = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TraceDataError(f"{str(file)!r} is not valid JSON ({err}); expected {expected}") from err
    if not isinstance(records, list) or not records:
        raise TraceDataError(f"{str(file)!r} holds no list of trace records; expected {expected}")
    bad = [
        i
        for i, r in enumerate(records)
        if not isinstance(r, dict) or not ({"trace_dict", "search_path"} & set(r)) or "nums" not in r
    ]
    if bad:
        raise TraceDataError(
            f"{str(file)!r}: {len(bad)} record(s) (first index {bad[0]}) have no nums and trace_dict/search_path; "
            f"expected {expected}"
        )
    return records


def record_problem(record: dict) -> Problem:
    """The problem a trace record solves."""
    return Problem(int(record["target"]), tuple(int(x) for x in record["nums"]))


def padding_waste(lengths: list[int], batch_size: int, *, grouped: bool, seed: int = 0) -> float:
    """Fraction of a padded epoch that is padding, for batches drawn as the trainer draws them.

    `grouped`: transformers' `LengthGroupedSampler` (the trainer's ``group_by_length``: random
    mega-batches of 50 batches, sorted by length inside); else a random permutation.
    """
    import torch
    from transformers.trainer_pt_utils import LengthGroupedSampler

    gen = torch.Generator().manual_seed(seed)
    if grouped:
        order = list(LengthGroupedSampler(batch_size, lengths=lengths, generator=gen))
    else:
        order = torch.randperm(len(lengths), generator=gen).tolist()
    padded = real = 0
    for s in range(0, len(order), batch_size):
        batch = [lengths[i] for i in order[s : s + batch_size]]
        padded += max(batch) * len(batch)
        real += sum(batch)
    return 1 - real / padded if padded else 0.0
