"""The tree-rollout record: one row per generated segment of one thread, as versioned JSON Lines.

A spawn tree is not one sequence. Every model call of every thread (the root's pre-spawn
segment, each child, the root resumed after a join, nested children...) becomes its own row
whose prompt is exactly the token ids the sampler was conditioned on and whose completion is
exactly the ids it sampled; rows of one episode share `episode_id`, rows of the G episodes of
one problem share `group_id`. Nothing is re-tokenised (reference flaws 21, 22): ids and
logprobs come from the runner's records (`RunConfig(record_calls=True)`, `agents.llm_agent`).

Schema ``apr-env/tree-rollout`` version 1 (`SCHEMA_VERSION`), one JSON object per line:

============== ============ ==========================================================================
field          type         meaning
============== ============ ==========================================================================
schema_version int          1
episode_id     int          unique within the file (a step's batch)
group_id       int          episodes of one problem (the GRPO group) share it
node_id        int          thread id in the episode (root = 0)
parent_id      int | null   the spawning thread's id; null for the root
depth          int          root = 0
call_index     int          which call of the thread (0 = first; a resumed parent has 1, 2, ...)
prompt_ids     list[int]    what the sampler was conditioned on (bos included)
completion_ids list[int]    what it generated, EOS included when it stopped on EOS
logprobs       list[float]  sampler log-probability of each completion id (len = completion)
loss_mask      list[int]    1 = trainable; 0 = runtime-inserted (forced ``<Calling Sub Searches>``)
reward         float        the episode's reward (same on every row of the episode)
node_success   float        1.0 if this thread's answer verified (root: the episode is correct)
children_success list[float] per direct child of this thread, 1.0 if its answer verified
advantage      float | null filled by the trainer (`trainers.grpo.assign_advantages`)
============== ============ ==========================================================================

Runtime-inserted text (join blocks, child prompts, the parent's pre-spawn context on resume)
sits in `prompt_ids`, so each generated span is trained exactly once (reference flaw 9).

`to_trl_rows` / `from_trl_rows` convert to and from the row layout of TRL's GRPO
(`prompt_ids`, `completion_ids`, `completion_mask`, `old_per_token_logps`, `advantages`), with
the tree fields kept as extra columns, so a TRL-style trainer can consume these rows.

What this module leaves to others: rewards and advantages (`trainers.grpo`), running episodes
(`runtime.runner`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

SCHEMA_NAME = "apr-env/tree-rollout"
SCHEMA_VERSION = 1


@dataclass
class TreeRow:
    """One generated segment of one thread (see the module docstring for each field)."""

    episode_id: int
    group_id: int
    node_id: int
    parent_id: int | None
    depth: int
    call_index: int
    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float]
    loss_mask: list[int]
    reward: float = 0.0
    node_success: float = 0.0
    children_success: list[float] = field(default_factory=list)
    advantage: float | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        n = len(self.completion_ids)
        if len(self.logprobs) != n or len(self.loss_mask) != n:
            raise ValueError(
                f"row (episode {self.episode_id}, node {self.node_id}, call {self.call_index}): completion_ids, "
                f"logprobs and loss_mask must have the same length, got {n}, {len(self.logprobs)}, "
                f"{len(self.loss_mask)}"
            )
        if not self.prompt_ids:
            raise ValueError(f"row (episode {self.episode_id}, node {self.node_id}): prompt_ids is empty")

    @property
    def trainable_tokens(self) -> int:
        return sum(self.loss_mask)


_FIELDS = tuple(f.name for f in fields(TreeRow))


def rows_from_record(record: dict, episode_id: int, group_id: int) -> list[TreeRow]:
    """The rows of one runner record (made with ``RunConfig(record_calls=True)`` and the LLM agent).

    Calls without sampler output (a thread whose prompt did not fit, a call the episode ended
    before it ran) produce no row. Raises ValueError when the record lacks per-call token ids.
    """
    if "calls" not in record:
        raise ValueError("record has no 'calls': run the episodes with RunConfig(record_calls=True)")
    tree = record["tree"]
    rows = []
    for node in tree:
        nid = node["id"]
        success = (
            float(bool(record["correct"])) if node["parent"] is None else float(bool(node["answer_verified"]))
        )
        children = [float(bool(tree[c]["answer_verified"])) for c in node["children"]]
        for k, call in enumerate(record["calls"][nid]):
            out = call.get("output_ids")
            if not out:
                continue
            if "prompt_ids" not in call or call.get("logprobs") is None or len(call["logprobs"]) != len(out):
                raise ValueError(
                    f"record {record.get('index')}, thread {nid}, call {k}: needs prompt_ids, output_ids and "
                    "one logprob per output id (use the LLM agent with return_logprob=True)"
                )
            forced = set(call.get("forced_positions") or ())
            rows.append(
                TreeRow(
                    episode_id=episode_id,
                    group_id=group_id,
                    node_id=nid,
                    parent_id=node["parent"],
                    depth=node["depth"],
                    call_index=k,
                    prompt_ids=list(call["prompt_ids"]),
                    completion_ids=list(out),
                    logprobs=[float(x) for x in call["logprobs"]],
                    loss_mask=[0 if j in forced else 1 for j in range(len(out))],
                    reward=float(record["reward"]),
                    node_success=success,
                    children_success=children,
                )
            )
    return rows


def write_rows(rows: Iterable[TreeRow], path: str | Path) -> Path:
    """Write rows as JSON Lines (one object per row, `schema_version` on each)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(asdict(row)) + "\n")
    return path


