"""Specification of `apr_env.verifier.verify`: strict, safe checking of both answer forms.

Covers: correct expressions and answer paths (hand-checked, arithmetic in comments); one
test per failure reason for each form (parametrized tables, codes and reasons pinned); APR
versus rational rules; the golden official traces (every APR `official_answer_path`
verifies exactly as the official checker said, and every successful child's answer verifies
against the child's own start state); and fuzzing: any text or object gives a `Verdict`
without raising, including adversarial inputs at the size limit (their worst-case time is
recorded by benchmarks/side_by_side.py and benchmarks/bench_core.py, not asserted here).
"""

from __future__ import annotations

import re

import golden
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from worked_example import ANSWER_PATH as PATH10

from apr_env import Problem, Verdict, generate_problems, verify
from apr_env import grammar as g
from apr_env import verifier as v
from apr_env.solver import first_solution_ops
from benchmarks.side_by_side import adversarial_answers

P24 = Problem(24, (4, 6, 1, 1))
P10 = Problem(10, (1, 4, 6, 8))

CODES = {
    v.OK,
    v.EMPTY,
    v.NOT_TEXT,
    v.TOO_LONG,
    v.UNPARSEABLE,
    v.UNKNOWN_NUMBER,
    v.NUMBER_REUSED,
    v.NUMBER_UNUSED,
    v.WRONG_ARITHMETIC,
    v.NEGATIVE_RESULT,
    v.DIVISION_BY_ZERO,
    v.DIVISION_NOT_EXACT,
    v.NOT_TARGET,
    v.INCONSISTENT_STATE,
    v.NO_GOAL,
}


# --------------------------------------------------------------------------------------
# Expressions: correct
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("problem", "answer"),
    [
        (P24, "4*6*1*1"),  # 4*6 = 24, times 1 twice
        (P24, "  4 * 6 * 1 * 1  "),
        (P24, "4*6\n*1*1"),  # whitespace includes newlines
        (P24, "(4*6)*(1*1)"),
        (P24, "((((4))))*6*1/1"),  # redundant parentheses; 24/1 = 24 exactly
        (P24, "6*4+1-1"),  # 24+1 = 25, 25-1 = 24 (left to right)
        (P24, "4*6*1*1 = 24"),  # an optional stated result that is the target
        (P24, "1*1*6*4=24"),
        (P10, "8/4*(6-1)"),  # 2*5 = 10
        (P10, "(8-6)*(4+1)"),  # 2*5 = 10
        (Problem(83, (84, 64, 21, 23)), "64+23-84/21"),  # 87 - 4 = 83
        (Problem(0, (5, 5)), "5-5"),
        (Problem(5, (0, 5)), "0+5"),
        (Problem(7, (7,)), "7"),  # one number is its own expression
    ],
    ids=lambda x: str(x),
)
def test_correct_expressions_are_accepted(problem, answer):
    verdict = verify(problem, answer)
    assert verdict == Verdict(True, v.OK, "correct", "expression")


# --------------------------------------------------------------------------------------
# Expressions: one test per failure reason
# --------------------------------------------------------------------------------------

