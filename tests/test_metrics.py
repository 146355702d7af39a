"""Specification of `apr_env.metrics`: exact token metrics of hand-computed thread trees.

Trees are grown by playing an `apr_env.Episode` with the per-character tokenizer
(`char_tok`, conftest), so every count is a character count; the arithmetic is written in
the comments. Covers: the reference 2.9 example; a nested tree (depth 2, unequal children,
where the slowest child *subtree* is not the longest child *thread*) for every metric;
chains and stars; rejected children and false claims; exact counts from token ids; the
same tree played in parallel steps has the same metrics.

Text lengths used below (characters = tokens):
- APR root prompt / child prompt of node #0 for T=10, [1, 4, 6, 8]:
  ``Moving to Node #0`` (17) + ``\\n`` + ``Current State: 10:[1, 4, 6, 8], Operations: []`` (46) = 64.
- An action that follows a context not ending in ``\\n`` gets one ``\\n`` in front (+1 context
  and prefill token; the policy did not generate it).
- Calling block for n children of node #0 at a one-digit level:
  ``<Calling Sub Searches>\\n`` (23) + n * ``<Start Sub Search i at level L> Moving to Node #0\\n`` (49+1)
  + ``<End Calling Sub Searches>\\n`` (27) = 50 + 50n.
- Join block of n 'no solution' children of node #0:
  ``<Sub Searches>\\n`` (15) + n * ``<No Solution in Sub Search i at level L at Node #0>\\n`` (51+1)
  + ``<End Sub Searches>\\n`` (19) = 34 + 52n.
"""

from __future__ import annotations

import pytest

from apr_env import Episode, Limits, Problem
from apr_env.actions import Spawn, Text
from apr_env.metrics import Metrics

P = Problem(10, (1, 4, 6, 8))


def _play(ep: Episode, script: dict[int, list], *, parallel: bool = False) -> Episode:
    """Play per-thread action lists: FIFO one thread at a time, or every runnable thread per step."""
    for _ in range(100):
        if ep.done:
            return ep
        if parallel:
            ep.act_parallel({tid: script[tid].pop(0) for tid in ep.runnable})
        else:
            tid = ep.runnable[0]
            ep.act(tid, script[tid].pop(0))
    raise AssertionError("episode did not end")


def _nested_script() -> dict[int, list]:
    """Root spawns t1, t2 (node #0); t1 spawns grandchild t3; t2 is the longest child thread.

    t0: Spawn 2 children after "a"*10, then (resumed) "b"*20
    t1: Spawn 1 child after "c"*30, then (resumed) "d"*5
    t2: "e"*200 (no spawn)
    t3: "f"*100 (depth 2)
    """
    return {
        0: [Spawn(("0", "0"), text="a" * 10), "b" * 20],
        1: [Spawn(("0",), text="c" * 30), "d" * 5],
        2: ["e" * 200],
        3: ["f" * 100],
    }


@pytest.fixture
def nested(char_tok) -> Episode:
    ep = Episode(P, "apr", limits=Limits(max_depth=2), tokenizer=char_tok)
    return _play(ep, _nested_script())


# Hand computation of the nested tree. The "\n" the episode puts in front of an action is context and
# prefill, never generated ("gen" counts the rest; the line break inside a Spawn's rendering is the action's):
# t0 call 0: "\n"+"a"*10 + "\n" + 2-child block (50+100=150): 162 chars, 1 separator, gen 161; prompt 64.
#    join: kept = 64 + 11 + 1 = 76, inserted 34+2*52 = 138 -> call 1 prompt 214; "b"*20 -> 20.
# t1 call 0: "\n"+"c"*30 + "\n" + 1-child block (100): 132 chars, 1 separator, gen 131; prompt 64.
#    join: kept = 64 + 31 + 1 = 96, inserted 34+52 = 86 -> call 1 prompt 182; "d"*5 -> 5.
# t2: "\n"+"e"*200: 201 chars, gen 200; prompt 64.     t3: "\n"+"f"*100: 101 chars, gen 100; prompt 64.
NESTED_EXPECTED = {
    "total_tokens": 161 + 20 + 131 + 5 + 200 + 100,  # 617
    "prefill_tokens": (64 + 138) + (64 + 86) + 64 + 64 + 4,  # 484: first prompts + join blocks + 4 separators
    "paper_total_tokens": 617 + 484,
    # CP(t3) = 100; CP(t1) = 131 + 5 + 100 = 236; CP(t2) = 200; CP(t0) = 161 + 20 + max(236, 200) = 417
    "critical_path_tokens": 417,
    "longest_thread_tokens": 200,  # t2 (t0: 181, t1: 136, t3: 100)
    # contexts (separators included): t0 64+162=226, 214+20=234; t1 64+132=196, 182+5=187; t2 64+201=265;
    # t3 64+101=165
    "max_context_tokens": 265,
    "num_threads": 4,
    "num_spawns": 2,
    "depth": 2,
    "false_claims": 0,
    "rejected_children": 0,
}


