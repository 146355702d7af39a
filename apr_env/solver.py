"""Exact Countdown solver: solvability oracle, all distinct solutions, first official solution.

Three entry points, fastest first:

- `solvable_batch(numbers, targets)`: numpy, vectorised over many problems (APR rules). The
  generator uses it for rejection sampling, which is why generation is cheap.
- `is_solvable(problem)`: one problem; memoised reachable-value sets of small multisets.
- `solve(problem)`: every distinct solution as an infix expression (memoised per problem).
  Two solutions are the same when they differ only by the order of operands of ``+``/``*``
  or by regrouping a chain of the same commutative operator (``(a+b)+c`` = ``a+(b+c)``).
  Every other difference is kept and shows in the text (``a*(b/c)`` is not ``a*b/c``).

`first_solution_ops` reproduces what the official generator stores as ``solution``: the first
path found by a depth-first search over pairs in `itertools.combinations` order.

This is the *game's* oracle. The symbolic search agents that write traces are in `agents/`.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from itertools import combinations

import numpy as np

from apr_env.arithmetic import check_rules, combine, combine_values
from apr_env.problem import Problem

# ---------------------------------------------------------------------------------------
# Solvability
# ---------------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 18)
def reachable(numbers: tuple, rules: str = "apr") -> frozenset:
    """Every value a full combination of `numbers` (a sorted tuple) can end on.

    Memoised on the sorted multiset; intended for up to 4 numbers (a 4-number set has at
    most 1,152 leaves; larger sets use the early-exit search in `is_solvable`).
    """
    if len(numbers) == 1:
        return frozenset(numbers)
    out: set = set()
    for i, j in combinations(range(len(numbers)), 2):
        rest = [numbers[k] for k in range(len(numbers)) if k != i and k != j]
        for v in combine_values(numbers[i], numbers[j], rules):
            out |= reachable(tuple(sorted([*rest, v])), rules)
    return frozenset(out)


def _can_reach(numbers: tuple, target, rules: str) -> bool:
    """Can a full combination of `numbers` (sorted) end on `target`? Four numbers use the memoised
    `reachable` set (whole problems repeat); smaller states, which rarely repeat, stop at the
    first hit instead of building every reachable value."""
    if len(numbers) == 4:
        return target in reachable(numbers, rules)
    if len(numbers) == 1:
        return numbers[0] == target
    if len(numbers) == 2:
        return target in combine_values(numbers[0], numbers[1], rules)
    for i, j in combinations(range(len(numbers)), 2):
        rest = [numbers[k] for k in range(len(numbers)) if k != i and k != j]
        for v in combine_values(numbers[i], numbers[j], rules):
            if _can_reach(tuple(sorted([*rest, v])), target, rules):
                return True
    return False


@lru_cache(maxsize=1 << 16)
def _is_solvable_key(key: tuple, target: int, rules: str) -> bool:
    if rules == "rational":
        return _can_reach(tuple(sorted(Fraction(n) for n in key)), Fraction(target), rules)
    return _can_reach(key, target, rules)


def is_solvable(problem: Problem, rules: str = "apr") -> bool:
    """True when some order of pairwise combinations of all numbers ends exactly on the target."""
    check_rules(rules)
    return _is_solvable_key(tuple(sorted(problem.numbers)), problem.target, rules)


# Largest value of a full product of n numbers must fit the integer type of the vectorised path.
_INT32_SAFE, _INT64_SAFE = 1 << 30, 1 << 62


def _final_hit(a: np.ndarray, b: np.ndarray, valid: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Whether some APR combination of the last two numbers equals the target, per row."""
    big, small = np.maximum(a, b), np.minimum(a, b)
    hit = (a + b == target) | (a * b == target) | (big - small == target)
    hit |= (small != 0) & (big == target * small)  # exact division big / small == target
    return np.any(hit & valid, axis=1)


_CHUNK = 256  # rows per pass: keeps the (rows, 288) temporaries inside the CPU cache


