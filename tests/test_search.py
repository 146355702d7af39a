"""The shared search machinery: line formats, heuristic, expansion, heap order, seeding, replay."""

from __future__ import annotations

import heapq
import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents import heuristic, lines, search, seeding
from agents.replay import Decisions, ReplayMismatch, ScriptedRng, decisions
from apr_env import grammar
from apr_env.arithmetic import combine

nums_st = st.lists(st.integers(0, 10**7), min_size=1, max_size=6)
op_st = st.builds(
    lambda a, o, b: f"{a}{o}{b}={a + b}", st.integers(0, 9999), st.sampled_from("+-*/"), st.integers(0, 9999)
)
id_st = st.lists(st.integers(0, 14), max_size=4).map(lambda ks: ",".join(["0", *map(str, ks)]))


class IdentityRng:
    """Keeps the pre-shuffle order; every coin comes up `coin`."""

    def __init__(self, coin: bool = False):
        self.coin = coin

    def shuffle(self, x):
        pass

    def random(self):
        return 0.0 if self.coin else 0.99


# --------------------------------------------------------------------------------------
# Line formats: the fast pieces equal the grammar functions
# --------------------------------------------------------------------------------------


@given(nums_st)
def test_nums_text_equals_grammar_format_nums(nums):
    assert lines.nums_text(nums) == grammar.format_nums(nums)


@given(st.lists(op_st, max_size=5), op_st)
def test_ops_text_helpers_equal_grammar_format_ops(ops, op):
    assert lines.ops_text(ops) == grammar.format_ops(ops)
    assert lines.extend_ops_text(grammar.format_ops(ops), op) == grammar.format_ops([*ops, op])


@given(id_st, st.integers(0, 1000), nums_st, st.lists(op_st, max_size=4), op_st)
def test_fast_line_helpers_equal_grammar_lines(node_id, target, nums, ops, op):
    nt = grammar.format_nums(nums)
    assert lines.state(str(target), nt, grammar.format_ops(ops)) == grammar.state_line(target, nums, ops)
    assert lines.exploring(op, nt) == grammar.exploring_line(op, nums)
    assert lines.generated(node_id, str(target), nt, op) == grammar.generated_line(node_id, target, nums, op)
    assert lines.moving(node_id) == grammar.moving_line(node_id)
    assert lines.result(target, target) == grammar.goal_line(target, target)
    assert lines.result(target + 1, target) == grammar.unequal_line(target + 1, target)


# --------------------------------------------------------------------------------------
# Heuristic
# --------------------------------------------------------------------------------------


def reference_heuristic(nums, target):
    """Section 2.2 verbatim: sum over numbers of the distance to the nearest factor in [2, T]."""
    fs = [f for f in range(2, target + 1) if target % f == 0]
    return sum(min(abs(n - f) for f in fs) for n in nums)


@given(st.lists(st.integers(0, 20000), min_size=1, max_size=5), st.integers(2, 400))
def test_mult_heuristic_equals_the_reference_definition(nums, target):
    assert heuristic.mult_heuristic(nums, target) == reference_heuristic(nums, target)


def test_heuristic_sums_per_number_distances_not_distance_of_the_sum():
    # T = 10, factors 2, 5, 10: the code's form gives 1 + 1 + 1; the paper's min |f - 18| would be 8.
    assert heuristic.mult_heuristic([6, 6, 6], 10) == 3


def test_targets_below_two_fall_back_to_distance_to_the_target():
    assert heuristic.factors(1) == (1,)
    assert heuristic.mult_heuristic([0, 5], 1) == 1 + 4
    assert heuristic.mult_heuristic([3], 0) == 3


# --------------------------------------------------------------------------------------
# Expansion
# --------------------------------------------------------------------------------------


def make_ctx(target, beam, rng=None, branch=None):
    return search.SearchContext(target, beam, rng or IdentityRng(), branch)


@pytest.mark.parametrize("nums", [(84, 64, 21, 23), (4, 38, 3), (31, 31, 26), (7, 7)], ids=str)
def test_candidates_follow_pair_then_combine_order_with_exact_heuristics(nums):
    target = 83
    ctx = make_ctx(target, 99)
    node = search.start_node("0", target, nums)
    expected = []
    for i, j in itertools.combinations(range(len(nums)), 2):
        rest = [nums[k] for k in range(len(nums)) if k not in (i, j)]
        for v, op in combine(nums[i], nums[j]):
            expected.append((reference_heuristic([*rest, v], target), (*rest, v), op))
    got = (
        search.candidates(ctx, node)
        if len(nums) > 2
        else [(reference_heuristic([v], target), (v,), op) for v, op in combine(*nums)]
    )
    assert got == expected


