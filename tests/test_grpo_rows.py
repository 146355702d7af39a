"""Tree rows and advantages on hand-built trees with answers worked out by hand.

The trees are runner records (the layout `RunConfig(record_calls=True)` produces), written
out here so every id, mask and advantage can be checked against a number computed by hand:

Episode A (4 threads, nested spawns, correct, reward 1):
    t0 root: call 0 spawns t1, t2 (one forced ``<Calling Sub Searches>`` at output position 2);
             call 1 (after the join) answers.
    t1 child of t0: call 0 spawns t3; call 1 answers (verified).
    t2 child of t0: one call, no answer.
    t3 child of t1 (depth 2): one call, answer verified.
Episode B (1 thread, wrong, reward 0): t0 one call.
Both episodes are one group (G = 2).
"""

from __future__ import annotations

import pytest

from trainers.grpo import assign_advantages, group_advantages
from trainers.grpo_config import GRPOConfig
from trainers.rollout_schema import (
    SCHEMA_VERSION,
    TreeRow,
    from_trl_rows,
    read_rows,
    rows_from_record,
    to_trl_rows,
    write_rows,
)


def _call(prompt, out, forced=()):
    return {"prompt_ids": prompt, "output_ids": out, "logprobs": [-0.1 * (i + 1) for i in range(len(out))],
            "forced_positions": list(forced)}  # fmt: skip


def _node(i, parent, depth, children, verified):
    return {"id": i, "parent": parent, "depth": depth, "children": children, "answer_verified": verified}


EPISODE_A = {
    "index": 0,
    "correct": True,
    "reward": 1.0,
    "tree": [
        _node(0, None, 0, [1, 2], True),
        _node(1, 0, 1, [3], True),
        _node(2, 0, 1, [], False),
        _node(3, 1, 2, [], True),
    ],
    "calls": [
        [_call([1, 10, 11], [20, 21, 22, 23], forced=[2]), _call([1, 10, 11, 20, 21, 40, 41], [24, 2])],
        [_call([1, 50], [51, 52]), _call([1, 50, 51, 60], [53, 2])],
        [_call([1, 70], [71, 72, 73])],
        [_call([1, 80], [81, 2])],
    ],
}
EPISODE_B = {
    "index": 1,
    "correct": False,
    "reward": 0.0,
    "tree": [_node(0, None, 0, [], False)],
    "calls": [[_call([1, 10, 11], [90, 91, 92])]],
}


def _rows():
    return rows_from_record(EPISODE_A, episode_id=0, group_id=0) + rows_from_record(
        EPISODE_B, episode_id=1, group_id=0
    )


def test_every_call_of_every_thread_becomes_one_row_with_its_tree_position():
    got = [(r.episode_id, r.node_id, r.parent_id, r.depth, r.call_index) for r in _rows()]
    assert got == [
        (0, 0, None, 0, 0),
        (0, 0, None, 0, 1),
        (0, 1, 0, 1, 0),
        (0, 1, 0, 1, 1),
        (0, 2, 0, 1, 0),
        (0, 3, 1, 2, 0),
        (1, 0, None, 0, 0),
    ]


def test_rows_keep_sampler_ids_and_logprobs_and_mask_forced_tokens():
    root0, root1 = _rows()[:2]
    assert root0.prompt_ids == [1, 10, 11] and root0.completion_ids == [20, 21, 22, 23]
    assert root0.loss_mask == [1, 1, 0, 1]  # position 2 was inserted by the agent, not sampled
    assert root0.logprobs == pytest.approx([-0.1, -0.2, -0.3, -0.4])
    # the resumed parent: the join block (40, 41) and the pre-spawn text are prompt, never trained again
    assert root1.prompt_ids == [1, 10, 11, 20, 21, 40, 41] and root1.completion_ids == [24, 2]
    assert root1.loss_mask == [1, 1]


def test_rows_carry_node_and_children_success():
    rows = {(r.episode_id, r.node_id): r for r in _rows()}
    assert rows[0, 0].node_success == 1.0 and rows[0, 0].children_success == [1.0, 0.0]
    assert rows[0, 1].node_success == 1.0 and rows[0, 1].children_success == [1.0]
    assert rows[0, 2].node_success == 0.0 and rows[0, 2].children_success == []
    assert rows[1, 0].node_success == 0.0


def test_record_without_calls_is_refused_with_a_fix():
    with pytest.raises(ValueError, match="record_calls=True"):
        rows_from_record({k: v for k, v in EPISODE_B.items() if k != "calls"}, 0, 0)


EPISODES = {0: (0, 1.0), 1: (0, 0.0)}


def test_broadcast_baseline_is_over_episodes_not_rows():
    rows = _rows()
    assign_advantages(rows, EPISODES, GRPOConfig())
    # baseline = (1 + 0) / 2 over the two episodes; a row mean would give (6*1 + 0) / 7
    assert [r.advantage for r in rows] == [0.5] * 6 + [-0.5]


def test_broadcast_std_scaling_divides_by_the_group_std_of_episodes():
    rows = _rows()
    assign_advantages(rows, EPISODES, GRPOConfig(advantage_scale="std"))
    assert [round(r.advantage, 4) for r in rows] == [1.0] * 6 + [-1.0]