EXPRESSION_FAILURES = [
    # (problem, answer, code, reason pattern)
    (P24, "4*6*1*2", v.UNKNOWN_NUMBER, r"2 is not one of the numbers \[4, 6, 1, 1\]"),
    (P24, "4*6*1*1" + "0" * 40, v.UNKNOWN_NUMBER, r"^100000000000\.\.\. is not one of the numbers"),
    (P24, "4*6*1*1*1", v.NUMBER_REUSED, r"1 is used more times than it is given"),
    (P24, "4*6", v.NUMBER_UNUSED, r"numbers not used: \[1, 1\]"),
    (P24, "4*6+1+1", v.NOT_TARGET, r"the expression equals 26, not the target 24"),
    (P24, "4*6*1*1=25", v.NOT_TARGET, r"the stated result 25 is not the target 24"),
    # 2-3 is negative: refused under APR rules even though 2-3+5 = 4.
    (Problem(4, (2, 3, 5)), "2-3+5", v.NEGATIVE_RESULT, r"2-3 is negative"),
    (Problem(0, (0, 5)), "5/0", v.DIVISION_BY_ZERO, r"5/0 divides by zero"),
    # 3/4 is not an integer.
    (Problem(24, (1, 3, 4, 6)), "6/(1-3/4)", v.DIVISION_NOT_EXACT, r"3/4 is not an exact division"),
    (P24, "4*6*1*1)", v.UNPARSEABLE, r"unparseable at position 7: unmatched '\)'"),
    (P24, "4*6*1*", v.UNPARSEABLE, r"unparseable at position 6: the expression ends early"),
    (P24, "(4*6*1*1", v.UNPARSEABLE, r"unparseable at position 8: unclosed '\('"),
    (P24, "4x6*1*1", v.UNPARSEABLE, r"unparseable at position 1: expected an operator or '\)', got 'x'"),
    (P24, "4**6*1*1", v.UNPARSEABLE, r"unparseable at position 2: expected a number or '\(', got '\*'"),
    (P24, "-4+6*1*1", v.UNPARSEABLE, r"unparseable at position 0: expected a number or '\(', got '-'"),
    (P24, "4 6*1*1", v.UNPARSEABLE, r"unparseable at position 2: expected an operator or '\)', got '6'"),
    (P24, "4.0*6*1*1", v.UNPARSEABLE, r"unparseable at position 1: expected an operator or '\)', got '\.'"),
    (P24, "٤*6*1*1", v.UNPARSEABLE, r"unparseable at position 0: expected a number or '\(', got '٤'"),
    (P24, "4*6*1*1=24=24", v.UNPARSEABLE, r"unparseable at position 7"),
    (P24, "()", v.UNPARSEABLE, r"unparseable at position 1: expected a number or '\(', got '\)'"),
    (P24, "1+" * 5001, v.TOO_LONG, r"answer is 10002 characters; the limit is 10000"),
    (P24, "", v.EMPTY, r"answer is empty"),
    (P24, " \n\t ", v.EMPTY, r"answer is empty"),
    (P24, None, v.NOT_TEXT, r"answer must be a str, got NoneType"),
    (P24, 24, v.NOT_TEXT, r"answer must be a str, got int"),
    (P24, b"4*6*1*1", v.NOT_TEXT, r"answer must be a str, got bytes"),
    (P24, ["4*6*1*1"], v.NOT_TEXT, r"answer must be a str, got list"),
]


@pytest.mark.parametrize(
    ("problem", "answer", "code", "reason"),
    EXPRESSION_FAILURES,
    ids=[
        "unknown-number",
        "unknown-huge-number",
        "number-reused",
        "number-unused",
        "not-target",
        "stated-result-not-target",
        "negative-result",
        "division-by-zero",
        "division-not-exact",
        "unmatched-close",
        "ends-early",
        "unclosed-open",
        "letter",
        "double-operator",
        "unary-minus",
        "two-numbers-in-a-row",
        "decimal-point",
        "non-ascii-digit",
        "two-equals",
        "empty-parentheses",
        "too-long",
        "empty",
        "blank",
        "none",
        "int",
        "bytes",
        "list",
    ],
)
def test_wrong_expressions_say_what_was_wrong(problem, answer, code, reason):
    verdict = verify(problem, answer)
    assert not verdict.correct
    assert verdict.code == code
    assert re.search(reason, verdict.reason), verdict.reason


def test_max_length_is_configurable():
    assert verify(P24, "4*6*1*1", max_length=7).correct
    verdict = verify(P24, "4*6*1*1", max_length=6)
    assert (verdict.code, verdict.reason) == (v.TOO_LONG, "answer is 7 characters; the limit is 6")


# --------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------


def test_rational_rules_accept_a_fractional_intermediate():
    # 3/4 = 0.75; 1-0.75 = 0.25; 6/0.25 = 24.
    problem = Problem(24, (1, 3, 4, 6))
    assert verify(problem, "6/(1-3/4)", rules="rational").correct
    assert verify(problem, "6/(1-3/4)").code == v.DIVISION_NOT_EXACT


def test_rational_rules_accept_a_negative_intermediate():
    # 2-3 = -1; -1+5 = 4.
    assert verify(Problem(4, (2, 3, 5)), "2-3+5", rules="rational").correct


def test_rational_rules_still_refuse_division_by_zero_and_wrong_values():
    assert verify(Problem(0, (0, 5)), "5/0", rules="rational").code == v.DIVISION_BY_ZERO
    # 6/4 = 3/2 is not the target 1.
    verdict = verify(Problem(1, (4, 6)), "6/4", rules="rational")
    assert (verdict.code, verdict.reason) == (v.NOT_TARGET, "the expression equals 3/2, not the target 1")


