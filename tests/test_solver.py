"""Specification of `apr_env.solver`: solvability (`is_solvable`, `solvable_batch`) and `solve`.

Covers: hand-checked solvable and unsolvable problems (worked out in comments); agreement of
`is_solvable` and `solvable_batch` with an independent brute force written in this file
(ordered pairs, no shared code with the package) on random inputs with 2..5 numbers, zeros,
mostly unsolvable targets, the int32 and int64 paths and the one-problem-at-a-time fallback;
`solve` returning each distinct solution once, every one of which verifies and evaluates to
the target under an independent evaluator, and none missing compared with an independent
enumeration; rational rules; `first_solution_ops` equal to the official generator's first
DFS path (the baseline re-implementation in benchmarks/baselines).
"""

from __future__ import annotations

import ast
from fractions import Fraction
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apr_env import Problem, generate_problems, is_solvable, solve, verify
from apr_env.errors import ConfigError
from apr_env.solver import first_solution_ops, solvable_batch
from benchmarks.baselines.official_generator import dfs_solution

# --------------------------------------------------------------------------------------
# Independent oracles (nothing from apr_env)
# --------------------------------------------------------------------------------------


def _steps(a, b, rules: str) -> list:
    """Values of ``a op b`` for one *ordered* pair under `rules` (APR: non-negative, exact division)."""
    out = [a + b, a * b, a - b]
    if b != 0:
        out.append(Fraction(a) / b)
    if rules == "apr":
        out = [v for v in out if v >= 0 and Fraction(v).denominator == 1]
    return [int(v) if Fraction(v).denominator == 1 else Fraction(v) for v in out]


@cache
def brute_values(nums: tuple, rules: str = "apr") -> frozenset:
    """Every value reachable by combining all of `nums` (a sorted tuple), by brute force over ordered pairs."""
    if len(nums) == 1:
        return frozenset(nums)
    out: set = set()
    for i in range(len(nums)):
        for j in range(len(nums)):
            if i != j:
                rest = tuple(nums[k] for k in range(len(nums)) if k not in (i, j))
                for v in _steps(nums[i], nums[j], rules):
                    out |= brute_values(tuple(sorted((*rest, v))), rules)
    return frozenset(out)


def brute_solvable(numbers, target, rules: str = "apr") -> bool:
    return target in brute_values(tuple(sorted(int(n) for n in numbers)), rules)


def evaluate(text: str):
    """Exact value of an expression of ints with + - * / (Fractions), via `ast` (no eval)."""
    ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b}

    def walk(node):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return Fraction(node.value)
        assert isinstance(node, ast.BinOp), ast.dump(node)
        a, b = walk(node.left), walk(node.right)
        return a / b if isinstance(node.op, ast.Div) else ops[type(node.op)](a, b)

    return walk(ast.parse(text, mode="eval").body)


def literals(text: str) -> list[int]:
    return sorted(n.value for n in ast.walk(ast.parse(text, mode="eval")) if isinstance(n, ast.Constant))


def canonical(text: str) -> str:
    """Canonical form for comparing solution sets: ``+``/``*`` chains flattened and sorted; the
    two operands of ``-`` or ``/`` sorted only when their values are equal (``x-y`` and
    ``y-x`` are then both 0, ``x/y`` and ``y/x`` both 1: one solution written two ways)."""

    def walk(node) -> tuple[Fraction, str, list[str]]:
        """(value, canonical text, the operands of its top-level +/* chain: flattened, not re-split)."""
        if isinstance(node, ast.Constant):
            return Fraction(node.value), str(node.value), [str(node.value)]
        symbol = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}[type(node.op)]
        (va, ca, pa), (vb, cb, pb) = walk(node.left), walk(node.right)
        value = {"+": va + vb, "-": va - vb, "*": va * vb, "/": va / vb if vb else None}[symbol]
        if symbol in "+*":
            parts = []
            for child, c, p in ((node.left, ca, pa), (node.right, cb, pb)):
                same = isinstance(child, ast.BinOp) and isinstance(child.op, type(node.op))
                parts.extend(p if same else [c])
            return value, f"{symbol}({'|'.join(sorted(parts))})", parts
        pair = sorted([ca, cb]) if va == vb else [ca, cb]
        key = f"{symbol}({pair[0]}${pair[1]})"
        return value, key, [key]

    return walk(ast.parse(text, mode="eval").body)[1]


