"""Training data from the symbolic solvers: official-layout traces and per-thread segments.

    apr-env data traces --protocol apr --n 10000 --seed 0 --workers 2 --out data/apr

writes ``traces.json`` (a JSON list in the official layout: problem fields + ``trace_dict``
for APR, ``search_path`` for SoS+; reference section 2.10) and ``segments.jsonl``: one line per
thread segment the model must learn to write, ``{"prompt", "completion", "kind", "index"}``.
The prompt holds everything the runtime provides (the thread's prompt, and for a resumed
parent its earlier text and the join block), the completion only what the model generates,
so a trainer that puts the loss on completions trains each generated span once and never
the runtime-inserted join text (reference flaw 9).

Problem i uses seed ``(seed, i)``-derived streams (`apr_env.seeding.episode_seed`), so the
output is identical for any worker count and any chunking.
"""

from __future__ import annotations

import itertools
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from apr_env import grammar as g
from apr_env.problem import Problem
from apr_env.seeding import episode_seed
from apr_env.text import common_prefix_len
from apr_env.tokenizer import load_tokenizer
from runtime.progress import progress_bar

PROTOCOLS = ("apr", "serial")


def trace_record(
    problem: Problem, protocol: str, seed: int, beam_size: int | None = None, sub_beam_size: int | None = None
) -> dict:
    """One problem's solver trace in the official layout (APR: `apr_trace`; serial: `sosp_trace`).

    ``beam_size`` / ``sub_beam_size`` None draw the official distributions (APR 1..10 / beam..15,
    SoS+ 1..5); ints fix them (smaller beams give shorter traces, for CPU-scale models).
    """
    if protocol == "apr":
        from agents.apr_solver import apr_trace

        return apr_trace(problem, seed=seed, beam_size=beam_size, sub_beam_size=sub_beam_size)
    if protocol == "serial":
        from agents.sosp import sosp_trace

        return sosp_trace(problem, seed=seed, beam_size=beam_size)
    raise ValueError(f"protocol {protocol!r} has no solver traces; accepted: {', '.join(PROTOCOLS)}")


def segments(record: dict, index: int = 0) -> list[dict]:
    """Per-thread (prompt, completion) pairs of a trace record (see the module docstring)."""
    out = []
    if "trace_dict" not in record:
        text = record["search_path"]
        head, _, rest = text.partition("\n")
        return [{"prompt": head, "completion": "\n" + rest, "kind": "serial", "index": index}]
    td = record["trace_dict"]
    for k, text in enumerate(td["main_calls"]):
        if k == 0:
            cut = text.index("\n", text.index("Current State: "))
        else:
            cut = text.rindex(g.END_SUB_SEARCHES + "\n") + len(g.END_SUB_SEARCHES) + 1
        out.append({"prompt": text[:cut], "completion": text[cut:], "kind": "parent", "index": index})
    for group in td["sub_calls"]:
        for child in group:
            text = child["main_calls"][0]
            cut = text.index("\n", text.index("Current State: "))
            out.append({"prompt": text[:cut], "completion": text[cut:], "kind": "child", "index": index})
    return out


def official_token_stats(record: dict, tokenizer=None) -> dict:
    """The token statistics the official generator stores with each APR trace (reference 2.10, 3.9).

    Counted with `tokenizer` (anything `apr_env.tokenizer.load_tokenizer` accepts; the official
    files used Llama-2's, pass its folder to match them; default: the Countdown tokenizer).
    Per sequence (every parent segment and every child, each with its prompt) ``bos + text +
    eos``; ``token_count`` = the sum over all sequences minus the tokens of the common prefix
    of consecutive parent segments; ``longest_seq_token_count``; ``avg_seq_token_count`` =
    token_count / (children + 1); ``avg_sub_seq_token_count`` = the mean child sequence (our
    reading of the name; 0 without children); ``sub_call_count`` = children per spawn.
    """
    tok = load_tokenizer(tokenizer)
    td = record["trace_dict"]
    parents = td["main_calls"]
    children = [c["main_calls"][0] for group in td["sub_calls"] for c in group]
    lengths = [tok.count(text) + 2 for text in (*parents, *children)]
    # the character-wise common prefix of consecutive parent segments is what the official count subtracts
    shared = sum(tok.count(a[: common_prefix_len(a, b)]) for a, b in itertools.pairwise(parents))
    total = sum(lengths) - shared
    child_lengths = lengths[len(parents) :]
    return {
        "token_count": total,
        "longest_seq_token_count": max(lengths),
        "avg_seq_token_count": total / (len(children) + 1),
        "avg_sub_seq_token_count": sum(child_lengths) / len(child_lengths) if child_lengths else 0,
        "sub_call_count": len(children) / len(td["sub_calls"]) if td["sub_calls"] else 0,
    }


def _chunk(args: tuple) -> list[dict]:
    problems, protocol, seed, start, token_stats, beams = args
    records = [
        trace_record(p, protocol, episode_seed(seed, start + i), *beams) for i, p in enumerate(problems)
    ]
    if token_stats is not False and protocol == "apr":
        tok = load_tokenizer(token_stats)
        for record in records:
            record.update(official_token_stats(record, tok))
    return records


def build_traces(
    problems: list[Problem],
    protocol: str,
    *,
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
    chunk: int = 256,
    token_stats=False,
    beam_size: int | None = None,
    sub_beam_size: int | None = None,
) -> list[dict]:
    """Trace records for `problems` (same output for any `workers`/`chunk`).

    `token_stats`: False (default) leaves the official token statistics out; None adds them
    counted with the Countdown tokenizer, a Hugging Face tokenizer folder (e.g. Llama-2's, as
    the official files) adds them counted with it (APR only; see `official_token_stats`).
    `beam_size`, `sub_beam_size`: fix the solvers' beams (see `trace_record`); None: official.
    """
    beams = (beam_size, sub_beam_size)
    jobs = [
        (problems[s : s + chunk], protocol, seed, s, token_stats, beams)
        for s in range(0, len(problems), chunk)
    ]
    bar = progress_bar(len(problems), enabled=progress, desc=f"{protocol} traces", unit="trace")
    out: list[dict] = []
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for part in pool.map(_chunk, jobs):
                out.extend(part)
                bar.update(len(part))
    else:
        for job in jobs:
            part = _chunk(job)
            out.extend(part)
            bar.update(len(part))
    bar.close()
    return out


def write_traces(records: list[dict], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``traces.json`` (official layout) and ``segments.jsonl``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    traces = out / "traces.json"
    traces.write_text(json.dumps(records, indent=2))
    segs = out / "segments.jsonl"
    with segs.open("w") as f:
        for i, rec in enumerate(records):
            for seg in segments(rec, i):
                f.write(json.dumps(seg) + "\n")
    return traces, segs
