"""Specification of `apr_env.grammar`: byte-exact trace lines, their parsers, answer extraction.

Covers: every formatter against the literal strings of reference/apr-reference.md sections
2.7-2.9 and 4; the parsers on well-formed and malformed lines (ASCII digits only); every
line of the golden official traces (tests/data/official-traces.json) parsing and
re-formatting to the same bytes; `extract_answer_path` on hand-made traces and on the
golden traces (APR: equals the official runtime's extraction; SoS+: a verified path when
solved, none when not).
"""

from __future__ import annotations

import re

import golden
import pytest
from worked_example import ANSWER_PATH as EXAMPLE_PATH

from apr_env import Problem, verify
from apr_env import grammar as g


def _all_trace_texts(data: dict) -> list[str]:
    """Every parent segment and child trace of the APR entries, then every SoS+ search path."""
    texts: list[str] = []

    def walk(trace_dict: dict) -> None:
        texts.extend(trace_dict["main_calls"])
        for group in trace_dict["sub_calls"]:
            for child in group:
                walk(child)

    for entry in data["apr"]:
        walk(entry["trace_dict"])
    texts.extend(entry["search_path"] for entry in data["sosp"])
    return texts


EXAMPLE_JOIN = """<Sub Searches>
<Goal Reached in Sub Search 0 at level 1 at Node #0,0,0>
Moving to Node #0,0,0
Current State: 10:[2, 5], Operations: ['8/4=2', '6-1=5']
Exploring Operation: 2*5=10, Resulting Numbers: [10]
10,10 equal: Goal Reached
<No Solution in Sub Search 1 at level 1 at Node #0,0,1>
<End Sub Searches>
10,10 equal: Goal Reached
"""


# --------------------------------------------------------------------------------------
# Formatters: literal strings from the reference
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("made", "expected"),
    [
        (g.moving_line("0,3,1"), "Moving to Node #0,3,1"),
        (g.state_line(10, [1, 4, 6, 8], []), "Current State: 10:[1, 4, 6, 8], Operations: []"),
        (
            g.state_line(10, [2, 5], ["8/4=2", "6-1=5"]),
            "Current State: 10:[2, 5], Operations: ['8/4=2', '6-1=5']",
        ),
        (g.exploring_line("8/4=2", [1, 6, 2]), "Exploring Operation: 8/4=2, Resulting Numbers: [1, 6, 2]"),
        (
            g.generated_line("0,0", 10, [1, 6, 2], "8/4=2"),
            "Generated Node #0,0: 10:[1, 6, 2] Operation: 8/4=2",
        ),
        (g.goal_line(10, 10), "10,10 equal: Goal Reached"),
        (g.unequal_line(3, 10), "3,10 unequal: No Solution"),
        (g.start_sub_line(1, 1, "0,0,1"), "<Start Sub Search 1 at level 1> Moving to Node #0,0,1"),
        (g.sub_goal_line(0, 1, "0,0,0"), "<Goal Reached in Sub Search 0 at level 1 at Node #0,0,0>"),
        (g.sub_none_line(1, 1, "0,0,1"), "<No Solution in Sub Search 1 at level 1 at Node #0,0,1>"),
        (g.sos_start_sub_line(1, "0,1,1"), "Start Sub Search at level 1: Moving to Node #0,1,1"),
        (g.sos_exit_sub_line(1), "Exit Sub Search at level 1"),
        (g.sub_call_budget_prefix(10), "Sub Call Budget: 10 "),
        (g.token_budget_prefix(1024), "Token Budget: 1024 "),
        (g.format_nums([26, 31, 31]), "[26, 31, 31]"),
        (g.format_nums([]), "[]"),
        (g.format_ops(["53-22=31", "31/31=1"]), "['53-22=31', '31/31=1']"),
        (g.format_ops([]), "[]"),
    ],
    ids=[
        "moving",
        "state-root",
        "state-with-ops",
        "exploring",
        "generated",
        "goal",
        "unequal",
        "start-sub",
        "sub-goal",
        "sub-none",
        "sos-start-sub",
        "sos-exit-sub",
        "sub-call-budget",
        "token-budget",
        "nums",
        "nums-empty",
        "ops",
        "ops-empty",
    ],
)
def test_formatter_writes_the_official_bytes(made, expected):
    assert made == expected


def test_markers_are_the_official_strings():
    assert (g.CALLING, g.END_CALLING) == ("<Calling Sub Searches>", "<End Calling Sub Searches>")
    assert (g.SUB_SEARCHES, g.END_SUB_SEARCHES) == ("<Sub Searches>", "<End Sub Searches>")
    assert g.NO_SOLUTION == "No solution found."
    assert g.SOS_NO_SOLUTION_IN_SUB == "No solution found in sub search"