def test_unknown_rules_raise_with_the_accepted_names():
    accepted = "accepted: 'apr', 'rational', 'reasoning_gym'"
    with pytest.raises(ValueError, match=rf"^rules='real' is not a rule set; {accepted}$"):
        verify(P24, "4*6*1*1", rules="real")


# --------------------------------------------------------------------------------------
# Answer paths: correct
# --------------------------------------------------------------------------------------


def test_the_reference_example_path_is_accepted():
    assert verify(P10, PATH10) == Verdict(True, v.OK, "correct", "path")


def test_a_path_of_exploring_lines_and_a_goal_line_is_enough():
    answer = "\n".join(
        [
            "Exploring Operation: 8/4=2, Resulting Numbers: [1, 6, 2]",
            "Exploring Operation: 6-1=5, Resulting Numbers: [2, 5]",
            "Exploring Operation: 2*5=10, Resulting Numbers: [10]",
            "10,10 equal: Goal Reached",
        ]
    )
    assert verify(P10, answer).correct


def test_paths_tolerate_blank_lines_carriage_returns_and_indentation():
    answer = "\n\n" + "\r\n".join("  " + line for line in PATH10.split("\n")) + "\n\n"
    assert verify(P10, answer).correct


def test_resulting_numbers_may_be_listed_in_any_order():
    # The official code appends the result at the end; any order of the same multiset is fine.
    answer = PATH10.replace("Resulting Numbers: [1, 6, 2]", "Resulting Numbers: [2, 1, 6]")
    assert verify(P10, answer).correct


def test_a_repeated_number_may_be_combined_with_itself():
    # 1+1 = 2 uses both 1s; 2*4 = 8; 8*3 = 24.
    problem = Problem(24, (1, 1, 4, 3))
    answer = "\n".join(
        [
            "Exploring Operation: 1+1=2, Resulting Numbers: [4, 3, 2]",
            "Exploring Operation: 4*2=8, Resulting Numbers: [3, 8]",
            "Exploring Operation: 3*8=24, Resulting Numbers: [24]",
            "24,24 equal: Goal Reached",
        ]
    )
    assert verify(problem, answer).correct


def test_paths_ignore_the_rules_argument():
    # Paths are integer by grammar, so rational rules change nothing.
    assert verify(P10, PATH10, rules="rational").correct


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_paths_built_from_the_official_solution_verify(seed):
    for problem in generate_problems(3, seed=seed, min_numbers=2, max_numbers=5):
        assert verify(
            problem, g.answer_path(problem.target, problem.numbers, first_solution_ops(problem))
        ).correct


# --------------------------------------------------------------------------------------
# Answer paths: one test per failure reason
# --------------------------------------------------------------------------------------

_OP1 = "Exploring Operation: 8/4=2, Resulting Numbers: [1, 6, 2]"

