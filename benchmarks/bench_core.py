"""pytest-benchmark suites for the Countdown core's hot paths.

    .venv/bin/pytest benchmarks/bench_core.py --benchmark-enable --benchmark-only   # timed
    .venv/bin/pytest benchmarks/bench_core.py                                       # once, un-timed (make test)

Covers `generate_problems` (2,000 problems), `solve` and `is_solvable` with their memo caches
cleared before each round (so a round measures work, not cache hits), `solvable_batch`,
`verify` on expressions and on answer paths (half of each wrong), and `verify` on each
adversarial input of `benchmarks.side_by_side.adversarial_answers` (worst-case time per call).
Sizes stay modest because `make test` runs every benchmark once. The ratios against the
official generator and reasoning-gym are in `benchmarks/side_by_side.py`.
"""

from __future__ import annotations

import numpy as np
import pytest

from apr_env import Problem, arithmetic, generate_problems, is_solvable, solve, solver, verify
from apr_env.verifier import MAX_LENGTH
from benchmarks.side_by_side import (
    ADVERSARIAL_PROBLEM,
    SideBySideConfig,
    adversarial_answers,
    expression_answers,
    format_table,
    path_answers,
    run,
)


def _clear_solver_caches() -> None:
    """Forget every memoised result, so a round pays for the search it times."""
    solver._solve_cached.cache_clear()
    solver._is_solvable_key.cache_clear()
    solver.reachable.cache_clear()
    arithmetic.combine.cache_clear()


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    return generate_problems(200, seed=123)


def test_generate_2000_problems(benchmark):
    out = benchmark(generate_problems, 2000, seed=0)
    assert len(out) == 2000


def test_solve_200_problems_cold(benchmark, problems):
    def solve_all():
        return [solve(p) for p in problems]

    out = benchmark.pedantic(solve_all, setup=_clear_solver_caches, rounds=3)
    assert all(out)


def test_is_solvable_200_problems_cold(benchmark, problems):
    def check_all():
        return [is_solvable(p) for p in problems]

    out = benchmark.pedantic(check_all, setup=_clear_solver_caches, rounds=3)
    assert all(out)


def test_solvable_batch_2000_uniform_draws(benchmark):
    rng = np.random.default_rng(0)
    numbers = rng.integers(1, 100, size=(2000, 4))
    targets = rng.integers(10, 101, size=2000)
    out = benchmark(solver.solvable_batch, numbers, targets)
    assert 0 < out.sum() < 2000  # about 1 in 8 uniform draws is solvable


def test_verify_1000_expressions(benchmark):
    answers = expression_answers(1000, seed=0)

    def check_all():
        return [verify(p, a).correct for p, a, _ in answers]

    assert benchmark(check_all) == [c for _, _, c in answers]


def test_verify_1000_answer_paths(benchmark):
    answers = path_answers(1000, seed=0)

    def check_all():
        return [verify(p, a).correct for p, a, _ in answers]

    assert benchmark(check_all) == [c for _, _, c in answers]


_ADVERSARIAL = adversarial_answers()


@pytest.mark.parametrize("name", list(_ADVERSARIAL))
def test_verify_adversarial_input(benchmark, name):
    text = _ADVERSARIAL[name]
    verdict = benchmark(verify, ADVERSARIAL_PROBLEM, text)
    assert verdict.correct == (name == "deep-parentheses")  # 8/4*(6-1) in 4,990 parentheses
    assert (verdict.code == "too_long") == (len(text) > MAX_LENGTH)


def test_side_by_side_script_runs_on_tiny_sizes(tmp_path):
    # A smoke run of benchmarks/side_by_side.py's library entry point (no timing claims).
    cfg = SideBySideConfig(
        ours_problems=50,
        official_problems=5,
        reasoning_gym_problems=5,
        answers=20,
        paths=10,
        adversarial_calls=1,
        repeats=1,
    )
    results = run(cfg, ["--tiny"])
    assert set(results["ratios"]) == {
        "generate_vs_official_reference_285",
        "generate_vs_official_reimplementation",
        "generate_vs_reasoning_gym",
        "verify_vs_reasoning_gym",
    }
    assert results["verification"]["ours_expression"]["agrees_with_expected"] == 1.0
    assert results["verification"]["ours_path"]["agrees_with_expected"] == 1.0
    assert "generate + solution: apr_env" in format_table(results)