def test_number_lists_print_like_python_reprs():
    # The official code prints str(list): our formatter must agree on any ints.
    for nums in ([0], [7, 7, 7], [84, 2816], list(range(12))):
        assert g.format_nums(nums) == str(nums)
    ops = ["84-23=61", "61*2=122"]
    assert g.format_ops(ops) == str(ops)


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [(0, 512), (1, 512), (512, 512), (513, 1024), (1024, 1024), (4000, 4096), (4096, 4096), (10_000, 4096)],
    ids=["zero", "one", "exact-bin", "just-over", "second-bin", "last-bin", "max", "capped"],
)
def test_token_budget_bin_is_the_smallest_512_multiple_capped_at_4096(tokens, expected):
    assert g.token_budget_bin(tokens) == expected


# --------------------------------------------------------------------------------------
# Parsers
# --------------------------------------------------------------------------------------


def test_parse_state_reads_target_numbers_and_operations():
    line = "Current State: 10:[2, 5], Operations: ['8/4=2', '6-1=5']"
    assert g.parse_state(line) == (10, (2, 5), ["8/4=2", "6-1=5"])
    assert g.parse_state("Current State: 83:[84, 64, 21, 23], Operations: []") == (83, (84, 64, 21, 23), [])


@pytest.mark.parametrize(
    "line",
    [
        "Current State: 10:[2, 5], Operations: [8/4=2]",  # ops not quoted
        "Current State: 10:[2,5], Operations: []",  # no space after the comma
        "Current State: 10:[2, 5] Operations: []",  # missing comma
        "Current State: -10:[2, 5], Operations: []",  # negative target
        "Current State: 10:[2, 5], Operations: ['8/4']",  # op without a result
        "Current State: 10:[٢, 5], Operations: []",  # Arabic-Indic digit
        "current state: 10:[2, 5], Operations: []",  # case matters
        "",
    ],
    ids=[
        "unquoted-op",
        "nums-no-space",
        "missing-comma",
        "negative",
        "op-no-result",
        "non-ascii-digit",
        "lowercase",
        "empty",
    ],
)
def test_parse_state_returns_none_on_malformed_lines(line):
    assert g.parse_state(line) is None


def test_parse_nums_and_ops_invert_the_formatters():
    assert g.parse_nums("26, 31, 31") == (26, 31, 31)
    assert g.parse_nums("") == ()
    assert g.parse_ops("'53-22=31', '31/31=1'") == ["53-22=31", "31/31=1"]
    assert g.parse_ops("") == []


@pytest.mark.parametrize("text", ["26,31", "a, b", "1,, 2"], ids=["no-space", "letters", "double-comma"])
def test_parse_nums_rejects_other_layouts(text):
    with pytest.raises(ValueError):
        g.parse_nums(text)


@pytest.mark.parametrize(
    "text",
    ["53-22=31", "'53-22=31',", "'53-22'", "'x'"],
    ids=["unquoted", "trailing-comma", "no-result", "letter"],
)
def test_parse_ops_rejects_non_operation_strings(text):
    with pytest.raises(ValueError, match="not an operation string"):
        g.parse_ops(text)


def test_regexes_match_ascii_digits_only():
    assert g.RE_GOAL.fullmatch("10,10 equal: Goal Reached")
    assert not g.RE_GOAL.fullmatch("١٠,10 equal: Goal Reached")
    assert not g.RE_EXPLORING.fullmatch("Exploring Operation: ٨/4=2, Resulting Numbers: [1, 6, 2]")
    assert not g.RE_MOVING.fullmatch("Moving to Node #٠")


def test_condition_prefix_pattern_reads_both_budgets():
    assert g.RE_PREFIX.match("Sub Call Budget: 10 Moving to Node #0").group(1) == "10"
    assert g.RE_PREFIX.match("Token Budget: 1024 Current State: ...").group(2) == "1024"
    assert g.RE_PREFIX.match("Moving to Node #0") is None


# --------------------------------------------------------------------------------------
# Golden traces: every line parses, and formatting what was parsed gives the same bytes
# --------------------------------------------------------------------------------------

_SOS_START = re.compile(r"Start Sub Search at level (\d+): Moving to Node #(\d+(?:,\d+)*)")
_SOS_EXIT = re.compile(r"Exit Sub Search at level (\d+)")
_CONSTANT_LINES = {
    g.NO_SOLUTION,
    g.CALLING,
    g.END_CALLING,
    g.SUB_SEARCHES,
    g.END_SUB_SEARCHES,
    g.SOS_NO_SOLUTION_IN_SUB,
}