def solvable_batch(numbers: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Vectorised solvability under APR rules for problems of equal size.

    Args:
        numbers: int array of shape (M, n), n >= 1.
        targets: int array of shape (M,).

    Returns:
        bool array of shape (M,).

    Enumerates every pairwise combination order level by level: after level k the state
    array has shape (M, S_k, n - k) with S_k = prod over levels of (pairs * 4); the last
    pair is compared with the target directly instead of being expanded (288 pairs per
    4-number problem instead of 1,152 leaves). int32 is used when no product can overflow
    it. For n >= 6, or values whose products could overflow int64, it falls back to
    `is_solvable` one problem at a time.
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    m, n = numbers.shape
    if m == 0:
        return np.zeros(0, dtype=bool)
    bound = float(max(int(numbers.max()), int(targets.max()), 1)) ** n * max(int(targets.max()), 1)
    if n >= 6 or bound >= _INT64_SAFE:
        return np.array(
            [is_solvable(Problem(int(t), tuple(int(x) for x in row))) for row, t in zip(numbers, targets)],
            dtype=bool,
        )
    dtype = np.int32 if bound < _INT32_SAFE else np.int64
    if m > _CHUNK:
        return np.concatenate(
            [
                _solvable_rows(numbers[s : s + _CHUNK], targets[s : s + _CHUNK], dtype)
                for s in range(0, m, _CHUNK)
            ]
        )
    return _solvable_rows(numbers, targets, dtype)


def _solvable_rows(numbers: np.ndarray, targets: np.ndarray, dtype) -> np.ndarray:
    m, n = numbers.shape
    states = numbers.astype(dtype)[:, None, :]  # (M, S, k)
    target = targets.astype(dtype)[:, None]  # (M, 1)
    valid = np.ones((m, 1), dtype=bool)  # (M, S)
    if n == 1:
        return states[:, 0, 0] == targets
    while states.shape[2] > 2:
        k = states.shape[2]
        new_states, new_valid = [], []
        for i, j in combinations(range(k), 2):
            a, b = states[:, :, i], states[:, :, j]
            rest = states[:, :, [c for c in range(k) if c not in (i, j)]]
            big, small = np.maximum(a, b), np.minimum(a, b)
            safe_small = np.where(small == 0, 1, small)
            quotient = big // safe_small
            exact = (small != 0) & (quotient * safe_small == big)
            for value, ok in (
                (a + b, valid),
                (a * b, valid),
                (big - small, valid),
                (quotient, valid & exact),
            ):
                new_states.append(np.concatenate([rest, value[:, :, None]], axis=2))
                new_valid.append(ok)
        states = np.concatenate(new_states, axis=1)
        valid = np.concatenate(new_valid, axis=1)
    return _final_hit(states[:, :, 0], states[:, :, 1], valid, target)


# ---------------------------------------------------------------------------------------
# All solutions as expressions
# ---------------------------------------------------------------------------------------

# An expression node: (value, text, precedence, op, canonical parts). Precedence: 1 for +/-,
# 2 for * and /, 3 for a bare number. `parts` flattens chains of one commutative operator.
_Node = tuple


def _leaf(n: int) -> _Node:
    return (n, str(n), 3, None, (str(n),))


def _canon(node: _Node) -> str:
    op, parts = node[3], node[4]
    if op is None:
        return parts[0]
    if op in "+*":
        return op + "(" + ",".join(sorted(parts)) + ")"
    return op + "(" + ",".join(parts) + ")"


def _make(op: str, left: _Node, right: _Node, value) -> _Node:
    prec = 1 if op in "+-" else 2
    lt = f"({left[1]})" if left[2] < prec else left[1]
    # A right operand of equal precedence keeps its parentheses unless it continues the same
    # commutative chain: a-(b-c), a/(b*c), and also a+(b-c), a*(b/c), which would otherwise
    # print like the different solutions (a+b)-c, (a*b)/c.
    same_chain = right[3] == op and op in "+*"
    rt = f"({right[1]})" if right[2] < prec or (right[2] == prec and not same_chain) else right[1]
    if op in "+*":
        parts = tuple(
            p for child in (left, right) for p in (child[4] if child[3] == op else (_canon(child),))
        )
    else:
        parts = (_canon(left), _canon(right))
    return (value, f"{lt}{op}{rt}", prec, op, parts)


def _combine_nodes(a: _Node, b: _Node, rules: str):
    x, y = a[0], b[0]
    yield _make("+", a, b, x + y)
    yield _make("*", a, b, x * y)
    if rules == "apr":
        big, small = (a, b) if x >= y else (b, a)
        yield _make("-", big, small, big[0] - small[0])
        if small[0] != 0 and big[0] % small[0] == 0:
            yield _make("/", big, small, big[0] // small[0])
        return
    yield _make("-", a, b, x - y)
    yield _make("-", b, a, y - x)
    if y != 0:
        yield _make("/", a, b, Fraction(x) / y)
    if x != 0:
        yield _make("/", b, a, Fraction(y) / x)


def _all_solutions(items: tuple, target, rules: str, seen: dict) -> None:
    if len(items) == 1:
        node = items[0]
        if node[0] == target:
            seen.setdefault(_canon(node), node[1])
        return
    for i, j in combinations(range(len(items)), 2):
        rest = tuple(items[k] for k in range(len(items)) if k != i and k != j)
        for node in _combine_nodes(items[i], items[j], rules):
            _all_solutions((*rest, node), target, rules, seen)


@lru_cache(maxsize=1 << 12)
def _solve_cached(numbers: tuple, target: int, rules: str) -> tuple[str, ...]:
    if not _is_solvable_key(tuple(sorted(numbers)), target, rules):
        return ()
    seen: dict[str, str] = {}
    _all_solutions(tuple(_leaf(n) for n in numbers), target, rules, seen)
    return tuple(sorted(seen.values(), key=lambda s: (len(s), s)))


def solve(problem: Problem, rules: str = "apr") -> list[str]:
    """Every distinct solution of `problem` as an infix expression, shortest first.

    Example: ``solve(Problem(24, (4, 6, 1, 1)))`` includes ``"4*6*1*1"``. Empty when unsolvable.
    Exhaustive: fine up to 5 numbers; 6 numbers can take seconds per problem.
    """
    check_rules(rules)
    return list(_solve_cached(problem.numbers, problem.target, rules))


@lru_cache(maxsize=16)
def _split(k: int) -> tuple[tuple[int, int, tuple[int, ...]], ...]:
    """``(i, j, rest)`` for every pair of a k-number state, in `itertools.combinations` order."""
    return tuple((i, j, tuple(r for r in range(k) if r not in (i, j))) for i, j in combinations(range(k), 2))


def _pair_hits(a: int, b: int, target: int) -> bool:
    """Does one APR operation on `a` and `b` give `target`? (`combine` without building its list.)"""
    if a + b == target or a * b == target:
        return True
    big, small = (a, b) if a >= b else (b, a)
    return big - small == target or (small != 0 and big % small == 0 and big // small == target)


def _reaches(nums: list[int], target: int) -> bool:
    """`_can_reach` under APR rules, with the two- and three-number cases written out (the hot path of
    `first_solution_ops`: its states are new every time, so nothing is worth memoising)."""
    if len(nums) == 2:
        return _pair_hits(nums[0], nums[1], target)
    if len(nums) == 3:
        a, b, c = nums
        for x, y, z in ((a, b, c), (a, c, b), (b, c, a)):
            for v, _ in combine(x, y):
                if _pair_hits(v, z, target):
                    return True
        return False
    return _can_reach(tuple(sorted(nums)), target, "apr")


def first_solution_ops(problem: Problem) -> list[str] | None:
    """The official generator's stored solution: op strings of the first DFS path (APR rules).

    The official search (pairs in `itertools.combinations` order, then `combine` order, the new
    value appended after the rest), pruned: a branch is entered only when its state can still
    reach the target, so the first path found is the official one without its dead ends.
    """
    target = problem.target

    def dfs(nums: list[int], ops: list[str]) -> list[str] | None:
        if len(nums) == 1:
            return ops if nums[0] == target else None
        for i, j, rest_index in _split(len(nums)):
            rest = [nums[k] for k in rest_index]
            for value, op in combine(nums[i], nums[j]):
                state = [*rest, value]
                if len(state) > 1 and not _reaches(state, target):
                    continue
                found = dfs(state, [*ops, op])
                if found is not None:
                    return found
        return None

    return dfs(list(problem.numbers), [])
