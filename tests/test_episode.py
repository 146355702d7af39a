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
from apr_env.tokenizer import default_tokenizer, load_tokenizer
from apr_env.tree import Status

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
        ({"max_total_tokens": 0}, "max_total_tokens must be None or a positive int, got 0"),
    ],
    ids=["window", "threads_bool", "children_str", "depth", "total"],
)
def test_limits_reject_bad_values_with_message(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Limits(**kwargs)


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