def brute_solution_set(numbers: tuple[int, ...], target: int) -> set[str]:
    """Canonical forms of every APR expression over `numbers` equal to `target`, by enumeration.

    Division with a zero dividend is left out: the official rules never divide 0 (its
    `combine_nums` divides larger by smaller, and a zero divisor is refused), and 0*x
    reaches the same value.
    """
    found: set[str] = set()

    def rec(items: list[tuple[int, str]]) -> None:
        if len(items) == 1:
            if items[0][0] == target:
                found.add(canonical(items[0][1]))
            return
        for i in range(len(items)):
            for j in range(len(items)):
                if i == j:
                    continue
                (a, ta), (b, tb) = items[i], items[j]
                rest = [items[k] for k in range(len(items)) if k not in (i, j)]
                cands = [(a + b, "+"), (a * b, "*")]
                if a >= b:
                    cands.append((a - b, "-"))
                if b != 0 and a != 0 and a % b == 0:
                    cands.append((a // b, "/"))
                for value, symbol in cands:
                    rec([*rest, (value, f"({ta}){symbol}({tb})")])

    rec([(n, str(n)) for n in numbers])
    return found


# --------------------------------------------------------------------------------------
# Hand-checked problems
# --------------------------------------------------------------------------------------

# Each case is worked out by hand in its comment.
KNOWN = [
    # 4*6*1*1 = 24.
    (Problem(24, (4, 6, 1, 1)), True),
    # Four 1s: sums reach at most 4, products of sums at most (1+1)*(1+1) = 4: 7 is out of reach.
    (Problem(7, (1, 1, 1, 1)), False),
    # Same bound: 5 is out of reach too, while 4 = 1+1+1+1 is reachable.
    (Problem(5, (1, 1, 1, 1)), False),
    (Problem(4, (1, 1, 1, 1)), True),
    # Two numbers 2, 3 give only 5, 6 and 1 (3/2 is not exact).
    (Problem(5, (2, 3)), True),
    (Problem(1, (2, 3)), True),
    (Problem(7, (2, 3)), False),
    # 4, 6 give 10, 24, 2 (6/4 is not exact): 3 is out of reach.
    (Problem(3, (4, 6)), False),
    # 6/3 = 2.
    (Problem(2, (3, 6)), True),
    # Zeros: 5-5 = 0; 0+5 = 5; 0*7 = 0; 0, 0 give only 0 (no division by zero).
    (Problem(0, (5, 5)), True),
    (Problem(5, (0, 5)), True),
    (Problem(0, (0, 7)), True),
    (Problem(1, (0, 0)), False),
    # The golden trace's first problem: 84/21 = 4, 64+23 = 87, 87-4 = 83.
    (Problem(83, (84, 64, 21, 23)), True),
    # Reference section 2.9: 8/4 = 2, 6-1 = 5, 2*5 = 10.
    (Problem(10, (1, 4, 6, 8)), True),
    # 24 from 1, 3, 4, 6 needs 6/(1-3/4): a fraction, so impossible with integer steps.
    (Problem(24, (1, 3, 4, 6)), False),
    # One number: solvable only when it is the target.
    (Problem(9, (9,)), True),
    (Problem(8, (9,)), False),
]


@pytest.mark.parametrize(("problem", "solvable"), KNOWN, ids=[str(p) for p, _ in KNOWN])
def test_is_solvable_on_hand_checked_problems(problem, solvable):
    assert is_solvable(problem) is solvable
    assert brute_solvable(problem.numbers, problem.target) is solvable  # the oracle agrees by hand too


@pytest.mark.parametrize(("problem", "solvable"), KNOWN, ids=[str(p) for p, _ in KNOWN])
def test_solve_is_empty_exactly_on_unsolvable_problems(problem, solvable):
    assert bool(solve(problem)) is solvable


def test_solvable_batch_on_hand_checked_problems_of_one_size():
    cases = [(p, s) for p, s in KNOWN if len(p.numbers) == 4]
    numbers = np.array([p.numbers for p, _ in cases])
    targets = np.array([p.target for p, _ in cases])
    assert solvable_batch(numbers, targets).tolist() == [s for _, s in cases]


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        # 2+3 = 5; 2*3 = 6, 3-2 = 1 and no exact division miss: one solution.
        (Problem(5, (2, 3)), {"2+3"}),
        # 2+2 = 4 and 2*2 = 4 are different solutions.
        (Problem(4, (2, 2)), {"2+2", "2*2"}),
        # 1, 2, 3 -> 6: the sum chain, the product chain, and three divisions by 1:
        # (2*3)/1, 2*(3/1), 3*(2/1). Nothing else: 3-1 = 2 leaves 2, 2 (4, 4, 0, 1);
        # 2-1 = 1 leaves 1, 3 (4, 3, 2, 3); 3-2 = 1 leaves 1, 1; 1+2 = 3 leaves 3, 3 (6 = the sum chain).
        (Problem(6, (1, 2, 3)), {"1+2+3", "1*2*3", "2*3/1", "2*(3/1)", "3*(2/1)"}),
    ],
    ids=["one-solution", "plus-and-times", "divisions-by-one"],
)
def test_solve_lists_each_distinct_solution_once(problem, expected):
    solutions = solve(problem)
    assert len(solutions) == len(expected)
    assert {canonical(s) for s in solutions} == {canonical(s) for s in expected}