PATH_FAILURES = [
    # (problem, answer, code, reason)
    (
        P10,
        PATH10.replace(_OP1, "Exploring Operation: 9/3=3, Resulting Numbers: [1, 4, 6, 8, 3]"),
        v.UNKNOWN_NUMBER,
        "line 3: 9 is not one of the available numbers",
    ),
    # 8 was consumed by 8/4 on line 3, so 8-1 on line 7 reuses it.
    (
        P10,
        PATH10.replace(
            "Exploring Operation: 6-1=5, Resulting Numbers: [2, 5]",
            "Exploring Operation: 8-1=7, Resulting Numbers: [6, 2, 7]",
        ),
        v.NUMBER_REUSED,
        "line 7: 8 is not available any more",
    ),
    # After two operations two numbers are left: the goal is claimed too early.
    (
        P10,
        "Exploring Operation: 8/4=2, Resulting Numbers: [1, 6, 2]\n"
        "Exploring Operation: 6-1=5, Resulting Numbers: [2, 5]\n10,10 equal: Goal Reached",
        v.NUMBER_UNUSED,
        "line 3: goal claimed with numbers [2, 5] left",
    ),
    (
        P10,
        PATH10.replace(_OP1, "Exploring Operation: 8/4=3, Resulting Numbers: [1, 6, 3]"),
        v.WRONG_ARITHMETIC,
        "line 3: 8/4 is 2, not 3",
    ),
    # 6/4 = 1.5.
    (
        P10,
        "Exploring Operation: 6/4=1, Resulting Numbers: [1, 8, 1]",
        v.DIVISION_NOT_EXACT,
        "line 1: 6/4 is not an exact division",
    ),
    (
        P10,
        "Exploring Operation: 4-8=4, Resulting Numbers: [1, 6, 4]",
        v.NEGATIVE_RESULT,
        "line 1: 4-8 is negative",
    ),
    (
        Problem(5, (0, 5)),
        "Exploring Operation: 5/0=0, Resulting Numbers: [0]\n5,5 equal: Goal Reached",
        v.DIVISION_BY_ZERO,
        "line 1: 5/0 divides by zero",
    ),
    (
        P10,
        PATH10.replace(_OP1, "Exploring Operation: 8/4=2, Resulting Numbers: [1, 6, 3]"),
        v.INCONSISTENT_STATE,
        "line 3: resulting numbers [1, 6, 3] should be [1, 6, 2]",
    ),
    (
        P10,
        PATH10.replace(
            "Current State: 10:[1, 6, 2], Operations: ['8/4=2']",
            "Current State: 10:[1, 6, 3], Operations: ['8/4=2']",
        ),
        v.INCONSISTENT_STATE,
        "line 6: state 10:[1, 6, 3] should be 10:[1, 6, 2]",
    ),
    (
        P10,
        PATH10.replace("Current State: 10:[1, 4, 6, 8]", "Current State: 11:[1, 4, 6, 8]"),
        v.INCONSISTENT_STATE,
        "line 2: state 11:[1, 4, 6, 8] should be 10:[1, 4, 6, 8]",
    ),
    (
        P10,
        PATH10.replace(
            "Generated Node #0,0: 10:[1, 6, 2] Operation: 8/4=2",
            "Generated Node #0,0: 10:[1, 6, 2] Operation: 8-4=4",
        ),
        v.INCONSISTENT_STATE,
        "line 4: node does not match the last operation",
    ),
    # 8/4 = 2, 6-1 = 5, 2+5 = 7: a valid path to 7, but the target is 10.
    (
        P10,
        "Exploring Operation: 8/4=2, Resulting Numbers: [1, 6, 2]\n"
        "Exploring Operation: 6-1=5, Resulting Numbers: [2, 5]\n"
        "Exploring Operation: 2+5=7, Resulting Numbers: [7]\n7,10 equal: Goal Reached",
        v.NOT_TARGET,
        "line 4: reached 7, the target is 10",
    ),
    (P10, PATH10.rsplit("\n", 1)[0], v.NO_GOAL, "the path has no 'Goal Reached' line"),
    (
        P10,
        PATH10.replace("Moving to Node #0,0\n", "Hello\n"),
        v.UNPARSEABLE,
        "unparseable at line 5: 'Hello'",
    ),
    (
        P10,
        PATH10.replace(_OP1, "Exploring Operation: 8 / 4 = 2, Resulting Numbers: [1, 6, 2]"),
        v.UNPARSEABLE,
        "unparseable at line 3: 'Exploring Operation: 8 / 4 = 2, Resulting Numbers: [1, 6, 2]'",
    ),
    (
        P10,
        PATH10.replace("Moving to Node #0,0\n", "Moving to Node #0,,0\n"),
        v.UNPARSEABLE,
        "unparseable at line 5: 'Moving to Node #0,,0'",
    ),
    (
        P10,
        PATH10.replace(_OP1, "Exploring Operation: 8/4=2, Resulting Numbers: [1,6,2]"),
        v.UNPARSEABLE,
        "unparseable at line 3: bad number list",
    ),
    (
        P10,
        "Exploring Operation: " + "1" * 5000 + "+1=2, Resulting Numbers: [2]",
        v.UNPARSEABLE,
        "unparseable at line 1: a number longer than 600 digits",
    ),
    (
        P10,
        PATH10 + "\n" * 10_000,
        v.TOO_LONG,
        f"answer is {len(PATH10) + 10_000} characters; the limit is 10000",
    ),
]


@pytest.mark.parametrize(
    ("problem", "answer", "code", "reason"),
    PATH_FAILURES,
    ids=[
        "unknown-number",
        "number-reused",
        "number-unused",
        "wrong-arithmetic",
        "division-not-exact",
        "negative-result",
        "division-by-zero",
        "resulting-numbers-wrong",
        "state-numbers-wrong",
        "state-target-wrong",
        "generated-node-wrong-op",
        "not-target",
        "no-goal",
        "unknown-line",
        "spaced-operation",
        "bad-node-id",
        "unspaced-number-list",
        "number-too-long",
        "too-long",
    ],
)
def test_wrong_paths_say_what_was_wrong(problem, answer, code, reason):
    verdict = verify(problem, answer)
    assert (verdict.correct, verdict.code, verdict.reason) == (False, code, reason)


