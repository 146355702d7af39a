"""Specification of `apr_env.episode.Episode`: acting, scheduling, limits, bad actions, structured actions.

Covers: first-in first-out scheduling (children in spawn order, partial actions to the back,
the parent back after its join); ignored actions (waiting, finished, unknown threads; after
the end) including parallel steps; every limit of `apr_env.limits.Limits` ending a thread or
the episode with a recorded reason, never an exception (context window for root, child,
child prompt and resumed parent; children per spawn; depth; threads; total tokens; root
prompt); bad actions of every kind (non-strings, bad dicts, wrongly typed structured
actions, empty and unprintable text, spawn bombs, absurd numbers and token ids); structured
actions as documented in `apr_env.actions`. Episodes use the per-character tokenizer unless
a test needs the Countdown one.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trace_text import calling_block

from apr_env import Episode, Limits, Problem
from apr_env.actions import Answer, Join, Spawn, Text
from apr_env.errors import ConfigError
from apr_env.protocols.apr import AprProtocol
from apr_env.protocols.broadcast import BroadcastProtocol
from apr_env.tokenizer import default_tokenizer, load_tokenizer
from apr_env.tree import ChildResult, Status, compact_tree

P = Problem(10, (1, 4, 6, 8))
ROOT_PROMPT = "Moving to Node #0\nCurrent State: 10:[1, 4, 6, 8], Operations: []"  # 64 characters


def assert_recorded_end(ep: Episode) -> None:
    """The episode is over with an outcome and a reward (the contract for any bad input)."""
    assert ep.done and isinstance(ep.outcome, str) and ep.outcome
    summary = ep.summary()
    assert isinstance(summary["reward"], float) and summary["outcome"] == ep.outcome


# --------------------------------------------------------------------------------------
# Scheduling and ignored actions
# --------------------------------------------------------------------------------------


def test_children_run_in_spawn_order_and_parent_returns_after_join(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    assert ep.runnable == [0]
    assert ep.act(0, calling_block("0", "0", "0")) == "spawn"
    assert ep.runnable == [1, 2, 3] and ep.threads[0].status is Status.WAITING
    assert [t.position for t in ep.threads[1:]] == [0, 1, 2]
    assert ep.act(1, Text("thinking", partial=True)) == "partial"
    assert ep.runnable == [2, 3, 1]  # a partial action moves the thread to the back
    for tid in (2, 3, 1):
        assert ep.act(tid, "No solution found.") == "finish"
    assert ep.runnable == [0] and ep.threads[0].status is Status.RUNNING


def test_action_of_a_waiting_parent_is_ignored_and_recorded(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, calling_block("0"))
    before = ep.observation(0)
    assert ep.act(0, "10,10 equal: Goal Reached") == "ignored"
    assert ep.observation(0) == before and (0, "action_while_waiting") in ep.format_errors
    assert not ep.done


def test_action_of_a_finished_thread_or_unknown_id_is_ignored(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, calling_block("0", "0"))
    ep.act(1, "No solution found.")
    assert ep.act(1, "more") == "ignored" and (1, "action_while_finished") in ep.format_errors
    for bad_tid in (7, -1, "t1", None):
        assert ep.act(bad_tid, "x") == "ignored"
    assert ep.runnable == [2]


def test_actions_after_the_end_are_ignored(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, "No solution found.")
    assert ep.done and ep.outcome == "no_answer"
    assert ep.act(0, "again") == "ignored"
    assert set(ep.act_parallel({0: "again", 5: "x"}).values()) <= {"ignored"}
    assert ep.threads[0].calls[0].completion == "\nNo solution found."


def test_parallel_step_ignores_a_waiting_parent_even_when_its_children_finish_in_that_step(char_tok):
    # BUG (episode.py act_parallel, second loop): the parent was waiting when the step began, so its
    # action must be ignored; today the children's join resumes it within the step and the stale
    # action is then applied to it (here it ends the whole episode).
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, calling_block("0"))
    events = ep.act_parallel({0: "No solution found.", 1: "No solution found."})
    assert events[1] == "finish"
    assert events.get(0, "ignored") == "ignored"
    assert not ep.done and ep.runnable == [0]
    assert ep.threads[0].calls[-1].completion == ""


def test_parallel_step_does_not_run_a_child_spawned_in_that_step(char_tok):
    # BUG (same loop): "children spawned in a step first act in the next step" (parallel env docs).
    ep = Episode(P, "apr", tokenizer=char_tok)
    events = ep.act_parallel({0: calling_block("0"), 1: "No solution found."})
    assert events[0] == "spawn"
    assert ep.threads[1].status is Status.RUNNING and ep.threads[1].calls[0].completion == ""


def test_parallel_step_acts_for_every_running_thread(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, calling_block("0", "0", "0"))
    events = ep.act_parallel({1: "a", 2: Text("b", partial=True), 3: "c"})
    assert events == {1: "finish", 2: "partial", 3: "finish"}
    assert ep.runnable == [2]


# --------------------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"context_window": 0}, "context_window must be a positive int, got 0"),
        ({"max_threads": True}, "max_threads must be a positive int, got True"),
        ({"max_children_per_spawn": "4"}, "max_children_per_spawn must be a positive int"),
        ({"max_depth": -1}, "max_depth must be an int >= 0, got -1"),
        ({"max_depth": True}, "max_depth must be an int >= 0, got True"),
        ({"max_depth": 1.0}, "max_depth must be an int >= 0, got 1.0"),
        ({"max_total_tokens": 0}, "max_total_tokens must be None or a positive int, got 0"),
        ({"max_total_tokens": True}, "max_total_tokens must be None or a positive int, got True"),
        ({"max_total_tokens": 10.0}, "max_total_tokens must be None or a positive int, got 10.0"),
    ],
    ids=[
        "window",
        "threads_bool",
        "children_str",
        "depth",
        "depth_bool",
        "depth_float",
        "total",
        "total_bool",
        "total_float",
    ],
)
def test_limits_reject_bad_values_with_message(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Limits(**kwargs)


def test_limits_accept_the_smallest_valid_values():
    limits = Limits(
        context_window=1, max_threads=1, max_children_per_spawn=1, max_depth=0, max_total_tokens=1
    )
    assert (limits.context_window, limits.max_threads, limits.max_children_per_spawn) == (1, 1, 1)
    assert (limits.max_depth, limits.max_total_tokens, limits.total_token_budget) == (0, 1, 1)


def test_total_token_budget_defaults_to_window_times_threads():
    assert Limits(context_window=100, max_threads=7).total_token_budget == 700
    assert Limits(context_window=100, max_threads=7, max_total_tokens=50).total_token_budget == 50


def test_root_text_past_the_window_is_cut_and_truncates_the_episode(char_tok):
    ep = Episode(P, "apr", limits=Limits(context_window=100), tokenizer=char_tok)
    assert ep.act(0, "x" * 500) == "fail"
    root = ep.threads[0]
    assert len(root.context) == 100  # 64 prompt + "\n" + 35 x: cut exactly at the window
    assert (root.status, root.reason) == (Status.FAILED, "context_window")
    assert ep.done and ep.truncated and ep.outcome == "context_window"
    assert ep.summary()["reward"] == 0.0


def test_a_10_mb_action_is_cut_at_the_window_as_an_action_just_past_it_is():
    # Countdown tokenizer, 4,096-token window: both keep "\n" and as many x as the prompt leaves room for
    kept = 4096 - default_tokenizer().count(ROOT_PROMPT) - 1
    huge, past = Episode(P, "apr"), Episode(P, "apr")
    assert huge.act(0, "x" * 10 * 2**20) == past.act(0, "x" * 4096) == "fail"
    assert huge.observation(0) == past.observation(0) == ROOT_PROMPT + "\n" + "x" * kept
    assert huge.outcome == past.outcome == "context_window" and huge.truncated and past.truncated
    assert huge.metrics == past.metrics and huge.metrics.max_context_tokens == 4096


def test_a_10_mb_action_with_unprintable_characters_is_masked_cut_and_recorded():
    kept = 4096 - default_tokenizer().count(ROOT_PROMPT) - 1
    huge, past = Episode(P, "apr"), Episode(P, "apr")
    huge.act(0, "\u00e9" * 10 * 2**20)
    past.act(0, "\u00e9" * 4096)
    assert huge.observation(0) == past.observation(0) == ROOT_PROMPT + "\n" + "?" * kept
    assert huge.format_errors == past.format_errors == [(0, "unprintable_characters")]
    assert huge.metrics == past.metrics


action_units = st.sampled_from(
    [
        "Exploring Operation: 8/4=2, Resulting Numbers: [1, 6, 2]\n",
        "Generated Node #0,0: 10:[1, 6, 2] Operation: 8/4=2\n",
        "Moving to Node #",
        "No solution found.",
        "<Calling Sub Searches>",
        "<s>",
        " at level ",
        "x" * 40,
        "\n",
        "\u00e9",
    ]
)


@settings(max_examples=200, deadline=None)
@given(action=st.lists(st.one_of(action_units, st.text(max_size=5)), max_size=30).map("".join))
def test_an_action_is_cut_where_the_whole_texts_tokens_reach_the_window(action):
    # the rule before actions were cut within a prefix: count and encode the whole text, keep
    # the tokens the window has room for (Countdown tokenizer; 21 prompt tokens, 100-token window)
    tok = default_tokenizer()
    ep = Episode(P, "serial", limits=Limits(context_window=100))
    prompt = ep.observation(0)
    masked = re.sub(r"[^\x20-\x7e\n\t]", "?", action)
    text = ep.protocol.separate(prompt[-1], masked)
    separator = len(text) - len(masked)  # the "\n" the episode puts in front: 1 prefill token, not generated
    room = 100 - tok.count(prompt)
    event = ep.act(0, action)
    if not text:
        return
    if tok.count(text) > room:
        assert event == "fail" and ep.outcome == "context_window"
        assert ep.observation(0) == prompt + tok.decode(tok.encode(text)[:room])
        assert ep.metrics.total_tokens == room - separator
    else:
        assert event == "finish" and ep.observation(0) == prompt + text
        assert ep.metrics.total_tokens == tok.count(text) - separator
    assert ep.metrics.prefill_tokens == tok.count(prompt) + separator


def test_child_past_the_window_fails_alone_and_joins_as_no_solution(worked_example, char_tok):
    ex = worked_example
    # root: 64 + 653 = 717 tokens; child 0: 78 + 314 = 392 fits; child 1 writes 2,000 characters
    ep = Episode(ex.problem, "apr", limits=Limits(context_window=1400), tokenizer=char_tok)
    ep.act(0, ex.root_segment_0)
    ep.act(1, ex.child_actions[0])
    assert ep.act(2, "y" * 2000) == "fail"
    assert (ep.threads[2].status, ep.threads[2].reason) == (Status.FAILED, "context_window")
    assert len(ep.threads[2].context) == 1400
    assert "<No Solution in Sub Search 1 at level 1 at Node #0,0,1>" in ep.observation(0)
    ep.act(0, ex.root_continuation)  # resumed root: 865 + 531 = 1396 <= 1400
    assert ep.outcome == "correct" and not ep.truncated


@pytest.mark.parametrize(
    "limits,created,reasons",
    [
        (Limits(max_children_per_spawn=2), 2, {2: "max_children_per_spawn", 3: "max_children_per_spawn"}),
        (Limits(max_threads=3), 2, {2: "max_threads", 3: "max_threads"}),
        (Limits(max_depth=0), 0, dict.fromkeys(range(4), "max_depth")),
    ],
    ids=["children_per_spawn", "threads", "depth"],
)
def test_spawn_past_a_limit_rejects_children_with_a_reason(char_tok, limits, created, reasons):
    ep = Episode(P, "apr", limits=limits, tokenizer=char_tok)
    assert ep.act(0, calling_block("0", "0", "0", "0")) == "spawn"
    assert len(ep.threads) == 1 + created and ep.groups[0].rejected == reasons
    for tid in ep.runnable[:]:
        if tid:
            ep.act(tid, "No solution found.")
    # every requested child, created or not, joins in spawn order
    joined = ep.observation(0).split("<Sub Searches>\n")[1]
    assert [line[:33] for line in joined.split("\n")[:4]] == [
        f"<No Solution in Sub Search {i} at level 1"[:33] for i in range(4)
    ]
    assert ep.runnable == [0]


def test_total_token_budget_truncates_the_episode_and_fails_running_threads(char_tok):
    ep = Episode(P, "apr", limits=Limits(max_total_tokens=300), tokenizer=char_tok)
    # generated tokens only: the "\n" the episode puts in front of each action is prefill
    ep.act(0, calling_block("0", "0"))  # "\n" + 23 + 2*50 + 26: 149 generated
    ep.act(1, Text("a" * 99, partial=True))  # "\n" + 99: 99 -> 248
    assert not ep.done
    assert ep.act(2, "b" * 99) == "fail"  # 99 -> 347 > 300
    assert ep.done and ep.truncated and ep.outcome == "token_budget"
    assert all(t.status is Status.FAILED for t in ep.threads)
    assert {t.reason for t in ep.threads} == {"token_budget"}
    assert ep.metrics.total_tokens == 347


def test_root_prompt_longer_than_the_window_ends_the_episode_at_once(char_tok):
    ep = Episode(P, "apr", limits=Limits(context_window=50), tokenizer=char_tok)
    assert ep.done and ep.truncated and ep.outcome == "prompt_exceeds_context_window"
    assert (ep.threads[0].status, ep.threads[0].reason) == (Status.FAILED, "prompt_exceeds_context_window")
    assert ep.runnable == [] and ep.act(0, "x") == "ignored"


class QuotesOnlyTokenizer:
    """Counts only single quotes, 50 tokens each, so a child prompt (with its op list) can outgrow the
    window of a parent whose own text has none. (Real tokenizers cannot: a child prompt is built from
    the parent's text; the episode's character bound relies on at most one token per character, +2.)"""

    def encode(self, text):
        return [39] * (50 * text.count("'"))

    def decode(self, ids):
        return "'" * (len(ids) // 50)


def test_child_prompt_longer_than_the_window_fails_that_child():
    tok = load_tokenizer(QuotesOnlyTokenizer())
    text = (
        "Exploring Operation: 8/4=2, Resulting Numbers: [1, 6, 2]\n"
        "Generated Node #0,0: 10:[1, 6, 2] Operation: 8/4=2\n" + calling_block("0,0")
    )
    # root: no quotes, 0 tokens; child prompt "...Operations: ['8/4=2']": 70 characters, 2 quotes = 100 tokens
    ep = Episode(P, "apr", limits=Limits(context_window=60), tokenizer=tok)
    assert ep.act(0, text) == "spawn"
    assert (ep.threads[1].status, ep.threads[1].reason) == (Status.FAILED, "prompt_exceeds_context_window")
    assert ep.runnable == [0] and "<No Solution in Sub Search 0 at level 1 at Node #0,0>" in ep.observation(0)


def test_resumed_parent_past_the_window_truncates_the_episode(worked_example, char_tok):
    # children answer with the full 531-character path (context 64 + 1 + 531 = 596 <= 600); the join
    # block with both answers (> 1,000 characters) cannot fit in the root's window.
    ep = Episode(P, "apr", limits=Limits(context_window=600), tokenizer=char_tok)
    ep.act(0, Spawn(("0", "0")))
    ep.act(1, worked_example.root_continuation)
    ep.act(2, worked_example.root_continuation)
    assert ep.threads[1].result.verified and ep.threads[2].result.verified
    assert ep.done and ep.truncated and ep.outcome == "context_window"
    assert ep.threads[0].reason == "context_window"


# --------------------------------------------------------------------------------------
# Bad actions: recorded outcomes, never exceptions
# --------------------------------------------------------------------------------------

NON_ACTIONS = [
    (None, "invalid_action_type"),
    (42, "invalid_action_type"),
    (3.5, "invalid_action_type"),
    (b"<Calling Sub Searches>", "invalid_action_type"),
    (["Moving to Node #0"], "invalid_action_type"),
    (object(), "invalid_action_type"),
    ({"txt": "typo"}, "invalid_action_keys"),
    ({"text": "ok", "extra": 1}, "invalid_action_keys"),
    ({"text": 5}, "invalid_action_text"),
    ({"spawn": "0,1"}, "invalid_spawn_labels"),
    ({"spawn": [0, 1]}, "invalid_spawn_labels"),
    ({"answer": 10}, "invalid_answer"),
    ({"text": "x", "token_ids": "abc"}, "invalid_token_ids"),
    ({"text": "x", "token_ids": [1, None]}, "invalid_token_ids"),
]


@pytest.mark.parametrize(
    "action,reason", NON_ACTIONS, ids=[f"{type(a).__name__}_{r}" for a, r in NON_ACTIONS]
)
@pytest.mark.parametrize("who", ["root", "child"])
def test_non_action_ends_the_acting_thread_with_a_recorded_reason(char_tok, action, reason, who):
    ep = Episode(P, "apr", tokenizer=char_tok)
    if who == "root":
        assert ep.act(0, action) == "fail"
        assert ep.threads[0].reason == reason and ep.outcome == reason
        assert_recorded_end(ep)
    else:
        ep.act(0, calling_block("0"))
        assert ep.act(1, action) == "fail"
        assert (ep.threads[1].status, ep.threads[1].reason) == (Status.FAILED, reason)
        assert ep.runnable == [0]  # the child joins as no solution; the root goes on


WRONGLY_TYPED = [
    {"spawn": 5},
    Text(None),
    Text(5),
    Text("x", token_ids=5),
    Spawn(5),
    Spawn(None),
    Answer(5),
    Join(None),
]


@pytest.mark.parametrize(
    "action",
    WRONGLY_TYPED,
    ids=[
        "dict_spawn_int",
        "Text_None",
        "Text_int",
        "Text_ids_int",
        "Spawn_int",
        "Spawn_None",
        "Answer_int",
        "Join_None",
    ],
)
def test_wrongly_typed_structured_action_is_recorded_not_raised(char_tok, action):
    # BUG (actions.py coerce_action): dataclass actions are passed through unchecked and {"spawn": 5}
    # is iterated, so these raise TypeError/AttributeError out of `act` instead of ending the thread.
    ep = Episode(P, "apr", tokenizer=char_tok)
    assert ep.act(0, action) in ("fail", "finish", "spawn")
    if ep.done:
        assert_recorded_end(ep)
    else:  # e.g. Spawn(None) read as an empty spawn: recorded as a format error
        assert ep.format_errors


def test_empty_text_ends_the_thread_without_an_answer(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    assert ep.act(0, "") == "finish"
    assert ep.outcome == "no_answer" and ep.metrics.total_tokens == 0
    assert_recorded_end(ep)


def test_unprintable_characters_become_question_marks_and_are_recorded(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, "caf\u00e9\x00\r")
    assert ep.threads[0].calls[0].completion == "\ncaf???"
    assert (0, "unprintable_characters") in ep.format_errors


def test_spawn_bomb_of_hundreds_of_children_stays_within_limits():
    limits = Limits()  # official 4,096 window, 64 threads, 16 children per spawn, depth 3
    bomb = calling_block(*["0"] * 300)
    ep = Episode(P, "apr", limits=limits)  # Countdown tokenizer: the 300-line block is ~3,000 tokens
    steps = 0
    while not ep.done:
        ep.act(ep.runnable[0], bomb)
        steps += 1
        assert steps <= limits.max_threads + limits.total_token_budget + 1
    m = ep.metrics
    assert m.num_threads <= 64 and m.depth <= 3 and m.rejected_children >= 284
    assert {r for g in ep.groups for r in g.rejected.values()} >= {"max_children_per_spawn", "max_threads"}
    assert_recorded_end(ep)


def test_spawn_bomb_past_every_limit_records_each_reason(char_tok):
    limits = Limits(context_window=8000, max_threads=10, max_children_per_spawn=3, max_depth=2)
    ep = Episode(P, "apr", limits=limits, tokenizer=char_tok)
    steps = 0
    while not ep.done:
        ep.act(ep.runnable[0], Spawn(tuple(["0"] * 100)))
        steps += 1
        assert steps <= limits.max_threads + limits.total_token_budget + 1
    reasons = {r for g in ep.groups for r in g.rejected.values()}
    assert reasons == {"max_children_per_spawn", "max_threads", "max_depth"}
    assert ep.metrics.num_threads == 10 and ep.metrics.depth == 2
    assert_recorded_end(ep)


def test_deep_nesting_stops_at_max_depth(char_tok):
    limits = Limits(max_depth=40, max_threads=64)
    ep = Episode(P, "apr", limits=limits, tokenizer=char_tok)
    for _ in range(1000):
        if ep.done:
            break
        tid = ep.runnable[0]
        ep.act(tid, Spawn(("0",)) if len(ep.threads[tid].calls) == 1 else "No solution found.")
    assert ep.metrics.depth == 40 and ep.metrics.num_threads == 41
    assert ep.groups[-1].rejected == {0: "max_depth"}
    assert_recorded_end(ep)


def test_state_with_no_numbers_fails_that_child_not_the_step(char_tok):
    # BUG (protocols/apr.py parse_spawn: `Problem(target, ())` raises ProblemFormatError out of `act`).
    text = "Moving to Node #0,5\nCurrent State: 10:[], Operations: []\n" + calling_block("0,5")
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, text)
    assert len(ep.threads) == 1 and ep.runnable == [0]
    assert ep.groups[0].rejected  # the request is recorded as a rejected child


def test_generated_node_with_no_numbers_fails_that_child_not_the_step(char_tok):
    # BUG: same path through a Generated Node line.
    text = "Generated Node #0,0: 10:[] Operation: 1+2=3\n" + calling_block("0,0")
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, text)
    assert len(ep.threads) == 1 and ep.runnable == [0]


def test_spawn_line_with_a_5000_digit_index_is_recorded_not_raised(char_tok):
    # BUG (protocols/apr.py parse_spawn: int() of a >4,300-digit index raises ValueError); reachable with
    # a window wide enough to hold the line.
    ep = Episode(P, "apr", limits=Limits(context_window=20000), tokenizer=char_tok)
    ep.act(0, calling_block("0").replace("Sub Search 0", "Sub Search " + "1" * 5000))
    assert not ep.done or ep.outcome is not None
    assert ep.format_errors


@pytest.mark.parametrize("token_id", [-1, 2**40], ids=["negative", "huge"])
def test_out_of_range_token_ids_past_the_window_are_recorded_not_raised(token_id):
    # BUG (episode.py `_decode` -> tokenizers' decode raises OverflowError on ids outside u32) with the
    # Countdown tokenizer, once a cut is needed.
    ep = Episode(P, "apr", limits=Limits(context_window=64))
    ep.act(0, Text("x", token_ids=(token_id,) * 100))
    assert_recorded_end(ep)


def test_partial_actions_without_tokens_cannot_run_forever(char_tok):
    # BUG (episode.py act): Text(token_ids=(), partial=True) adds no token, so the thread runs forever;
    # limits.py promises every non-final action adds at least one token.
    limits = Limits(context_window=64 + 10, max_threads=2)
    bound = limits.max_threads + limits.total_token_budget + 1
    for action in (Text("", token_ids=(), partial=True), Text("abc", token_ids=(), partial=True)):
        ep = Episode(P, "apr", limits=limits, tokenizer=char_tok)
        for _ in range(bound):
            if ep.done:
                break
            ep.act(ep.runnable[0], action)
        assert ep.done, f"{action!r} kept the episode running past {bound} steps"


# --------------------------------------------------------------------------------------
# Structured actions (apr_env.actions)
# --------------------------------------------------------------------------------------


def test_text_token_ids_are_kept_exactly_and_text_gets_no_separator(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Text("ab", token_ids=(9, 8, 7, 6), partial=True))
    call = ep.threads[0].calls[0]
    assert call.completion == "ab"  # no "\n" separator: the model's own text
    assert call.completion_ids == [9, 8, 7, 6] and not ep.format_errors
    assert ep.metrics.total_tokens == 4


def test_unprintable_text_from_token_ids_is_masked_in_the_context_but_counted_exactly(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Text("ab\x07\u00e9", token_ids=(9, 8, 7, 6), partial=True))
    call = ep.threads[0].calls[0]
    assert call.completion == "ab??"  # the observation space is printable ASCII
    assert call.completion_ids == [9, 8, 7, 6] and ep.metrics.total_tokens == 4
    assert ep.format_errors == [(0, "unprintable_characters")]


def test_partial_text_keeps_the_thread_running_and_chunks_are_lines(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    assert ep.act(0, Text("Exploring", partial=True)) == "partial"
    assert ep.act(0, Text("more", partial=True)) == "partial"
    assert ep.act(0, Text("\nand ends", partial=True)) == "partial"
    # plain text gets the line separator, chunk by chunk ("\n" only where a line was left open)
    assert ep.runnable == [0] and ep.observation(0) == ROOT_PROMPT + "\nExploring\nmore\nand ends"
    assert ep.act(0, Text("")) == "finish" and ep.done


def test_spawn_action_is_identical_to_writing_its_text(char_tok):
    a = Episode(P, "apr", tokenizer=char_tok)
    b = Episode(P, "apr", tokenizer=char_tok)
    assert a.act(0, Spawn(("0", "0"), text="Exploring")) == "spawn"
    assert b.act(0, "Exploring\n" + calling_block("0", "0") + "\n") == "spawn"
    assert a.threads[0].context == b.threads[0].context
    for ep in (a, b):
        ep.act(1, "No solution found.")
        ep.act(2, "No solution found.")
        ep.act(0, "No solution found.")
    assert a.metrics == b.metrics and a.observation(0) == b.observation(0)


def test_answer_action_ends_the_root_with_that_answer(worked_example, char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    assert ep.act(0, Answer(worked_example.answer_path)) == "finish"
    assert ep.outcome == "correct" and ep.answer == worked_example.answer_path
    assert ep.threads[0].calls[0].completion == "\n" + worked_example.root_continuation + "\n"


def test_answer_action_of_a_child_is_verified_against_its_start_state(worked_example, char_tok):
    ex = worked_example
    ep = Episode(ex.problem, "apr", tokenizer=char_tok)
    ep.act(0, ex.root_segment_0)
    child_0_path = ex.child_prompts[0] + "\n" + "\n".join(ex.child_actions[0].split("\n")[-2:])
    ep.act(1, Answer(child_0_path))  # a correct path from #0,0,0 ([2, 5])
    ep.act(2, Answer(child_0_path))  # the same path is false for #0,0,1 ([2, 6])
    assert ep.threads[1].result.verified and not ep.threads[2].result.verified
    assert ep.observation(0) == ex.kept_prefix + ex.join_block


def test_answer_none_means_no_solution(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Answer(None, text="Exploring"))
    assert ep.threads[0].calls[0].completion == "\nExploring\nNo solution found.\n"
    assert ep.outcome == "no_answer" and ep.answer is None


def test_wrong_answer_action_is_verified_not_trusted(worked_example, char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Answer(worked_example.answer_path.replace("2*5=10", "2+5=10")))
    assert ep.done and ep.outcome not in ("correct", None) and not ep.summary()["correct"]


def test_join_action_hands_the_childs_claim_back(worked_example, char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Spawn(("0",)))
    assert ep.act(1, Join(text=worked_example.root_continuation)) == "finish"
    assert ep.threads[1].result.verified
    assert "<Goal Reached in Sub Search 0 at level 1 at Node #0>\n" + worked_example.answer_path in (
        ep.observation(0)
    )


def test_join_action_without_a_claim_joins_as_no_solution(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Spawn(("0",)))
    assert ep.act(1, Join()) == "finish"
    assert "<No Solution in Sub Search 0 at level 1 at Node #0>" in ep.observation(0)


@pytest.mark.parametrize(
    "structured,as_dict",
    [
        (Text("abc", partial=True), {"text": "abc", "partial": True}),
        (Text("abc", token_ids=(1, 2)), {"text": "abc", "token_ids": [1, 2]}),
        (Spawn(("0", "0"), text="go"), {"spawn": ["0", "0"], "text": "go"}),
        (Answer(None, text="t"), {"answer": None, "text": "t"}),
        (Join(text="j"), {"join": True, "text": "j"}),
    ],
    ids=["text", "token_ids", "spawn", "answer", "join"],
)
def test_dict_actions_behave_like_their_dataclasses(char_tok, structured, as_dict):
    a = Episode(P, "apr", tokenizer=char_tok)
    b = Episode(P, "apr", tokenizer=char_tok)
    assert a.act(0, structured) == b.act(0, as_dict)
    assert a.threads[0].context == b.threads[0].context
    assert (a.done, a.outcome, len(a.threads)) == (b.done, b.outcome, len(b.threads))


# --------------------------------------------------------------------------------------
# A child that fails on a limit
# --------------------------------------------------------------------------------------

_FALSE_PATH = (
    "10,10 equal: Goal Reached\nMoving to Node #0\n"
    "Current State: 10:[1, 4, 6, 8], Operations: []\n"
    "Exploring Operation: 1*4=10, Resulting Numbers: [6, 8, 10]\n"
    "10,10 equal: Goal Reached"
)


def test_a_child_cut_at_the_window_claims_nothing_even_with_a_goal_line_in_its_text(char_tok):
    # The child writes a (false) claim, then runs past its window: it failed, so its text is no
    # claim, not a false claim, and its result says why it failed.
    ep = Episode(P, "apr", limits=Limits(context_window=400), tokenizer=char_tok)
    ep.act(0, Spawn(("0",)))
    assert ep.act(1, _FALSE_PATH + "\n" + "z" * 400) == "fail"
    child = ep.threads[1]
    assert (child.status, child.reason) == (Status.FAILED, "context_window")
    assert child.result == ChildResult(None, False, False, "context_window")
    assert ep.metrics.false_claims == 0 and (1, "false_claim") not in ep.format_errors
    assert ep.runnable == [0] and "<No Solution in Sub Search 0 at level 1 at Node #0>" in ep.observation(0)


def test_a_child_that_finishes_without_a_claim_has_a_no_answer_result(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Spawn(("0",)))
    ep.act(1, "No solution found.")
    assert ep.threads[1].result == ChildResult(None, False, False, "no_answer")
    assert (ep.threads[1].status, ep.threads[1].reason) == (Status.FINISHED, "no_answer")
    assert ep.metrics.false_claims == 0


def test_a_false_claim_is_recorded_with_the_verifier_code_and_the_claim(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Spawn(("0",)))
    ep.act(1, _FALSE_PATH)
    child = ep.threads[1]
    claim = _FALSE_PATH.split("\n", 1)[1]  # the answer path after the first goal line
    assert child.result == ChildResult(None, True, False, "wrong_arithmetic", claim)
    assert child.reason == "answer" and (1, "false_claim") in ep.format_errors


def test_a_verified_child_answer_is_joined_with_its_code(worked_example, char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Spawn(("0",)))
    ep.act(1, worked_example.root_continuation)
    result = ep.threads[1].result
    assert (result.claimed, result.verified, result.reason) == (True, True, "ok")
    assert result.answer == result.claim == worked_example.answer_path
    assert ep.threads[1].reason == "answer" and not ep.format_errors


# --------------------------------------------------------------------------------------
# Board sharing (the broadcast protocol): what a child publishes reaches its running siblings
# --------------------------------------------------------------------------------------

_PUBLISH = "\n<Publish Dead End 10:[2, 6]>"  # starts with "\n": no separator is added
_BOARD = "<Board>\n<Publish Dead End 10:[2, 6]>\n<End Board>\n"


def test_a_published_line_reaches_running_siblings_only(char_tok):
    ep = Episode(P, "broadcast", tokenizer=char_tok)
    ep.act(0, Spawn(("0", "0", "0", "0")))
    ep.act(4, "No solution found.")  # finished: gets nothing
    before = {tid: ep.observation(tid) for tid in (1, 2, 3)}
    assert ep.act(1, Text(_PUBLISH, partial=True)) == "partial"
    # the writer's own context and the waiting parent's are unchanged
    assert ep.observation(1) == before[1] + _PUBLISH and len(ep.threads[1].calls) == 1
    assert len(ep.threads[0].calls) == 1 and len(ep.threads[4].calls) == 1
    for tid in (2, 3):
        sibling = ep.threads[tid]
        assert ep.observation(tid) == before[tid] + _BOARD
        new = sibling.calls[-1]
        assert (len(sibling.calls), new.inserted, new.kept) == (2, _BOARD, len(before[tid]))
    assert ep.runnable == [2, 3, 1]  # sharing does not reorder the queue


def test_a_published_line_reaches_the_siblings_of_the_latest_spawn(char_tok):
    ep = Episode(P, "broadcast", tokenizer=char_tok)
    ep.act(0, Spawn(("0", "0")))
    ep.act(1, "No solution found.")
    ep.act(2, "No solution found.")
    ep.act(0, Spawn(("0", "0")))  # a second spawn group: t3, t4
    ep.act(3, Text(_PUBLISH, partial=True))
    assert ep.observation(4).endswith(_BOARD) and len(ep.threads[4].calls) == 2
    assert all(len(ep.threads[tid].calls) == 1 for tid in (1, 2))


def test_board_lines_from_the_root_or_under_apr_are_shared_with_nobody(char_tok):
    root = Episode(P, "broadcast", tokenizer=char_tok)
    assert root.act(0, Text(_PUBLISH, partial=True)) == "partial"  # the root has no siblings
    assert root.observation(0).endswith(_PUBLISH) and len(root.threads[0].calls) == 1
    apr = Episode(P, "apr", tokenizer=char_tok)
    apr.act(0, Spawn(("0", "0")))
    apr.act(1, Text(_PUBLISH, partial=True))  # APR has no board
    assert len(apr.threads[2].calls) == 1 and not apr.observation(2).endswith(_BOARD)


def test_text_without_a_board_line_is_not_shared(char_tok):
    ep = Episode(P, "broadcast", tokenizer=char_tok)
    ep.act(0, Spawn(("0", "0")))
    ep.act(1, Text("\n<Publish nothing>", partial=True))  # looks like one, is not one
    assert len(ep.threads[2].calls) == 1


def test_a_sibling_pushed_past_its_window_by_the_board_fails_and_joins_as_no_solution(char_tok):
    # root: 64 + "\n" + 2-child block 149 = 214 <= 250; t2: 64 + 151 = 215, + board 46 = 261 > 250
    ep = Episode(P, "broadcast", limits=Limits(context_window=250), tokenizer=char_tok)
    ep.act(0, Spawn(("0", "0")))
    ep.act(2, Text("\n" + "w" * 150, partial=True))
    ep.act(1, Text(_PUBLISH, partial=True))
    sibling = ep.threads[2]
    assert (sibling.status, sibling.reason) == (Status.FAILED, "context_window")
    assert sibling.result == ChildResult(None, False, False, "context_window")
    assert ep.runnable == [1]
    ep.act(1, "No solution found.")
    assert ep.runnable == [0] and "<No Solution in Sub Search 1 at level 1 at Node #0>" in ep.observation(0)


def test_board_blocks_are_prefilled_context(char_tok):
    # The same play under apr (no board) and broadcast: broadcast reads one board block more per
    # running sibling (2 here) and generates nothing more.
    def play(protocol):
        ep = Episode(P, protocol, tokenizer=char_tok)
        ep.act(0, Spawn(("0", "0", "0")))
        ep.act(1, Text(_PUBLISH, partial=True))
        for tid in (2, 3, 1):
            ep.act(tid, "\nNo solution found.")  # starts a line: no separator after the board either
        ep.act(0, "No solution found.")
        return ep.metrics

    apr, board = play("apr"), play("broadcast")
    assert board.prefill_tokens == apr.prefill_tokens + 2 * len(_BOARD)
    assert board.total_tokens == apr.total_tokens


# --------------------------------------------------------------------------------------
# Window boundaries: exactly full is allowed, one token more is cut
# --------------------------------------------------------------------------------------
# Actions start with "\n", so no separator is added: the numbers are the characters written.


def test_an_action_that_exactly_fills_the_window_is_kept_whole(char_tok):
    ep = Episode(P, "apr", limits=Limits(context_window=100), tokenizer=char_tok)
    assert ep.act(0, "\n" + "x" * 35) == "finish"  # 64 + 36 = 100
    assert ep.observation(0) == ROOT_PROMPT + "\n" + "x" * 35
    assert ep.outcome == "no_answer" and not ep.truncated


def test_an_action_one_token_past_the_window_is_cut_at_the_window(char_tok):
    ep = Episode(P, "apr", limits=Limits(context_window=100), tokenizer=char_tok)
    assert ep.act(0, "\n" + "x" * 36) == "fail"  # 101
    call = ep.threads[0].calls[0]
    assert call.context == ROOT_PROMPT + "\n" + "x" * 35 and call.completion_ids is None
    assert ep.truncated and ep.outcome == "context_window"


def test_a_partial_action_then_one_past_the_window_is_cut_at_the_window(char_tok):
    ep = Episode(P, "apr", limits=Limits(context_window=100), tokenizer=char_tok)
    assert ep.act(0, Text("\n" + "a" * 9, partial=True)) == "partial"  # 74
    assert ep.act(0, Text("\n" + "b" * 26, partial=True)) == "fail"  # 27 more: 101
    assert ep.observation(0) == ROOT_PROMPT + "\n" + "a" * 9 + "\n" + "b" * 25


def test_a_thread_whose_window_is_full_fails_on_its_next_token(char_tok):
    ep = Episode(P, "apr", limits=Limits(context_window=100), tokenizer=char_tok)
    assert ep.act(0, Text("\n" + "a" * 35, partial=True)) == "partial"  # exactly 100: still running
    assert ep.act(0, Text("\nb", partial=True)) == "fail"
    assert ep.observation(0) == ROOT_PROMPT + "\n" + "a" * 35
    assert ep.threads[0].reason == "context_window"


def test_token_ids_past_the_window_are_cut_to_the_first_ids_that_fit(char_tok):
    ep = Episode(P, "apr", limits=Limits(context_window=100), tokenizer=char_tok)
    assert ep.act(0, Text("q" * 200, token_ids=(97,) * 200)) == "fail"
    call = ep.threads[0].calls[0]
    # room for 36 tokens: the first 36 ids are kept, and the text becomes what they spell
    assert call.completion_ids == [97] * 36 and call.completion == "a" * 36


def _resume_after_two_answers(window: int, answer: str, tokenizer) -> Episode:
    """The root spawns two children that both answer: the join block holds both answer paths."""
    ep = Episode(P, "apr", limits=Limits(context_window=window), tokenizer=tokenizer)
    ep.act(0, Spawn(("0", "0")))
    ep.act(1, answer)
    ep.act(2, answer)
    return ep


def test_a_resumed_prompt_of_exactly_the_window_fits_and_one_more_does_not(worked_example, char_tok):
    answer = worked_example.root_continuation
    size = len(_resume_after_two_answers(10_000, answer, char_tok).threads[0].calls[1].prompt)
    fits = _resume_after_two_answers(size, answer, char_tok)
    assert fits.runnable == [0] and not fits.done
    assert len(fits.threads[0].calls[1].prompt) == size
    over = _resume_after_two_answers(size - 1, answer, char_tok)
    assert over.done and over.truncated and over.threads[0].reason == "context_window"


# --------------------------------------------------------------------------------------
# Token budget: counted in tokens, and only exceeding it truncates
# --------------------------------------------------------------------------------------


def test_the_token_budget_counts_tokens_and_may_be_used_up_exactly():
    tok = load_tokenizer(None)  # the Countdown tokenizer: fewer tokens than characters
    text = "\nExploring Operation: 8/4=2, Resulting Numbers: [1, 6, 2]"
    budget = tok.count(text)
    assert budget < len(text)
    ep = Episode(P, "apr", limits=Limits(max_total_tokens=budget), tokenizer=tok)
    assert ep.act(0, Text(text, partial=True)) == "partial"  # exactly the budget: goes on
    assert not ep.done and ep.metrics.total_tokens == budget
    assert ep.act(0, Text("\n1", partial=True)) == "fail"  # past it: truncated
    assert ep.done and ep.truncated and ep.outcome == "token_budget"


# --------------------------------------------------------------------------------------
# Token ids and meta within one call
# --------------------------------------------------------------------------------------


def test_text_after_token_ids_in_one_call_falls_back_to_counting_the_text(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Text("ab", token_ids=(1, 2, 3), partial=True))
    ep.act(0, Text("\ncd", partial=True))
    call = ep.threads[0].calls[0]
    assert call.completion == "ab\ncd" and call.completion_ids is None
    assert ep.metrics.total_tokens == 5  # the ids no longer cover the call's text: it is counted


def test_meta_of_a_calls_actions_is_merged_into_a_copy(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    first = {"logprob": -1.0, "step": 1}
    ep.act(0, Text("a", partial=True, meta=first))
    ep.act(0, Text("b", partial=True, meta={"step": 2}))
    assert ep.threads[0].calls[0].meta == {"logprob": -1.0, "step": 2}
    assert first == {"logprob": -1.0, "step": 1}  # the policy's dict is not changed
    ep.act(0, Text("c", partial=True))  # no meta: keeps what the call has
    assert ep.threads[0].calls[0].meta == {"logprob": -1.0, "step": 2}


def test_a_line_break_of_one_character_is_the_context_end_the_separator_looks_at(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Text("\n", partial=True))  # the call's completion is one "\n"
    ep.act(0, Text("abc", partial=True))
    assert ep.observation(0) == ROOT_PROMPT + "\nabc"  # no second "\n"
    spawn = Episode(P, "apr", tokenizer=char_tok)
    spawn.act(0, Spawn(("0",), text="\n"))  # the spawn's own text is one "\n"
    assert spawn.threads[0].calls[0].completion == "\n" + calling_block("0") + "\n"


# --------------------------------------------------------------------------------------
# What the tree records: labels, results, reasons, spawn groups
# --------------------------------------------------------------------------------------


def test_a_new_episode_is_running_with_nothing_decided(char_tok):
    ep = Episode(P, tokenizer=char_tok)  # the default protocol is APR
    assert ep.protocol.name == "apr" and ep.threads[0].label == "0"
    assert (ep.done, ep.truncated, ep.outcome, ep.answer, ep.verdict) == (False, False, None, None, None)


def test_the_root_records_its_result_and_reason(worked_example, char_tok):
    path = worked_example.answer_path
    wrong = path.replace("2*5=10", "2+5=10")
    cases = [
        (Answer(path), ChildResult(path, True, True, "ok"), "answer"),
        ("No solution found.", ChildResult(None, False, False, "no_answer"), "no_answer"),
        (Answer(wrong), ChildResult(wrong, True, False, "wrong_arithmetic"), "answer"),
    ]
    for action, result, reason in cases:
        ep = Episode(P, "apr", tokenizer=char_tok)
        ep.act(0, action)
        root = ep.threads[0]
        assert (root.result, root.status, root.reason) == (result, Status.FINISHED, reason)


def test_children_are_labelled_with_their_node_and_groups_with_their_call(worked_example, char_tok):
    ex = worked_example
    ep = Episode(ex.problem, "apr", tokenizer=char_tok)
    ep.act(0, ex.root_segment_0)
    assert [t.label for t in ep.threads] == ["0", "0,0,0", "0,0,1"]
    ep.act(1, "No solution found.")
    ep.act(2, "No solution found.")
    ep.act(0, Spawn(("0",)))  # a second spawn, from the root's second call
    assert [g.call_index for g in ep.groups] == [0, 1]
    assert ep.threads[3].label == "0"


def test_a_child_whose_prompt_cannot_fit_records_why(char_tok):
    tok = load_tokenizer(QuotesOnlyTokenizer())
    text = (
        "Exploring Operation: 8/4=2, Resulting Numbers: [1, 6, 2]\n"
        "Generated Node #0,0: 10:[1, 6, 2] Operation: 8/4=2\n" + calling_block("0,0")
    )
    ep = Episode(P, "apr", limits=Limits(context_window=60), tokenizer=tok)
    ep.act(0, text)
    assert ep.threads[1].result == ChildResult(None, False, False, "prompt_exceeds_context_window")


def test_an_invalid_child_request_is_a_format_error_and_a_refused_child_is_not(char_tok):
    ep = Episode(P, "apr", limits=Limits(max_children_per_spawn=1), tokenizer=char_tok)
    ep.act(0, Spawn(("0", "0", "0,7")))  # node #0,7 was never generated
    assert ep.groups[0].rejected == {1: "max_children_per_spawn", 2: "unknown_node"}
    assert ep.format_errors == [(0, "unknown_node")]


class _RecordingJoin(AprProtocol):
    """APR, remembering the results each join receives."""

    def __init__(self):
        super().__init__()
        self.joins: list[list[ChildResult]] = []

    def join(self, parent, group, request_start, results):
        self.joins.append(list(results))
        return super().join(parent, group, request_start, results)


def test_the_join_receives_one_result_per_requested_child_in_spawn_order(char_tok):
    protocol = _RecordingJoin()
    ep = Episode(P, protocol, limits=Limits(max_children_per_spawn=2), tokenizer=char_tok)
    ep.act(0, Spawn(("0", "0", "0,7", "0")))
    ep.act(1, "No solution found.")
    ep.act(2, "\n" + "z" * 5000)  # past the 4,096 window
    assert protocol.joins == [
        [
            ChildResult(None, False, False, "no_answer"),
            ChildResult(None, False, False, "context_window"),
            ChildResult(None, False, False, "unknown_node"),
            ChildResult(None, False, False, "max_children_per_spawn"),
        ]
    ]


class _NoStructuredActions(AprProtocol):
    """APR text, but no grammar for structured spawn and answer actions."""

    def render_spawn(self, thread, labels):
        return None

    def render_answer(self, thread, answer):
        return None


@pytest.mark.parametrize(
    "action,reason",
    [(Spawn(("0",)), "spawn_not_supported"), (Answer(None), "answer_not_supported")],
    ids=["spawn", "answer"],
)
def test_a_structured_action_the_protocol_cannot_write_fails_the_thread(char_tok, action, reason):
    ep = Episode(P, _NoStructuredActions(), tokenizer=char_tok)
    assert ep.act(0, action) == "fail"
    assert (ep.threads[0].status, ep.threads[0].reason, ep.outcome) == (Status.FAILED, reason, reason)
    assert ep.threads[0].calls[0].completion == ""


def test_an_action_for_one_past_the_last_thread_is_ignored(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Spawn(("0",)))
    assert ep.act(len(ep.threads), "x") == "ignored" and not ep.format_errors


# --------------------------------------------------------------------------------------
# Parallel steps: every ignored action is reported and recorded
# --------------------------------------------------------------------------------------


def test_parallel_step_reports_every_ignored_action_and_records_the_known_threads(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Spawn(("0", "0")))
    ep.act(1, "No solution found.")  # t1 finished
    events = ep.act_parallel({2: Text("x", partial=True), 0: "waits", 1: "done", 99: "unknown", "t2": "bad"})
    assert events == {2: "partial", 0: "ignored", 1: "ignored", 99: "ignored", "t2": "ignored"}
    assert ep.format_errors == [(0, "action_while_waiting"), (1, "action_while_finished")]


def test_parallel_step_stops_when_the_episode_ends_mid_step(char_tok):
    ep = Episode(P, "apr", limits=Limits(max_total_tokens=200), tokenizer=char_tok)
    ep.act(0, Spawn(("0", "0")))  # 150 tokens
    events = ep.act_parallel({1: "\n" + "a" * 99, 2: "\nb"})  # t1 passes the budget: t2 never acts
    assert events == {1: "fail"} and ep.outcome == "token_budget"
    assert ep.threads[2].calls[0].completion == "" and not ep.format_errors


# --------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------


def test_summary_reports_outcome_answer_metrics_reward_and_tree(worked_example, char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Answer(worked_example.answer_path))
    assert ep.summary() == {
        "problem": P.info(),
        "protocol": "apr",
        "outcome": "correct",
        "truncated": False,
        "correct": True,
        "answer": worked_example.answer_path,
        "verdict": "ok",
        "format_errors": [],
        "undelivered": 0,
        "metrics": ep.metrics.to_dict(),
        "reward": 1.0,  # one thread: no parallelism bonus
        "reward_correct": 1.0,
        "reward_parallel_bonus": 0.0,
        "reward_format_penalty": 0.0,
        "tree": compact_tree(ep.threads, ep.groups),
    }


class _OneCharacterPrompt(AprProtocol):
    """APR with a one-character root prompt."""

    def root_prompt(self, problem):
        return "#"


def test_the_separator_looks_at_the_prompts_last_character_before_anything_is_generated(char_tok):
    ep = Episode(P, _OneCharacterPrompt(), tokenizer=char_tok)
    ep.act(0, Text("abc", partial=True))
    assert ep.observation(0) == "#\nabc"


def test_a_spawn_group_is_marked_joined_when_its_last_child_ends(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Spawn(("0", "0")))
    ep.act(1, "No solution found.")
    assert not ep.groups[0].joined and ep.groups[0].open == 1
    ep.act(2, "No solution found.")
    assert ep.groups[0].joined and ep.groups[0].open == 0


class _SignedBoard(BroadcastProtocol):
    """Broadcast whose board block names the writer (the episode passes the writing thread)."""

    def board_update(self, thread, text):
        block = super().board_update(thread, text)
        return None if block is None else f"<From t{thread.id}>\n{block}"


def test_the_board_update_is_asked_with_the_writing_thread(char_tok):
    ep = Episode(P, _SignedBoard(), tokenizer=char_tok)
    ep.act(0, Spawn(("0", "0")))
    ep.act(2, Text(_PUBLISH, partial=True))
    assert ep.threads[1].calls[-1].inserted == "<From t2>\n" + _BOARD


# --------------------------------------------------------------------------------------
# Runtime-driven ends and straggler control, as recorded on the tree
# --------------------------------------------------------------------------------------


def test_truncate_ends_a_running_child_as_cut_by_its_window(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Spawn(("0", "0")))
    assert ep.truncate(1) == "fail"
    child = ep.threads[1]
    assert (child.status, child.reason) == (Status.FAILED, "context_window")
    assert child.result == ChildResult(None, False, False, "context_window")
    assert ep.runnable == [2] and not ep.done and not ep.format_errors


def test_truncate_of_the_root_ends_the_episode_as_truncated(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    assert ep.truncate(0) == "fail"
    assert ep.done and ep.truncated and ep.outcome == "context_window"
    assert (ep.threads[0].status, ep.threads[0].reason) == (Status.FAILED, "context_window")


def test_truncate_of_a_thread_that_is_not_running_is_ignored(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Spawn(("0", "0")))
    ep.act(1, "No solution found.")
    assert ep.truncate(0) == "ignored" and ep.truncate(1) == "ignored"  # waiting, finished
    assert ep.format_errors == [(0, "action_while_waiting"), (1, "action_while_finished")]
    for tid in (len(ep.threads), -1, None, "t2"):
        assert ep.truncate(tid) == "ignored"
    assert len(ep.format_errors) == 2 and ep.runnable == [2]
    ep.act(2, "No solution found.")
    ep.act(0, "No solution found.")
    assert ep.done and ep.truncate(0) == "ignored" and len(ep.format_errors) == 2


def test_a_cancelled_straggler_records_why_and_its_group_has_nothing_open(worked_example, char_tok):
    ex = worked_example
    end = "<End Calling Sub Searches>"
    ep = Episode(ex.problem, "first_k", tokenizer=char_tok)
    ep.act(0, ex.root_segment_0.replace(end, "<Join On Goal>\n" + end))
    ep.act(1, ex.child_actions[0])  # a verified goal: the race is over
    assert ep.threads[2].result == ChildResult(None, False, False, "cancelled")
    assert ep.groups[0].joined and ep.groups[0].open == 0


def test_messages_held_for_a_waiting_parent_arrive_in_order_after_its_join(worked_example, char_tok):
    ex = worked_example
    ep = Episode(ex.problem, "messaging", tokenizer=char_tok)
    ep.act(0, ex.root_segment_0)
    ep.act(2, Text("<Message To Parent: first>", partial=True))
    ep.act(1, Text("<Message To Parent: second>", partial=True))
    ep.act(1, ex.child_actions[0])
    ep.act(2, ex.child_actions[1])
    assert ep.threads[0].calls[1].inserted == (
        ex.join_block + "<Message From Sub Search 1: first>\n<Message From Sub Search 0: second>\n"
    )


def test_a_one_character_text_before_a_rendered_spawn_gets_its_own_line(char_tok):
    ep = Episode(P, "apr", tokenizer=char_tok)
    ep.act(0, Spawn(("0",)))
    ep.act(1, "No solution found.")
    ep.act(0, Spawn(("0",), text="x"))  # the resumed context ends a line: "x" gets no separator
    assert ep.threads[0].calls[1].completion == "x\n" + calling_block("0") + "\n"


class _BlankLineProtocol(AprProtocol):
    """APR whose line separator is a blank line ("\\n\\n")."""

    def separate(self, tail, text):
        if text and tail and text[0] != "\n" and tail[-1] != "\n":
            return "\n\n" + text
        return text


def test_every_inserted_separator_character_is_recorded_where_it_is(char_tok):
    ep = Episode(P, _BlankLineProtocol(), tokenizer=char_tok)
    ep.act(0, Text("a", partial=True))
    ep.act(0, Text("b", partial=True))
    call = ep.threads[0].calls[0]
    assert call.completion == "\n\na\n\nb" and call.separators == (0, 1, 3, 4)
    m = ep.metrics
    assert (m.total_tokens, m.prefill_tokens) == (2, 64 + 4)  # the policy wrote "a" and "b"