def _reformat(line: str) -> str | None:
    """Parse `line` with the grammar and write it back; None when no pattern matches."""
    if line in _CONSTANT_LINES:
        return line
    if m := g.RE_MOVING.fullmatch(line):
        return g.moving_line(m.group(1))
    if line.startswith("Current State: "):
        state = g.parse_state(line)
        return None if state is None else g.state_line(*state)
    if m := g.RE_EXPLORING.fullmatch(line):
        return g.exploring_line(f"{m[1]}{m[2]}{m[3]}={m[4]}", g.parse_nums(m[5]))
    if m := g.RE_GENERATED.fullmatch(line):
        return g.generated_line(m[1], int(m[2]), g.parse_nums(m[3]), f"{m[4]}{m[5]}{m[6]}={m[7]}")
    if m := g.RE_GOAL.fullmatch(line):
        return g.goal_line(int(m[1]), int(m[2]))
    if m := g.RE_UNEQUAL.fullmatch(line):
        return g.unequal_line(int(m[1]), int(m[2]))
    if m := g.RE_START_SUB.fullmatch(line):
        return g.start_sub_line(int(m[1]), int(m[2]), m[3])
    if m := g.RE_SUB_RESULT.fullmatch(line):
        make = g.sub_goal_line if m[1] == "Goal Reached" else g.sub_none_line
        return make(int(m[2]), int(m[3]), m[4])
    if m := _SOS_START.fullmatch(line):
        return g.sos_start_sub_line(int(m[1]), m[2])
    if m := _SOS_EXIT.fullmatch(line):
        return g.sos_exit_sub_line(int(m[1]))
    return None


def test_every_golden_trace_line_parses_and_reformats_to_the_same_bytes():
    texts = _all_trace_texts(golden.GOLDEN)
    assert len(texts) > 80  # 40 APR trees (parents + children) and 40 SoS+ paths
    lines = [line for text in texts for line in text.split("\n") if line]
    mismatched = [line for line in lines if _reformat(line) != line]
    assert mismatched == []


def test_golden_traces_end_with_exactly_one_newline():
    for text in _all_trace_texts(golden.GOLDEN):
        assert text.endswith("\n") and not text.endswith("\n\n")


# --------------------------------------------------------------------------------------
# Answer extraction
# --------------------------------------------------------------------------------------


def test_extract_answer_path_takes_the_text_between_the_last_two_goal_lines():
    parent_after_join = "...earlier parent lines...\n" + EXAMPLE_JOIN + EXAMPLE_PATH + "\n"
    assert g.extract_answer_path(parent_after_join) == EXAMPLE_PATH


def test_extract_answer_path_ignores_sub_search_goal_markers():
    # `<Goal Reached in Sub Search ...>` contains "Goal Reached" but is not a goal line: the
    # official substring rule would count it; the structured rule must not.
    text = EXAMPLE_JOIN.replace("<End Sub Searches>\n10,10 equal: Goal Reached\n", "<End Sub Searches>\n")
    # Now only one full goal line is left in the join (the child's), plus the marker.
    assert g.extract_answer_path(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "No solution found.\n",
        "Current State: 10:[1, 4, 6, 8], Operations: []\n10,10 equal: Goal Reached\n",
    ],
    ids=["empty", "no-solution", "one-goal-line"],
)
def test_extract_answer_path_is_none_without_two_goal_lines(text):
    assert g.extract_answer_path(text) is None


def test_extract_answer_path_ignores_exit_lines_after_a_sos_answer():
    # Flaw 5: a goal found inside an SoS+ dive is followed by "Exit Sub Search" lines.
    text = (
        "10,10 equal: Goal Reached\n"
        + EXAMPLE_PATH
        + "\nExit Sub Search at level 2\nExit Sub Search at level 1\n"
    )
    assert g.extract_answer_path(text) == EXAMPLE_PATH


def test_extracted_example_path_verifies():
    assert verify(Problem(10, (1, 4, 6, 8)), EXAMPLE_PATH).correct


def test_extraction_from_the_last_parent_segment_equals_the_official_answer_path():
    entries = golden.GOLDEN["apr"]
    assert len(entries) == 40
    for entry in entries:
        last_segment = entry["trace_dict"]["main_calls"][-1]
        assert g.extract_answer_path(last_segment) == entry["official_answer_path"], entry["nums"]


def test_sos_search_paths_give_a_verified_answer_exactly_when_solved():
    entries = golden.GOLDEN["sosp"]
    assert {e["solved"] for e in entries} == {True, False}  # both kinds are exercised
    for entry in entries:
        path = g.extract_answer_path(entry["search_path"])
        if entry["solved"]:
            assert path is not None, entry["nums"]
            verdict = verify(Problem(entry["target"], tuple(entry["nums"])), path)
            assert verdict.correct, (entry["nums"], verdict)
        else:
            assert path is None, entry["nums"]


def test_answer_path_from_ops_writes_the_worked_example():
    assert g.answer_path(10, (1, 4, 6, 8), ["8/4=2", "6-1=5", "2*5=10"]) == EXAMPLE_PATH
