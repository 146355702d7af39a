"""Specification of `apr_env.problem`: the Problem record and the official file layouts.

Covers: construction and validation (pinned messages), the de-duplication key, the official
record layout (``nums``, ``target``, ``start_size``, ``solution``; reference section 1.3),
reading hand-written official JSON and JSON Lines files, JSON and JSONL round trips, and
that a stored ``solution`` replays to the target under APR rules.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apr_env import Problem, load_problems, save_problems
from apr_env.errors import ProblemFormatError


def _replay_ops(problem: Problem, ops: list[str]) -> list[int]:
    """Apply official op strings ("84-23=61") to the numbers; return what is left.

    Written here, independently of the package: checks operands are available, the
    arithmetic holds with APR rules (non-negative, exact division).
    """
    left = list(problem.numbers)
    for op in ops:
        expr, result = op.split("=")
        symbol = next(c for c in "+-*/" if c in expr)
        a, b = (int(x) for x in expr.split(symbol))
        value = {"+": a + b, "-": a - b, "*": a * b, "/": a // b if b and a % b == 0 else -1}[symbol]
        assert value >= 0 and value == int(result), op
        left.remove(a)
        left.remove(b)
        left.append(value)
    return left


# --------------------------------------------------------------------------------------
# Construction
# --------------------------------------------------------------------------------------


def test_numbers_are_stored_as_a_tuple_in_the_given_order():
    p = Problem(target=24, numbers=[6, 4, 1, 1])
    assert p.numbers == (6, 4, 1, 1)
    assert p.target == 24


def test_key_is_sorted_numbers_and_target():
    assert Problem(24, (6, 4, 1, 1)).key == ((1, 1, 4, 6), 24)
    assert Problem(24, (1, 6, 1, 4)).key == Problem(24, (6, 4, 1, 1)).key
    assert Problem(25, (1, 6, 1, 4)).key != Problem(24, (6, 4, 1, 1)).key


def test_str_is_the_trace_state_layout():
    assert str(Problem(83, (84, 64, 21, 23))) == "83:[84, 64, 21, 23]"


def test_problems_are_hashable_and_compare_by_value():
    assert Problem(24, (4, 6, 1, 1)) == Problem(24, [4, 6, 1, 1])
    assert len({Problem(24, (4, 6, 1, 1)), Problem(24, (4, 6, 1, 1))}) == 1


def test_intermediate_states_with_large_values_are_problems():
    # A child thread starts from a state such as 83:[84, 2816] (golden trace, first entry).
    assert Problem(83, (84, 2816)).numbers == (84, 2816)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": -1, "numbers": (1, 2)}, r"Problem.target must hold non-negative ints, got -1"),
        ({"target": 5, "numbers": (1, -2)}, r"Problem.numbers must hold non-negative ints, got -2"),
        ({"target": 5, "numbers": (1, 2.0)}, r"Problem.numbers must hold non-negative ints, got 2.0"),
        ({"target": True, "numbers": (1, 2)}, r"Problem.target must hold non-negative ints, got True"),
        ({"target": 5, "numbers": (1, False)}, r"Problem.numbers must hold non-negative ints, got False"),
        ({"target": "5", "numbers": (1, 2)}, r"Problem.target must hold non-negative ints, got '5'"),
        ({"target": 5, "numbers": "12"}, r"Problem.numbers must be a sequence of ints, got '12'"),
        ({"target": 5, "numbers": 12}, r"Problem.numbers must be a sequence of ints, got 12"),
        ({"target": 5, "numbers": ()}, r"Problem.numbers is empty"),
    ],
    ids=[
        "negative-target",
        "negative-number",
        "float",
        "bool-target",
        "bool-number",
        "str-target",
        "str-numbers",
        "int-numbers",
        "empty",
    ],
)
def test_bad_fields_raise_with_the_field_and_value(kwargs, message):
    with pytest.raises(ProblemFormatError, match=message):
        Problem(**kwargs)


def test_format_errors_are_value_errors():
    with pytest.raises(ValueError):
        Problem(-1, (1,))


# --------------------------------------------------------------------------------------
# Official record layout
# --------------------------------------------------------------------------------------


def test_to_dict_writes_the_official_fields():
    assert Problem(24, (4, 6, 1, 1)).to_dict() == {"nums": [4, 6, 1, 1], "target": 24, "start_size": 4}
    with_solution = Problem(5, (2, 3)).to_dict(solution=["2+3=5"])
    assert with_solution == {"nums": [2, 3], "target": 5, "start_size": 2, "solution": ["2+3=5"]}


def test_from_dict_reads_an_official_record_and_ignores_extra_keys():
    record = {
        "nums": [84, 64, 21, 23],
        "target": 83,
        "solution": ["64+23=87", "84/21=4", "87-4=83"],
        "optimal_path": "...",
        "start_size": 4,
    }
    assert Problem.from_dict(record) == Problem(83, (84, 64, 21, 23))


def test_from_dict_accepts_numbers_as_the_key_too():
    assert Problem.from_dict({"numbers": [2, 3], "target": 5}) == Problem(5, (2, 3))


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"target": 5}, r"needs 'nums' \(or 'numbers'\) and 'target'; got keys \['target'\]"),
        ({"nums": [1, 2]}, r"needs 'nums' \(or 'numbers'\) and 'target'; got keys \['nums'\]"),
        ([1, 2, 5], r"a problem record must be a dict, got list"),
        ({"nums": [1, -2], "target": 5}, r"Problem.numbers must hold non-negative ints, got -2"),
    ],
    ids=["no-nums", "no-target", "not-a-dict", "bad-number"],
)
def test_from_dict_rejects_bad_records(record, message):
    with pytest.raises(ProblemFormatError, match=message):
        Problem.from_dict(record)


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


def test_load_reads_a_hand_written_official_json_file(tmp_path):
    path = tmp_path / "val1_b4_t100_n500000_problems.json"
    records = [
        {
            "nums": [84, 64, 21, 23],
            "target": 83,
            "solution": ["64+23=87", "84/21=4", "87-4=83"],
            "start_size": 4,
        },
        {"nums": [1, 4, 6, 8], "target": 10, "solution": ["8/4=2", "6-1=5", "2*5=10"], "start_size": 4},
    ]
    path.write_text(json.dumps(records, indent=4))
    assert load_problems(path) == [Problem(83, (84, 64, 21, 23)), Problem(10, (1, 4, 6, 8))]


def test_load_reads_json_lines_and_skips_blank_lines(tmp_path):
    path = tmp_path / "problems.jsonl"
    path.write_text('{"nums": [2, 3], "target": 5}\n\n{"nums": [4, 6, 1, 1], "target": 24}\n')
    assert load_problems(path) == [Problem(5, (2, 3)), Problem(24, (4, 6, 1, 1))]


def test_load_reports_the_line_of_a_bad_json_line(tmp_path):
    path = tmp_path / "problems.jsonl"
    path.write_text('{"nums": [2, 3], "target": 5}\n{"nums": [2, 3\n')
    with pytest.raises(ProblemFormatError, match=r"problems.jsonl:2: not a JSON object"):
        load_problems(path)


def test_load_rejects_a_json_list_of_non_records(tmp_path):
    path = tmp_path / "problems.json"
    path.write_text("[[2, 3, 5]]")
    with pytest.raises(ProblemFormatError, match="a problem record must be a dict, got list"):
        load_problems(path)


def test_load_rejects_a_pretty_printed_object_with_its_line(tmp_path):
    # Not a list, so it is read as JSON Lines, and its first line is not a whole object.
    path = tmp_path / "problems.json"
    path.write_text(json.dumps({"nums": [2, 3], "target": 5}, indent=4))
    with pytest.raises(ProblemFormatError, match=r"problems.json:1: not a JSON object"):
        load_problems(path)


def test_save_writes_the_official_json_list_layout(tmp_path):
    path = save_problems([Problem(10, (1, 4, 6, 8))], tmp_path / "out" / "val.json")
    text = path.read_text()
    assert text.startswith("[\n    {")  # a JSON list with indent 4, as the official generator writes
    (record,) = json.loads(text)
    assert record["nums"] == [1, 4, 6, 8] and record["target"] == 10 and record["start_size"] == 4
    assert _replay_ops(Problem(10, (1, 4, 6, 8)), record["solution"]) == [10]


def test_save_without_solution_omits_the_field(tmp_path):
    path = save_problems([Problem(7, (1, 1, 1, 1))], tmp_path / "p.jsonl", with_solution=False)
    assert json.loads(path.read_text()) == {"nums": [1, 1, 1, 1], "target": 7, "start_size": 4}


def test_save_omits_the_solution_of_an_unsolvable_problem(tmp_path):
    # Four 1s reach at most (1+1)*(1+1) = 4, so 7 has no solution to store.
    path = save_problems([Problem(7, (1, 1, 1, 1))], tmp_path / "p.json")
    assert json.loads(path.read_text()) == [{"nums": [1, 1, 1, 1], "target": 7, "start_size": 4}]


_problems = st.lists(
    st.builds(
        Problem,
        target=st.integers(0, 200),
        numbers=st.lists(st.integers(0, 120), min_size=1, max_size=6).map(tuple),
    ),
    max_size=8,
)


@settings(max_examples=25, deadline=None)
@given(problems=_problems, suffix=st.sampled_from([".json", ".jsonl"]))
def test_save_then_load_round_trips(tmp_path_factory, problems, suffix):
    path = tmp_path_factory.mktemp("rt") / f"problems{suffix}"
    save_problems(problems, path, with_solution=False)
    assert load_problems(path) == problems


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_saved_solutions_replay_to_the_target(tmp_path, suffix):
    problems = [Problem(24, (4, 6, 1, 1)), Problem(83, (84, 64, 21, 23)), Problem(10, (1, 4, 6, 8))]
    path = save_problems(problems, tmp_path / f"p{suffix}")
    text = path.read_text()
    records = json.loads(text) if suffix == ".json" else [json.loads(line) for line in text.splitlines()]
    assert [Problem.from_dict(r) for r in records] == problems
    for problem, record in zip(problems, records):
        assert _replay_ops(problem, record["solution"]) == [problem.target]
