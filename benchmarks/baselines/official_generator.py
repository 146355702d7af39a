"""A plain re-implementation of the official APR problem generator, kept only as a speed baseline.

Written from reference/apr-reference.md sections 1.2 and 1.3 (no official code copied): the
target is drawn first, uniformly from 10..100 (``random.choice(range(10, max_target + 1))``);
then four numbers are drawn independently and uniformly from 1..99
(``random.randint(1, max_target - 1)``) and redrawn until an exhaustive depth-first search
over all pairs (`itertools.combinations` order) and all `combine_nums` results finds a path
that ends in exactly ``[target]``. The first path found is stored as ``solution``. Randomness
comes from Python's module-level `random`, consumed in program order, as the official code
does; the official multiprocessing pool (whose forked workers reseed themselves, flaw 1)
and the ``optimal_path`` string (an older trace format nobody reads) are left out, so this
times one process doing the part that costs: rejection sampling with an unmemoised DFS.

Use: ``benchmarks/side_by_side.py`` times it next to `apr_env.generate_problems`, and
``tests/test_solver.py`` checks that `apr_env.solver.first_solution_ops` finds the same
first path. Nothing in the package imports this module.

    random.seed(42)
    records = official_generate(1000)  # [{"nums": [...], "target": T, "solution": [...], "start_size": 4}, ...]
"""

from __future__ import annotations

import itertools
import random


def combine_nums(a: int, b: int) -> list[tuple[int, str]]:
    """Section 1.2: a+b, a*b, larger minus smaller, and larger / smaller when exact and non-zero."""
    results = [(a + b, f"{a}+{b}={a + b}"), (a * b, f"{a}*{b}={a * b}")]
    if a <= b:
        results.append((b - a, f"{b}-{a}={b - a}"))
        if a != 0 and b % a == 0:
            results.append((b // a, f"{b}/{a}={b // a}"))
    else:
        results.append((a - b, f"{a}-{b}={a - b}"))
        if b != 0 and a % b == 0:
            results.append((a // b, f"{a}/{b}={a // b}"))
    return results


def dfs_solution(target: int, nums: list[int], operations: list[str] | None = None) -> list[str] | None:
    """The first path (list of op strings) that combines all of `nums` into exactly [target], or None.

    Exhaustive depth-first search in the official order: pairs (i < j) in
    `itertools.combinations` order, then `combine_nums` order; the combined value goes to the
    end of the remaining numbers. No memoisation and no pruning, as in the official code.
    """
    operations = operations or []
    if len(nums) == 1:
        return operations if nums[0] == target else None
    for i, j in itertools.combinations(range(len(nums)), 2):
        remaining = [nums[k] for k in range(len(nums)) if k != i and k != j]
        for value, op in combine_nums(nums[i], nums[j]):
            found = dfs_solution(target, [*remaining, value], [*operations, op])
            if found is not None:
                return found
    return None


def official_problem(max_target: int = 100, start_size: int = 4, min_target: int = 10) -> dict:
    """One record: target first, then number sets redrawn until the DFS finds a solution."""
    target = random.choice(range(min_target, max_target + 1))
    while True:
        nums = [random.randint(1, max_target - 1) for _ in range(start_size)]
        solution = dfs_solution(target, nums)
        if solution is not None:
            return {"nums": nums, "target": target, "solution": solution, "start_size": start_size}


def official_generate(n: int, *, seed: int | None = None) -> list[dict]:
    """`n` records in the official layout, drawn in one process (``random.seed(seed)`` first if given)."""
    if seed is not None:
        random.seed(seed)
    return [official_problem() for _ in range(n)]
