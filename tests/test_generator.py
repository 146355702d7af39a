"""Specification of `apr_env.generator`: seeded solvable problems, knobs, splits, config errors.

Covers: the default APR distribution (4 numbers in 1..99, target 10..100 drawn uniformly,
every problem solvable per an independent brute force written in this file); every knob
(count of numbers 2..6, value range with zeros, target range, rules, solvable_only);
determinism per (seed, index) across worker counts, start offsets and batching; splits with
no (sorted numbers, target) overlap between or inside them, stable val/test when train grows;
bad configuration raising `ValueError` with the field and the accepted values (pinned).
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apr_env import GeneratorConfig, Problem, generate_problems, split_problems
from apr_env.errors import ConfigError

# --------------------------------------------------------------------------------------
# Independent oracle (nothing from apr_env.solver)
# --------------------------------------------------------------------------------------


def reaches(numbers, target, rules: str = "apr") -> bool:
    """Depth-first search over ordered pairs with early exit; dead states are remembered.

    APR rules: a step's result must be a non-negative integer. Rational: any value, no
    division by zero.
    """
    dead: set[tuple] = set()

    def dfs(nums: tuple) -> bool:
        if len(nums) == 1:
            return nums[0] == target
        if nums in dead:
            return False
        for i in range(len(nums)):
            for j in range(len(nums)):
                if i == j:
                    continue
                a, b = nums[i], nums[j]
                rest = nums[:i] + nums[i + 1 :]
                rest = rest[: j - (j > i)] + rest[j - (j > i) + 1 :]
                values = [a + b, a * b, a - b] + ([Fraction(a) / b] if b != 0 else [])
                for v in values:
                    if rules == "apr" and (v < 0 or Fraction(v).denominator != 1):
                        continue
                    if dfs(tuple(sorted((*rest, Fraction(v))))):
                        return True
        dead.add(nums)
        return False

    return dfs(tuple(sorted(Fraction(n) for n in numbers)))


# --------------------------------------------------------------------------------------
# Default distribution
# --------------------------------------------------------------------------------------


def test_default_problems_follow_the_apr_distribution_and_are_solvable():
    problems = generate_problems(300, seed=0)
    assert len(problems) == 300
    for p in problems:
        assert isinstance(p, Problem)
        assert len(p.numbers) == 4
        assert all(1 <= n <= 99 for n in p.numbers)
        assert 10 <= p.target <= 100
        assert reaches(p.numbers, p.target), p


def test_default_values_are_plain_python_ints():
    # numpy ints would not survive json.dumps or Problem's own checks elsewhere.
    p = generate_problems(1, seed=0)[0]
    assert type(p.target) is int and all(type(n) is int for n in p.numbers)


def test_targets_are_uniform_over_10_to_100():
    # The target is drawn first and kept (as the official generator does), so its distribution
    # stays uniform even though easy targets would be accepted more often. 9 buckets of ~10 values.
    targets = [p.target for p in generate_problems(4000, seed=1)]
    assert min(targets) == 10 and max(targets) == 100
    buckets = Counter(min((t - 10) // 10, 8) for t in targets)
    expected = {b: 4000 * (11 if b == 8 else 10) / 91 for b in range(9)}
    for b in range(9):
        assert abs(buckets[b] - expected[b]) < 0.3 * expected[b], (b, buckets[b], expected[b])


def test_numbers_cover_1_to_99_with_repeats_allowed():
    problems = generate_problems(2000, seed=2)
    values = Counter(n for p in problems for n in p.numbers)
    assert min(values) == 1 and max(values) == 99
    assert any(len(set(p.numbers)) < 4 for p in problems)


# --------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------


def test_same_seed_same_problems_and_other_seed_other_problems():
    assert generate_problems(50, seed=5) == generate_problems(50, seed=5)
    assert generate_problems(50, seed=5) != generate_problems(50, seed=6)


def test_output_does_not_depend_on_the_number_of_workers():
    # More than one block of 2,048 indices, so two workers really get separate jobs.
    n = 2100
    assert generate_problems(n, seed=9, workers=2) == generate_problems(n, seed=9, workers=1)


def test_start_offset_continues_the_same_stream():
    assert generate_problems(10, seed=0, start=5) == generate_problems(15, seed=0)[5:]


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**64 - 1),
    cut=st.integers(0, 30),
    total=st.integers(0, 30),
    numbers=st.sampled_from([(4, 4), (2, 5), (3, 3)]),
)
def test_any_split_of_a_range_into_two_batches_gives_the_same_problems(seed, cut, total, numbers):
    cut = min(cut, total)
    config = {"min_numbers": numbers[0], "max_numbers": numbers[1]}
    whole = generate_problems(total, seed=seed, **config)
    pieces = generate_problems(cut, seed=seed, **config) + generate_problems(
        total - cut, seed=seed, start=cut, **config
    )
    assert pieces == whole


def test_negative_seeds_are_accepted_and_deterministic():
    assert generate_problems(5, seed=-3) == generate_problems(5, seed=-3)


def test_zero_problems_is_an_empty_list():
    assert generate_problems(0, seed=0) == []


# --------------------------------------------------------------------------------------
# Knobs
# --------------------------------------------------------------------------------------


def test_count_of_numbers_is_drawn_within_its_range():
    problems = generate_problems(200, seed=3, min_numbers=2, max_numbers=5)
    counts = Counter(len(p.numbers) for p in problems)
    assert set(counts) == {2, 3, 4, 5}
    for p in problems:
        assert reaches(p.numbers, p.target), p


def test_six_numbers_are_supported():
    for p in generate_problems(3, seed=4, min_numbers=6, max_numbers=6):
        assert len(p.numbers) == 6
        assert reaches(p.numbers, p.target), p


def test_value_range_may_include_zero():
    problems = generate_problems(200, seed=5, min_value=0, max_value=5, min_target=0, max_target=20)
    assert any(0 in p.numbers for p in problems)
    for p in problems:
        assert all(0 <= n <= 5 for n in p.numbers) and 0 <= p.target <= 20
        assert reaches(p.numbers, p.target), p


def test_target_range_is_respected():
    problems = generate_problems(
        50, seed=6, min_numbers=3, max_numbers=3, max_value=20, min_target=200, max_target=300
    )
    for p in problems:
        assert 200 <= p.target <= 300 and all(1 <= n <= 20 for n in p.numbers)
        assert reaches(p.numbers, p.target), p


def test_solvable_only_false_keeps_the_first_draw_solvable_or_not():
    problems = generate_problems(200, seed=7, solvable_only=False)
    solvable = [reaches(p.numbers, p.target) for p in problems]
    # About 1 in 8 uniform draws is solvable: both kinds occur.
    assert any(solvable) and not all(solvable)
    assert all(10 <= p.target <= 100 and all(1 <= n <= 99 for n in p.numbers) for p in problems)


def test_rational_rules_generate_rationally_solvable_problems():
    problems = generate_problems(8, seed=8, rules="rational", min_numbers=3, max_numbers=3, max_value=12)
    for p in problems:
        assert reaches(p.numbers, p.target, "rational"), p


def test_a_config_object_is_the_same_as_keyword_arguments():
    config = GeneratorConfig(min_numbers=3, max_numbers=3, max_value=30)
    assert generate_problems(20, seed=1, config=config) == generate_problems(
        20, seed=1, min_numbers=3, max_numbers=3, max_value=30
    )


def test_default_config_is_the_apr_distribution():
    c = GeneratorConfig()
    assert (c.min_numbers, c.max_numbers, c.min_value, c.max_value) == (4, 4, 1, 99)
    assert (c.min_target, c.max_target, c.rules, c.solvable_only) == (10, 100, "apr", True)


# --------------------------------------------------------------------------------------
# Configuration errors
# --------------------------------------------------------------------------------------

CONFIG_ERRORS = [
    ({"min_numbers": 1}, r"min_numbers=1, max_numbers=4: the count of numbers must be in 2\.\.6"),
    ({"max_numbers": 7}, r"min_numbers=4, max_numbers=7: the count of numbers must be in 2\.\.6"),
    (
        {"min_numbers": 5, "max_numbers": 3},
        r"min_numbers=5 is above max_numbers=3; accepted: min_numbers <= max_numbers",
    ),
    (
        {"min_value": 50, "max_value": 10},
        r"min_value=50 is above max_value=10; accepted: min_value <= max_value",
    ),
    (
        {"min_target": 100, "max_target": 10},
        r"min_target=100 is above max_target=10; accepted: min_target <= max_target",
    ),
    ({"min_value": -1}, r"min_value=-1, min_target=10: values must be non-negative"),
    ({"min_target": -5}, r"min_value=1, min_target=-5: values must be non-negative"),
    ({"rules": "float"}, r"rules='float' is not a rule set; accepted: 'apr', 'rational'"),
    ({"max_attempts": 0}, r"max_attempts=0 must be >= 1"),
    ({"max_value": 9.5}, r"max_value must be an int, got 9\.5"),
    ({"min_numbers": True}, r"min_numbers must be an int, got True"),
    ({"numbers": 4}, r"unknown generator option\(s\) \['numbers'\]; accepted: \[.*'max_numbers'.*\]"),
]


@pytest.mark.parametrize(
    ("config", "message"),
    CONFIG_ERRORS,
    ids=[
        "fewer-than-2-numbers",
        "more-than-6-numbers",
        "min-numbers-above-max",
        "min-value-above-max",
        "min-target-above-max",
        "negative-value",
        "negative-target",
        "unknown-rules",
        "no-attempts",
        "non-int-field",
        "bool-field",
        "unknown-option",
    ],
)
def test_bad_configuration_names_the_field_and_the_accepted_values(config, message):
    with pytest.raises(ConfigError, match=message):
        generate_problems(1, seed=0, **config)


def test_config_errors_are_value_errors():
    with pytest.raises(ValueError):
        GeneratorConfig(min_numbers=1)


def test_a_target_range_with_no_solvable_problem_fails_after_bounded_tries():
    # Two 1s reach only 2, 1, 0: no target in 50..60 is reachable.
    with pytest.raises(
        ConfigError,
        match=r"no solvable problem found for index 0 \(target \d+\) within max_attempts=500 number sets; "
        r"the ranges min_value\.\.max_value=1\.\.1 with 2 numbers .* min_target\.\.max_target=50\.\.60",
    ):
        generate_problems(
            3,
            seed=0,
            min_numbers=2,
            max_numbers=2,
            min_value=1,
            max_value=1,
            min_target=50,
            max_target=60,
            max_attempts=500,
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": -1, "seed": 0}, r"n must be a non-negative int, got -1"),
        ({"n": 2.0, "seed": 0}, r"n must be a non-negative int, got 2\.0"),
        ({"n": 1, "seed": "0"}, r"seed must be an int, got '0'"),
        ({"n": 1, "seed": 0, "start": -1}, r"start must be a non-negative int, got -1"),
    ],
    ids=["negative-n", "float-n", "str-seed", "negative-start"],
)
def test_bad_call_arguments_are_rejected(kwargs, message):
    n = kwargs.pop("n")
    with pytest.raises(ConfigError, match=message):
        generate_problems(n, **kwargs)


# --------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------

SIZES = {"train": 400, "val": 60, "test": 60}


def test_splits_have_the_requested_sizes_and_no_shared_problem():
    splits = split_problems(SIZES, seed=0)
    assert {k: len(v) for k, v in splits.items()} == SIZES
    keys = [p.key for split in splits.values() for p in split]
    assert len(keys) == len(set(keys))  # unique inside each split and across splits


def test_splits_are_deterministic():
    assert split_problems(SIZES, seed=4) == split_problems(SIZES, seed=4)
    assert split_problems(SIZES, seed=4) != split_problems(SIZES, seed=5)


def test_val_and_test_do_not_change_when_train_grows():
    small = split_problems({"train": 100, "val": 30, "test": 30}, seed=1)
    large = split_problems({"train": 600, "val": 30, "test": 30}, seed=1)
    assert small["val"] == large["val"] and small["test"] == large["test"]


def test_splits_stay_disjoint_when_the_key_space_is_small():
    # 3 numbers in 1..6 with targets 10..20: few distinct keys, so collisions are frequent.
    config = {"min_numbers": 3, "max_numbers": 3, "max_value": 6, "max_target": 20}
    splits = split_problems({"a": 40, "b": 40, "c": 40}, seed=2, **config)
    keys = [p.key for split in splits.values() for p in split]
    assert len(keys) == 120 == len(set(keys))
    for p in (p for split in splits.values() for p in split):
        assert reaches(p.numbers, p.target)


def test_asking_for_more_distinct_problems_than_exist_raises_instead_of_looping():
    # Two numbers in 1..2 and targets 0..4: keys are a few (sorted pair, target) combinations.
    with pytest.raises(
        ConfigError, match=r"split 'train': found only \d+ of 100 problems .* too few distinct"
    ):
        split_problems(
            {"train": 100}, seed=0, min_numbers=2, max_numbers=2, max_value=2, min_target=0, max_target=4
        )