def test_a_goal_line_for_the_wrong_target_is_not_the_target():
    # The replay reaches 10, but the goal line names another target.
    answer = PATH10.replace("10,10 equal: Goal Reached", "10,11 equal: Goal Reached")
    assert verify(P10, answer).code == v.NOT_TARGET


def test_the_sos_checker_bug_is_not_reproduced():
    # Reference 5.2: the SoS+ checker accepts Operations: ['31-22=9'] + final 53-26=27 for
    # [22, 26, 31, 53] (9 is never used). Here the replay catches the unused number.
    problem = Problem(27, (22, 26, 31, 53))
    answer = "\n".join(
        [
            "Current State: 27:[22, 26, 31, 53], Operations: []",
            "Exploring Operation: 31-22=9, Resulting Numbers: [26, 53, 9]",
            "Exploring Operation: 53-26=27, Resulting Numbers: [9, 27]",
            "27,27 equal: Goal Reached",
        ]
    )
    assert verify(problem, answer).code == v.NUMBER_UNUSED


# --------------------------------------------------------------------------------------
# Golden official traces
# --------------------------------------------------------------------------------------


def test_official_answer_paths_verify_exactly_as_the_official_checker_said():
    entries = golden.GOLDEN["apr"]
    assert {e["official_correct"] for e in entries} == {True, False}
    for entry in entries:
        problem = Problem(entry["target"], tuple(entry["nums"]))
        verdict = verify(problem, entry["official_answer_path"])  # None when unsolved: not text
        assert verdict.correct is entry["official_correct"], (entry["nums"], verdict)


def test_every_successful_child_answer_verifies_against_the_child_start_state():
    checked = 0
    for entry in golden.GOLDEN["apr"]:
        for group in entry["trace_dict"]["sub_calls"]:
            for child in group:
                text = child["main_calls"][0]
                target, nums, _ = g.parse_state(text.split("\n")[1])
                path = g.extract_answer_path(text)
                if path is not None:
                    assert verify(Problem(target, nums), path).correct, text[:200]
                    checked += 1
    assert checked > 10


# --------------------------------------------------------------------------------------
# Safety: never raises, always a Verdict
# --------------------------------------------------------------------------------------


def _is_well_formed(verdict) -> bool:
    return (
        isinstance(verdict, Verdict)
        and verdict.code in CODES
        and verdict.correct is (verdict.code == v.OK)
        and isinstance(verdict.reason, str)
        and verdict.reason
        and verdict.form in ("expression", "path", "none")
    )


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_any_text_gives_a_verdict(text):
    assert _is_well_formed(verify(P24, text))


_ALPHABET = "0123456789+-*/()= \n\t,[]:#'١"
_FRAGMENTS = [
    "Moving to Node #",
    "Current State: ",
    "Exploring Operation: ",
    ", Resulting Numbers: ",
    "Generated Node #",
    " equal: Goal Reached",
    " Operation: ",
    ", Operations: ",
    "\n",
]


@settings(max_examples=300, deadline=None)
@given(
    text=st.lists(
        st.one_of(st.text(alphabet=_ALPHABET, max_size=12), st.sampled_from(_FRAGMENTS)), max_size=40
    ).map("".join),
    problem=st.sampled_from([P24, P10, Problem(0, (0, 0)), Problem(5, (5,))]),
    rules=st.sampled_from(["apr", "rational", "reasoning_gym"]),
)
def test_grammar_shaped_text_gives_a_verdict(text, problem, rules):
    assert _is_well_formed(verify(problem, text, rules=rules))


@settings(max_examples=200, deadline=None)
@given(
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from([*_ALPHABET, ""])), max_size=6),
    base=st.sampled_from([PATH10, "8/4*(6-1)", "(8-6)*(4+1)=10"]),
)
def test_mutated_correct_answers_give_a_verdict(edits, base):
    text = base
    for position, char in edits:
        k = position % (len(text) + 1)
        text = text[:k] + char + text[k + 1 :]  # replace (or delete, with "") one character
    assert _is_well_formed(verify(P10, text))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    answer=st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.binary(max_size=20),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
        st.tuples(st.text(max_size=5)),
        st.builds(object),
        st.sampled_from([Ellipsis, NotImplemented, type, len, P24]),
    )
)
def test_any_object_gives_a_not_text_verdict(answer):
    verdict = verify(P24, answer)
    assert _is_well_formed(verdict) and verdict.code == v.NOT_TEXT