def test_solve_counts_commutative_and_regrouped_forms_once():
    # (1+2)+(3+4), 4+(3+(2+1)), ... are one solution of 10 from 1, 2, 3, 4.
    sums = [s for s in solve(Problem(10, (1, 2, 3, 4))) if set(s) <= set("1234+")]
    assert len(sums) == 1


def test_solve_result_is_a_fresh_list_each_call():
    first = solve(Problem(24, (4, 6, 1, 1)))
    first.clear()
    assert solve(Problem(24, (4, 6, 1, 1)))


# --------------------------------------------------------------------------------------
# Properties against the independent oracles
# --------------------------------------------------------------------------------------


@st.composite
def batches(draw):
    """(numbers (M, n), targets (M,)): 2..5 numbers with zeros, targets mostly unsolvable."""
    n = draw(st.integers(2, 5))
    m = draw(st.integers(1, 4 if n == 5 else 12))
    hi = draw(st.sampled_from([3, 12, 40]))
    numbers = draw(st.lists(st.lists(st.integers(0, hi), min_size=n, max_size=n), min_size=m, max_size=m))
    targets = draw(st.lists(st.integers(0, 150), min_size=m, max_size=m))
    return np.array(numbers, dtype=np.int64), np.array(targets, dtype=np.int64)


@settings(max_examples=60, deadline=None)
@given(batch=batches())
def test_solvable_batch_agrees_with_brute_force(batch):
    numbers, targets = batch
    expected = [brute_solvable(row, t) for row, t in zip(numbers, targets)]
    assert solvable_batch(numbers, targets).tolist() == expected
    assert [
        is_solvable(Problem(int(t), tuple(map(int, row)))) for row, t in zip(numbers, targets)
    ] == expected


def test_solvable_batch_agrees_on_the_default_distribution_both_ways():
    # Uniform draws from 1..99 and 10..100: about 1 in 8 is solvable, so both answers occur often.
    rng = np.random.default_rng(7)
    numbers = rng.integers(1, 100, size=(300, 4))
    targets = rng.integers(10, 101, size=300)
    got = solvable_batch(numbers, targets)
    expected = np.array([brute_solvable(row, t) for row, t in zip(numbers, targets)])
    assert 10 < expected.sum() < 290
    assert got.tolist() == expected.tolist()


def test_solvable_batch_int64_path_agrees_with_brute_force():
    # Values and targets up to 2,000: products of four overflow int32 but not int64, so the
    # vectorised int64 path runs. Half the targets are random, half a row's sum (reachable).
    rng = np.random.default_rng(3)
    numbers = np.concatenate([rng.integers(1000, 2000, size=(20, 4)), rng.integers(0, 500, size=(20, 4))])
    targets = np.concatenate([rng.integers(0, 2000, size=20), numbers[20:].sum(axis=1)])
    expected = [brute_solvable(row, t) for row, t in zip(numbers, targets)]
    assert any(expected) and not all(expected)
    assert solvable_batch(numbers, targets).tolist() == expected