def test_top_k_is_a_stable_sort_by_heuristic_then_cut():
    ctx = make_ctx(83, 5)
    cands = search.candidates(ctx, search.start_node("0", 83, (84, 64, 21, 23)))
    expected = sorted(cands, key=lambda c: c[0])[:5]  # sorted() is stable
    assert search._top_k(ctx, list(cands)) == expected


def test_top_k_of_terminal_children_uses_the_heuristic_of_the_result():
    ctx = make_ctx(10, 1)
    kept = search.terminal_top_k(ctx, combine(2, 5))  # 7, 10, 3 (no division)
    assert kept == [(10, "2*5=10")]


def test_expand_gives_ids_in_printed_order_to_non_terminal_children_only():
    ctx = make_ctx(83, 3)
    root = search.start_node("0", 83, (84, 64, 21, 23))
    explore, goal = search.expand(ctx, root)
    assert not goal
    text_lines = "\n".join(ctx.lines).split("\n")
    printed = [grammar.RE_GENERATED.fullmatch(x).group(1) for x in text_lines if x.startswith("Generated")]
    assert printed == ["0,0", "0,1", "0,2"]
    assert [n.h for n in explore] == sorted(n.h for n in explore)

    ctx = make_ctx(83, 9)
    two = search.Node("0,2,7", (87, 4), "[87, 4]", 0, None, "84/21=4", "['64+23=87', '84/21=4']")
    node_lines_before = len(ctx.lines)
    explore, goal = search.expand(ctx, two)
    assert goal and explore == []
    assert "Generated" not in "\n".join(ctx.lines[node_lines_before:])


def test_goal_child_writes_goal_line_then_path_from_thread_start():
    ctx = make_ctx(83, 9)
    start = search.start_node("0,2", 83, (84, 21, 87), ["64+23=87"])
    explore, _ = search.expand(ctx, start)
    mid = next(n for n in explore if n.nums == (87, 4))
    mid.ops_text = search.ops_text_of(mid)
    ctx.lines.clear()
    _, goal = search.expand(ctx, mid)
    assert goal
    text = "\n".join(ctx.lines)
    answer = grammar.extract_answer_path(text)
    assert answer.startswith("Moving to Node #0,2\n")
    assert answer.endswith("83,83 equal: Goal Reached")
    assert f"Generated Node #{mid.id}: 83:[87, 4] Operation: 84/21=4" in answer


# --------------------------------------------------------------------------------------
# The outer loop: heap order and Moving lines
# --------------------------------------------------------------------------------------


class ByH:
    """The official node: compares by heuristic only."""

    def __init__(self, h, tag):
        self.heuristic, self.tag = h, tag

    def __lt__(self, other):
        return self.heuristic < other.heuristic


@given(st.lists(st.one_of(st.integers(0, 4), st.none()), max_size=60))
def test_heap_entries_tie_exactly_like_objects_comparing_by_h(script):
    ours, official = [], []
    popped_ours, popped_official = [], []
    for k, step in enumerate(script):
        if step is None:
            if ours:
                popped_ours.append(heapq.heappop(ours)[1].id)
                popped_official.append(heapq.heappop(official).tag)
        else:
            heapq.heappush(ours, (step, search.Node(str(k), (), "[]", step, None, None)))
            heapq.heappush(official, ByH(step, str(k)))
    assert popped_ours == popped_official


def test_no_solution_search_ends_with_no_solution_line_and_moving_lines_name_the_next_pop():
    ctx = make_ctx(97, 2)  # 1, 1, 1, 1 cannot reach 97
    solved = search.run_to_end(search.best_first(ctx, search.start_node("0", 97, (1, 1, 1, 1)), 0))
    assert not solved
    text_lines = "\n".join(ctx.lines).split("\n")
    assert text_lines[-1] == grammar.NO_SOLUTION
    assert sum(x.startswith("Moving to Node #") for x in text_lines) > 3
    for k, line in enumerate(text_lines[:-1]):
        if line.startswith("Moving to Node #"):
            assert text_lines[k + 1].startswith("Current State: ")