# The benchmark's inputs (benchmarks/side_by_side.py times them) that are within the default limit,
# so they are parsed, not refused by length.
ADVERSARIAL = {name: text for name, text in adversarial_answers().items() if len(text) <= v.MAX_LENGTH}


@pytest.mark.parametrize("rules", ["apr", "reasoning_gym"])
@pytest.mark.parametrize("answer", list(ADVERSARIAL.values()), ids=list(ADVERSARIAL))
def test_adversarial_inputs_at_the_size_limit_give_a_verdict(answer, rules):
    assert len(answer) <= v.MAX_LENGTH
    verdict = verify(P10, answer, rules=rules)
    assert _is_well_formed(verdict)
    assert verdict.code != v.TOO_LONG


def test_deep_parentheses_around_a_correct_expression_are_still_correct():
    # The parser is iterative: nesting depth 4,990 does not hit Python's recursion limit.
    assert verify(P10, ADVERSARIAL["deep-parentheses"]).correct


# --------------------------------------------------------------------------------------
# Answer paths: the tuned replay agrees with the plain one on any edit of a real path
# --------------------------------------------------------------------------------------


def _solver_answer_paths(n: int = 40) -> list[tuple[Problem, str]]:
    """(problem, answer path) of solved APR traces: every line kind, nested node ids, real joins."""
    from agents.apr_solver import apr_trace

    out = []
    for i, problem in enumerate(generate_problems(4 * n, seed=5)):
        record = apr_trace(problem, seed=i)
        if record["solved"]:
            out.append((problem, g.extract_answer_path(record["trace_dict"]["main_calls"][-1])))
        if len(out) == n:
            break
    return out


_SOLVED = _solver_answer_paths()
_NUMBER = re.compile(r"\d+")


def _edit_lines(text: str, edits) -> str:
    """Line-level edits a policy could make: numbers, operators, order, dropped or repeated lines."""
    lines = text.split("\n")
    for kind, i, j, value in edits:
        k = i % len(lines)
        line = lines[k]
        numbers = list(_NUMBER.finditer(line))
        if kind == "number" and numbers:
            m = numbers[j % len(numbers)]
            line = line[: m.start()] + value + line[m.end() :]
        elif kind == "operator":
            line = re.sub(r"[-+*/](?=\d+=)", value[:1] or "+", line, count=1)
        elif kind == "swap" and len(lines) > 1:
            lines[k], lines[(k + 1) % len(lines)] = lines[(k + 1) % len(lines)], lines[k]
            continue
        elif kind == "drop" and len(lines) > 1:
            del lines[k]
            continue
        elif kind == "repeat":
            lines.insert(k, line)
            continue
        elif kind == "pad":
            line = value.replace("x", line)
        lines[k] = line
    return "\n".join(lines)


@settings(max_examples=400, deadline=None)
@given(
    case=st.sampled_from(_SOLVED),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["number", "operator", "swap", "drop", "repeat", "pad"]),
            st.integers(0, 200),
            st.integers(0, 20),
            st.sampled_from(
                [
                    "0",
                    "1",
                    "2",
                    "7",
                    "07",
                    "12",
                    "99",
                    "100",
                    "1000",
                    " 3",
                    "+",
                    "-",
                    "*",
                    "/",
                    "x ",
                    " x",
                    "\tx",
                    "",
                    "x\r",
                ]
            ),
        ),
        max_size=3,
    ),
)
def test_tuned_path_replay_gives_the_plain_replays_verdict(case, edits):
    from reference_path_verifier import reference_verify_path

    problem, answer = case
    text = _edit_lines(answer, edits)
    got, want = v.verify_path(problem, text), reference_verify_path(problem, text)
    assert (got.correct, got.code, got.reason) == (want.correct, want.code, want.reason), text


def test_unedited_solver_paths_verify_in_both_replays():
    from reference_path_verifier import reference_verify_path

    assert len(_SOLVED) == 40
    for problem, answer in _SOLVED:
        assert v.verify_path(problem, answer).correct and reference_verify_path(problem, answer).correct