def read_rows(path: str | Path) -> list[TreeRow]:
    """Read rows written by `write_rows`; a row of another schema version raises ValueError."""
    rows = []
    with Path(path).open() as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            data = json.loads(line)
            version = data.get("schema_version")
            if version != SCHEMA_VERSION:
                raise ValueError(
                    f"{path}:{n}: schema_version {version!r}; this reader accepts {SCHEMA_NAME} "
                    f"version {SCHEMA_VERSION}"
                )
            unknown = set(data) - set(_FIELDS)
            if unknown:
                raise ValueError(f"{path}:{n}: unknown fields {sorted(unknown)}; accepted: {list(_FIELDS)}")
            rows.append(TreeRow(**data))
    return rows


TRL_COLUMNS = ("prompt_ids", "completion_ids", "completion_mask", "old_per_token_logps", "advantages")
"""TRL GRPO's per-row columns; the tree fields ride along as extra columns."""
_TREE_COLUMNS = ("episode_id", "group_id", "node_id", "parent_id", "depth", "call_index", "reward",
                 "node_success", "children_success")  # fmt: skip


def to_trl_rows(rows: Sequence[TreeRow]) -> list[dict]:
    """TRL-shaped dicts: `completion_mask` = loss mask, `old_per_token_logps` = sampler logprobs,
    `advantages` = the row's advantage (a scalar per row, as TRL's). Rows need an advantage."""
    out = []
    for row in rows:
        if row.advantage is None:
            raise ValueError(
                f"row (episode {row.episode_id}, node {row.node_id}) has no advantage; "
                "call trainers.grpo.assign_advantages first"
            )
        out.append(
            {
                "prompt_ids": list(row.prompt_ids),
                "completion_ids": list(row.completion_ids),
                "completion_mask": list(row.loss_mask),
                "old_per_token_logps": list(row.logprobs),
                "advantages": row.advantage,
                **{k: getattr(row, k) for k in _TREE_COLUMNS},
            }
        )
    return out


def from_trl_rows(trl_rows: Sequence[dict]) -> list[TreeRow]:
    """Inverse of `to_trl_rows`."""
    return [
        TreeRow(
            prompt_ids=list(r["prompt_ids"]),
            completion_ids=list(r["completion_ids"]),
            loss_mask=list(r["completion_mask"]),
            logprobs=list(r["old_per_token_logps"]),
            advantage=r["advantages"],
            **{k: r[k] for k in _TREE_COLUMNS},
        )
        for r in trl_rows
    ]