def test_branch_handler_receives_nodes_to_explore_in_h_order():
    seen = []

    def handler(ctx, node, explore, level):
        seen.append([n.h for n in explore])
        return False
        yield  # a generator

    rule = search.BranchRule(1.0, handler)
    ctx = make_ctx(83, 4, IdentityRng(coin=True), rule)
    search.run_to_end(search.best_first(ctx, search.start_node("0", 83, (84, 64, 21, 23)), 0))
    assert seen and all(hs == sorted(hs) for hs in seen)


def test_branch_rule_rejects_bad_probability():
    with pytest.raises(ValueError, match="probability"):
        search.BranchRule(1.5, lambda *a: None)


def test_search_context_rejects_bad_beam():
    with pytest.raises(ValueError, match="beam_size must be an int >= 1, got 0"):
        search.SearchContext(10, 0, IdentityRng())


# --------------------------------------------------------------------------------------
# Seeding
# --------------------------------------------------------------------------------------


def test_thread_random_is_a_reproducible_random_random():
    a, b = seeding.ThreadRandom("k"), seeding.ThreadRandom("k")
    assert isinstance(a, random.Random)
    assert [a.random() for _ in range(5)] == [b.random() for _ in range(5)]
    assert a.randint(1, 10) == b.randint(1, 10)
    assert seeding.ThreadRandom("k").getrandbits(64) != seeding.ThreadRandom("k2").getrandbits(64)


def test_thread_random_stream_spans_block_boundaries_and_restores_state():
    r = seeding.ThreadRandom("x")
    first = r.getrandbits(500)
    state = r.getstate()
    nxt = [r.getrandbits(37) for _ in range(40)]  # crosses several 512-bit blocks
    r.setstate(state)
    assert [r.getrandbits(37) for _ in range(40)] == nxt
    assert first.bit_length() <= 500


@pytest.mark.parametrize("n", [2, 3, 4, 7, 9, 25])
def test_thread_random_shuffle_is_uniform_over_permutations(n):
    r = seeding.ThreadRandom(f"shuffle{n}")
    size = min(n, 3) if n <= 4 else 2 if n <= 9 else 1
    counts = {}
    trials = 6000
    for _ in range(trials):
        x = list(range(n))
        r.shuffle(x)
        assert sorted(x) == list(range(n))
        counts[tuple(x[:size])] = counts.get(tuple(x[:size]), 0) + 1
    cells = 1
    for k in range(size):
        cells *= n - k
    assert len(counts) == cells  # every prefix occurs
    expected = trials / cells
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < cells + 6 * cells**0.5 + 10  # far above the chi-square mean for a fair shuffle


def test_seed_keys_are_stable_strings():
    key = seeding.problem_key("apr", 3, 83, (84, 64, 21, 23))
    assert key == "apr|3|83|84,64,21,23"
    assert seeding.child_key(key, "0,3") == "apr|3|83|84,64,21,23/0,3"
    assert seeding.stable_seed(key) == seeding.stable_seed("apr|3|83|84,64,21,23")
    with pytest.raises(TypeError, match="seed must be an int"):
        seeding.problem_key("apr", "3", 83, (1,))


# --------------------------------------------------------------------------------------
# Replay tooling
# --------------------------------------------------------------------------------------


def test_decisions_reads_printed_orders_and_coins():
    text = (
        "Current State: 73:[31, 14, 54, 26], Operations: []\n"
        "Exploring Operation: 31+26=57, Resulting Numbers: [14, 54, 57]\n"
        "Generated Node #0,0: 73:[14, 54, 57] Operation: 31+26=57\n"
        "Start Sub Search at level 1: Moving to Node #0,0\n"
        "Current State: 73:[14, 54, 57], Operations: ['31+26=57']\n"
        "Exploring Operation: 14+54=68, Resulting Numbers: [57, 68]\n"
        "Generated Node #0,0,0: 73:[57, 68] Operation: 14+54=68\n"
        "Moving to Node #0,0,0\n"
    )
    d = decisions(text, min_children=1, branch_markers=("Start Sub Search",))
    assert d.orders == [[("31+26=57", (14, 54, 57))], [("14+54=68", (57, 68))]]
    assert d.coins == [True, False]


def test_scripted_rng_refuses_a_child_outside_the_kept_set():
    rng = ScriptedRng(Decisions(orders=[[("1+1=2", (2,))]]))
    with pytest.raises(ReplayMismatch, match="not among the kept candidates"):
        rng.shuffle([(0, (5,), "2+3=5")])