@pytest.mark.parametrize("name,expected", list(NESTED_EXPECTED.items()), ids=list(NESTED_EXPECTED))
def test_nested_tree_metric_matches_hand_count(nested, name, expected):
    assert getattr(nested.metrics, name) == expected


def test_nested_tree_critical_path_follows_slowest_subtree_not_longest_child(nested):
    # t2 is the longest child thread (200) but t1's subtree (236) is slower: CP uses 236.
    m = nested.metrics
    assert m.critical_path_tokens == 161 + 20 + 236
    assert m.critical_path_tokens != 161 + 20 + 200


def test_nested_tree_same_metrics_when_played_in_parallel_steps(char_tok, nested):
    ep = Episode(P, "apr", limits=Limits(max_depth=2), tokenizer=char_tok)
    _play(ep, _nested_script(), parallel=True)
    assert ep.metrics == nested.metrics


def test_grandchild_rejected_when_max_depth_is_one(char_tok):
    ep = Episode(P, "apr", limits=Limits(max_depth=1), tokenizer=char_tok)
    script = _nested_script()
    del script[3]  # no grandchild is created
    _play(ep, script)
    m = ep.metrics
    assert (m.num_threads, m.depth, m.rejected_children) == (3, 1, 1)
    assert ep.groups[1].rejected == {0: "max_depth"}
    # t1 resumes after a join naming the rejected child as no solution at level 2
    assert "<No Solution in Sub Search 0 at level 2 at Node #0>" in ep.threads[1].calls[1].inserted


def test_worked_example_metrics_match_hand_count(worked_example, char_tok):
    ex = worked_example
    ep = Episode(ex.problem, "apr", limits=Limits(), tokenizer=char_tok)
    _play(
        ep,
        {
            0: [ex.root_segment_0, ex.root_continuation],
            1: [ex.child_actions[0]],
            2: [ex.child_actions[1]],
        },
    )
    # root call 0: prompt 64, completion separator 1 + 652 generated = 653; kept 64 + 1 + (485 + 10) = 560
    # root call 1: prompt 560 + join 305 = 865, completion 531 (context ends with "\n": no separator)
    # child 0: prompt 78, completion 1 + 313;  child 1: prompt 78, completion 1 + 249
    assert ep.metrics == Metrics(
        total_tokens=652 + 531 + 313 + 249,  # 1745
        prefill_tokens=64 + 305 + 78 + 78 + 3,  # 528: prompts, the join block, 3 separators
        paper_total_tokens=1745 + 528,
        critical_path_tokens=652 + max(313, 249) + 531,  # 1496
        longest_thread_tokens=652 + 531,  # 1183, the root
        max_context_tokens=865 + 531,  # 1396, the resumed root (separators are context)
        num_threads=3,
        num_spawns=1,
        depth=1,
        false_claims=0,
        rejected_children=0,
    )


def test_single_serial_thread_critical_path_equals_total(char_tok):
    ep = Episode(P, "serial", tokenizer=char_tok)
    ep.act(0, "x" * 40)
    m = ep.metrics
    # serial prompt "Current State: 10:[1, 4, 6, 8], Operations: []" = 46; completion separator + 40 = 41
    assert (m.total_tokens, m.critical_path_tokens, m.longest_thread_tokens) == (40, 40, 40)
    assert (m.prefill_tokens, m.max_context_tokens, m.num_threads, m.num_spawns, m.depth) == (47, 87, 1, 0, 0)


def test_chain_of_single_children_has_critical_path_equal_to_total(char_tok):
    # Every thread spawns one child until depth 30; the chain has no parallelism at all.
    ep = Episode(P, "apr", limits=Limits(max_depth=30, max_threads=64), tokenizer=char_tok)
    for _ in range(500):
        if ep.done:
            break
        tid = ep.runnable[0]
        t = ep.threads[tid]
        ep.act(tid, Spawn(("0",)) if len(t.calls) == 1 and t.depth < 30 else "z" * (tid + 1))
    m = ep.metrics
    assert ep.done and (m.num_threads, m.depth, m.num_spawns) == (31, 30, 30)
    assert m.critical_path_tokens == m.total_tokens


def test_star_of_equal_children_has_critical_path_of_one_child(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Spawn(("0", "0", "0", "0")))  # separator + block 50 + 4*50: 250 generated
    for tid in (1, 2, 3, 4):
        ep.act(tid, "y" * 99)  # separator + 99: 99 each
    ep.act(0, "done")  # context ends with "\n": 4
    m = ep.metrics
    assert m.total_tokens == 250 + 4 + 4 * 99
    assert m.critical_path_tokens == 250 + 4 + 99