def test_orchestrator_only_masks_every_child_row_and_keeps_root_rows():
    rows = _rows()
    assign_advantages(rows, EPISODES, GRPOConfig(advantage="orchestrator_only"))
    assert [r.trainable_tokens for r in rows] == [3, 2, 0, 0, 0, 0, 3]
    assert {r.advantage for r in rows if r.episode_id == 0} == {0.5}


def test_local_node_scores_own_success_plus_mean_child_success():
    rows = _rows()
    assign_advantages(rows, EPISODES, GRPOConfig(advantage="local_node"))
    # node scores, episode A: t0 1 + (1+0)/2 = 1.5, t1 1 + 1 = 2, t2 0, t3 1 -> episode mean 1.125
    # episode B: t0 0 -> 0. Baseline = (1.125 + 0) / 2 = 0.5625
    want = [1.5, 1.5, 2.0, 2.0, 0.0, 1.0, 0.0]
    assert [r.advantage for r in rows] == pytest.approx([w - 0.5625 for w in want])


def test_episode_without_rows_still_counts_in_the_baseline():
    rows = rows_from_record(EPISODE_A, episode_id=0, group_id=0)
    assign_advantages(rows, {0: (0, 1.0), 1: (0, 0.0), 2: (0, 0.0)}, GRPOConfig())
    assert [r.advantage for r in rows] == pytest.approx([2 / 3] * 6)


@pytest.mark.parametrize(
    ("scores", "groups", "scale", "want"),
    [
        ([1, 0, 1, 1], [0, 0, 1, 1], "mean", [0.5, -0.5, 0, 0]),
        ([1, 1, 1], [0, 0, 0], "std", [0, 0, 0]),
        ([2, 0, 1], [0, 0, 0], "mean", [1, -1, 0]),
    ],
    ids=["two-groups", "equal-scores-give-zero", "three-episodes"],
)
def test_group_advantages_table(scores, groups, scale, want):
    assert group_advantages(scores, groups, scale) == pytest.approx(want, abs=1e-5)


def test_rows_round_trip_through_jsonl(tmp_path):
    rows = _rows()
    assign_advantages(rows, EPISODES, GRPOConfig())
    path = write_rows(rows, tmp_path / "rows.jsonl")
    assert read_rows(path) == rows


def test_rows_round_trip_through_trl_shaped_rows():
    rows = _rows()
    assign_advantages(rows, EPISODES, GRPOConfig())
    trl = to_trl_rows(rows)
    assert set(trl[0]) >= {
        "prompt_ids",
        "completion_ids",
        "completion_mask",
        "old_per_token_logps",
        "advantages",
    }
    assert trl[0]["completion_mask"] == [1, 1, 0, 1] and trl[0]["advantages"] == 0.5
    assert from_trl_rows(trl) == rows


def test_trl_export_needs_advantages():
    with pytest.raises(ValueError, match="assign_advantages"):
        to_trl_rows(_rows())


def test_reader_refuses_another_schema_version(tmp_path):
    path = write_rows(_rows()[:1], tmp_path / "rows.jsonl")
    path.write_text(path.read_text().replace(f'"schema_version": {SCHEMA_VERSION}', '"schema_version": 99'))
    with pytest.raises(ValueError, match="schema_version 99"):
        read_rows(path)


def test_row_with_mismatched_lengths_is_refused():
    with pytest.raises(ValueError, match="same length"):
        TreeRow(0, 0, 0, None, 0, 0, [1], [5, 6], [-0.1], [1, 1])


def test_rows_from_a_runner_record_mask_the_forced_spawn_token_and_keep_sent_ids():
    from test_llm_agent import TOK, ScriptBackend

    from agents.llm_agent import LLMAgent
    from apr_env import Problem
    from apr_env import grammar as g
    from runtime.runner import RunConfig, run_episodes

    def script(prompt: str) -> str:  # the root writes <Sub Searches> itself; the agent forces a spawn
        if prompt.endswith(g.CALLING):
            return "\n<Start Sub Search 0 at level 1> Moving to Node #0,0\n<End Calling Sub Searches>\n"
        if prompt.startswith("Moving to Node #0\n") and g.END_SUB_SEARCHES not in prompt:
            return (
                "\nExploring Operation: 8/4=2, Resulting Numbers: [1, 6, 2]\n"
                "Generated Node #0,0: 10:[1, 6, 2] Operation: 8/4=2\n<Sub Searches>\nmade-up"
            )
        return "No solution found.\n"

    backend = ScriptBackend(script)
    [rec] = run_episodes(LLMAgent(backend, TOK), [Problem(10, (1, 4, 6, 8))], RunConfig(record_calls=True))
    rows = rows_from_record(rec, episode_id=0, group_id=0)
    assert [(r.node_id, r.call_index) for r in rows] == [
        (0, 0),
        (0, 1),
        (1, 0),
    ]  # thread by thread, calls in order
    root = rows[0]
    masked = [root.completion_ids[j] for j, m in enumerate(root.loss_mask) if m == 0]
    assert masked == [TOK.token_id(g.CALLING)]
    sent = [r.input_ids for r in backend.requests]
    for row in rows:  # each row's prompt is exactly what the sampler was sent: no re-tokenisation
        assert row.prompt_ids in sent