def test_solvable_batch_falls_back_for_huge_values_and_six_numbers():
    huge = np.array([[10**6, 10**6, 2, 3], [10**6, 10**6, 2, 3]])
    # 10**6/10**6 = 1, 2+3 = 5 -> 1*5 = 5; and 10**6-10**6+2+3 = 5 as well; 7 would need 2+3+2.
    assert solvable_batch(huge, np.array([5, 7])).tolist() == [
        brute_solvable(huge[0], 5),
        brute_solvable(huge[1], 7),
    ]
    six = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    # Six 1s: (1+1+1)*(1+1+1) = 9 is the largest value; 10 is out of reach.
    assert solvable_batch(six, np.array([9, 10])).tolist() == [True, False]


def test_solvable_batch_handles_empty_and_single_number_batches():
    assert solvable_batch(np.zeros((0, 4), dtype=np.int64), np.zeros(0, dtype=np.int64)).tolist() == []
    assert solvable_batch(np.array([[5], [6]]), np.array([5, 5])).tolist() == [True, False]


@settings(max_examples=40, deadline=None)
@given(
    numbers=st.lists(st.integers(0, 12), min_size=2, max_size=4),
    target=st.integers(0, 40),
)
def test_solve_finds_exactly_the_brute_force_solutions(numbers, target):
    solutions = solve(Problem(target, tuple(numbers)))
    assert len(set(solutions)) == len(solutions)
    assert {canonical(s) for s in solutions} == brute_solution_set(tuple(numbers), target)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_every_solution_of_generated_problems_verifies_and_hits_the_target(seed):
    for problem in generate_problems(2, seed=seed):
        solutions = solve(problem)
        assert solutions
        assert len(set(solutions)) == len(solutions)
        for text in solutions:
            assert verify(problem, text).correct, (problem, text)
            assert evaluate(text) == problem.target
            assert literals(text) == sorted(problem.numbers)


# --------------------------------------------------------------------------------------
# Rational rules
# --------------------------------------------------------------------------------------


def test_rational_rules_solve_a_problem_that_needs_a_fraction():
    problem = Problem(24, (1, 3, 4, 6))  # 6/(1-3/4) = 6/(1/4) = 24
    assert not is_solvable(problem)
    assert is_solvable(problem, "rational")
    assert brute_solvable(problem.numbers, 24, "rational")
    solutions = solve(problem, "rational")
    assert solutions and solve(problem) == []
    for text in solutions:
        assert evaluate(text) == 24
        assert verify(problem, text, rules="rational").correct
    assert any(canonical(s) == canonical("6/(1-3/4)") for s in solutions)


@settings(max_examples=40, deadline=None)
@given(numbers=st.lists(st.integers(0, 9), min_size=2, max_size=3), target=st.integers(0, 60))
def test_rational_is_solvable_agrees_with_brute_force(numbers, target):
    problem = Problem(target, tuple(numbers))
    assert is_solvable(problem, "rational") is brute_solvable(numbers, target, "rational")
    # Integer rules are a special case of rational ones.
    if is_solvable(problem):
        assert is_solvable(problem, "rational")


def test_unknown_rules_are_rejected_with_the_accepted_names():
    with pytest.raises(ConfigError, match=r"rules='float' is not a rule set; accepted: 'apr', 'rational'"):
        is_solvable(Problem(5, (2, 3)), "float")
    with pytest.raises(ConfigError, match=r"accepted: 'apr', 'rational'"):
        solve(Problem(5, (2, 3)), "float")


# --------------------------------------------------------------------------------------
# The official generator's stored solution
# --------------------------------------------------------------------------------------


def test_first_solution_ops_is_the_official_first_dfs_path():
    problems = [Problem(83, (84, 64, 21, 23)), Problem(10, (1, 4, 6, 8)), *generate_problems(25, seed=11)]
    for p in problems:
        assert first_solution_ops(p) == dfs_solution(p.target, list(p.numbers))


def test_first_solution_ops_is_none_when_unsolvable():
    assert first_solution_ops(Problem(7, (1, 1, 1, 1))) is None


@settings(max_examples=150, deadline=None)
@given(numbers=st.lists(st.integers(0, 12), min_size=1, max_size=5), target=st.integers(0, 60))
def test_first_solution_ops_matches_the_unpruned_official_dfs_on_any_small_problem(numbers, target):
    # Pruning must never change which path is first, nor miss one (zeros, repeats, 1..5 numbers).
    assert first_solution_ops(Problem(target, tuple(numbers))) == dfs_solution(target, list(numbers))