def test_rejected_children_are_counted_and_add_no_tokens(char_tok):
    ep = Episode(P, "apr", limits=Limits(max_children_per_spawn=2), tokenizer=char_tok)
    ep.act(0, Spawn(("0", "0", "0", "0", "0")))  # separator + 50 + 5*50: 300; 2 created, 3 rejected
    ep.act(1, "q" * 9)  # separator + 9
    ep.act(2, "q" * 19)  # separator + 19
    ep.act(0, "end")  # 3
    m = ep.metrics
    assert (m.num_threads, m.rejected_children, m.num_spawns) == (3, 3, 1)
    assert m.total_tokens == 300 + 9 + 19 + 3
    assert m.critical_path_tokens == 300 + 19 + 3


def test_false_claim_is_counted(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Spawn(("0",)))
    # The child claims 1+4+6+8 = 10 by a made-up path (1*4=10 is wrong arithmetic).
    ep.act(
        1,
        "10,10 equal: Goal Reached\nMoving to Node #0\n"
        "Current State: 10:[1, 4, 6, 8], Operations: []\n"
        "Exploring Operation: 1*4=10, Resulting Numbers: [6, 8, 10]\n"
        "10,10 equal: Goal Reached",
    )
    assert ep.metrics.false_claims == 1


def test_token_ids_give_exact_counts_whatever_the_text(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Text("seven chars as three ids", token_ids=(5, 6, 7)))
    m = ep.metrics
    assert m.total_tokens == 3  # the ids, not the 24 characters; no separator added to id actions
    assert ep.threads[0].calls[0].completion == "seven chars as three ids"


def test_text_then_token_ids_in_one_call_counts_every_token(char_tok):
    # BUG (episode.py `_append`): after a text chunk, an id chunk starts `completion_ids` with only its own
    # ids; the next id chunk then counts `len(completion_ids)` as all tokens so far and loses the text's.
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Text("abc", partial=True))  # separator (prefill) + "abc" = 3 generated tokens
    ep.act(0, Text("d", token_ids=(100,), partial=True))  # 1
    ep.act(0, Text("e", token_ids=(101,)))  # 1
    assert ep.threads[0].calls[0].completion == "\nabcde"
    assert (ep.metrics.total_tokens, ep.metrics.prefill_tokens) == (3 + 1 + 1, 64 + 1)


def test_metrics_to_dict_lists_every_metric(nested):
    d = nested.metrics.to_dict()
    assert d == NESTED_EXPECTED


# --------------------------------------------------------------------------------------
# Edge cases of the accounting: runtime-inserted separators, spawns that name no child
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action,generated,separators",
    [("No solution found.\n", 2, 1), ("\nNo solution found.\n", 3, 0)],
    ids=["separator_inserted", "newline_written_by_the_policy"],
)
def test_the_separator_the_episode_inserts_is_prefill_not_generated(action, generated, separators):
    ep = Episode(P, "apr")  # the Countdown tokenizer: "No solution found.\n" is 2 tokens, "\n" one
    ep.act(0, action)
    prompt = ep.tokenizer.count(ep.threads[0].calls[0].prompt)
    m = ep.metrics
    assert ep.observation(0).endswith(":[1, 4, 6, 8], Operations: []\nNo solution found.\n")
    assert (m.total_tokens, m.critical_path_tokens, m.longest_thread_tokens) == (generated,) * 3
    assert m.prefill_tokens == prompt + separators
    assert m.max_context_tokens == prompt + 3  # the separator is context either way
    assert ep.summary()["tree"][0]["generated_tokens"] == generated


def test_separators_do_not_count_against_the_generated_token_budget(char_tok):
    ep = Episode(P, "serial", limits=Limits(max_total_tokens=40), tokenizer=char_tok)
    ep.act(0, "x" * 40)  # separator + 40 generated: within the budget
    assert ep.outcome != "token_budget" and not ep.truncated
    assert ep.metrics.total_tokens == 40


def test_a_separator_cut_off_by_the_window_is_not_counted(char_tok):
    ep = Episode(P, "apr", limits=Limits(context_window=64 + 5), tokenizer=char_tok)  # prompt 64
    ep.act(0, Text("abcd", partial=True))  # separator + 4: the window is full
    ep.act(0, "x")  # its separator does not fit: nothing is added and the root fails
    m = ep.metrics
    assert ep.outcome == "context_window" and ep.threads[0].calls[0].completion == "\nabcd"
    assert (m.total_tokens, m.prefill_tokens, m.max_context_tokens) == (4, 64 + 1, 69)


def test_a_spawn_request_naming_no_child_is_not_a_spawn(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    assert ep.act(0, "<Calling Sub Searches>\n<End Calling Sub Searches>") == "spawn"  # empty join
    assert (0, "empty_spawn") in ep.format_errors
    assert ep.metrics.num_spawns == 0
    ep.act(0, Spawn(("0",)))
    assert ep.metrics.num_spawns == 1


def test_a_spawn_whose_children_were_all_rejected_is_a_spawn(char_tok):
    ep = Episode(P, "apr", limits=Limits(max_threads=1), tokenizer=char_tok)
    ep.act(0, Spawn(("0", "0")))  # both refused (max_threads): they join as no solution
    m = ep.metrics
    assert (m.num_threads, m.rejected_children, m.num_spawns) == (1, 2, 1)
