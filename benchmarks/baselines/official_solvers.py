"""A plain re-implementation of the official APR symbolic solvers, kept only as a speed baseline.

Written from reference/apr-reference.md sections 1.2 and 2.1-2.8 (no official code copied),
the straightforward way the reference describes the official `src/data/search.py`: node
objects that compare by heuristic, `heapq` over those objects, the module-global `random`
consumed in program order, the multiply heuristic recomputing the factor list on every call,
an unmemoised `combine_nums`, and traces built by ``+=`` on strings. It reproduces the
official behaviour including flaw 4 (the spawn loop reuses the outer loop index, so after a
failed spawn the next ``Moving to Node`` line is computed from the wrong index) and flaw 5
(``Exit Sub Search`` lines after a SoS+ answer found inside a dive).

Use: ``benchmarks/bench_solvers.py`` times it next to `agents.apr_solver` / `agents.sosp`
in the same run. Nothing in the package imports this module.

    random.seed(0)
    trace_dict = official_apr(problem.target, list(problem.numbers))
    search_path = official_sosp(problem.target, list(problem.numbers))
"""

from __future__ import annotations

import heapq
import itertools
import random


class CountdownNode:
    """A search node: numbers left, operations so far, heuristic, parent, string id."""

    def __init__(self, idx, parent, nums, operations, heuristic):
        self.idx = idx
        self.parent = parent
        self.nums = nums
        self.operations = operations
        self.heuristic = heuristic

    def __lt__(self, other):
        return self.heuristic < other.heuristic


def combine_nums(a, b):
    """Section 1.2: a+b, a*b, larger minus smaller, exact larger/smaller."""
    a, b = int(a), int(b)
    possible = [[a + b, f"{a}+{b}={a + b}"], [a * b, f"{a}*{b}={a * b}"]]
    if a <= b:
        possible.append([b - a, f"{b}-{a}={b - a}"])
        if a != 0 and b % a == 0:
            possible.append([b // a, f"{b}/{a}={round(b // a, 0)}"])
    else:
        possible.append([a - b, f"{a}-{b}={a - b}"])
        if b != 0 and a % b == 0:
            possible.append([a // b, f"{a}/{b}={round(a // b, 0)}"])
    return possible


def mult_heuristic(nums, target):
    """Section 2.2, as the code does it: sum over numbers of the distance to the nearest factor."""
    factors = [i for i in range(2, target + 1) if target % i == 0]
    return sum(min(abs(num - factor) for factor in factors) for num in nums)


def get_path_to_target(node, start_idx=None):
    """The answer path from the root (or from the node with id `start_idx`) to `node`."""
    path = [node]
    while node.parent is not None and (start_idx is None or node.idx != start_idx):
        node = node.parent
        path.append(node)
    path = path[::-1]
    target = path[-1].nums[0]
    trace = f"Moving to Node #{path[0].idx}\n"
    for i in range(len(path) - 1):
        cur, nxt = path[i], path[i + 1]
        trace += f"Current State: {target}:{cur.nums}, Operations: {cur.operations}\n"
        trace += f"Exploring Operation: {nxt.operations[-1]}, Resulting Numbers: {nxt.nums}\n"
        if i == len(path) - 2:
            trace += f"{nxt.nums[0]},{target} equal: Goal Reached\n"
        else:
            trace += f"Generated Node #{nxt.idx}: {target}:{nxt.nums} Operation: {nxt.operations[-1]}\n"
            trace += f"Moving to Node #{nxt.idx}\n"
    return trace


def _expand(current_node, target, beam_size, heuristic):
    """Section 2.3: all children, stable sort by heuristic, keep beam_size, shuffle."""
    generated_nodes = []
    nums = current_node.nums
    for i, j in itertools.combinations(range(len(nums)), 2):
        for result, operation in combine_nums(nums[i], nums[j]):
            new_nums = [nums[k] for k in range(len(nums)) if k != i and k != j] + [result]
            new_operations = [*current_node.operations, operation]
            generated_nodes.append(
                CountdownNode(None, current_node, new_nums, new_operations, heuristic(new_nums, target))
            )
    generated_nodes.sort()
    generated_nodes = generated_nodes[:beam_size]
    random.shuffle(generated_nodes)
    return generated_nodes


def _search(target, beam_size, heuristic, level, start_node, promising_threshold):
    """SoS+ (section 2.5). Returns (trace, solved)."""
    search_trace = ""
    open_set = []
    heapq.heappush(open_set, start_node)
    while open_set:
        current_nodes = [heapq.heappop(open_set) for _ in range(min(beam_size, len(open_set)))]
        for idx, current_node in enumerate(current_nodes):
            search_trace += (
                f"Current State: {target}:{current_node.nums}, Operations: {current_node.operations}\n"
            )
            nodes_to_explore = []
            node_index = 0
            for node in _expand(current_node, target, beam_size, heuristic):
                search_trace += (
                    f"Exploring Operation: {node.operations[-1]}, Resulting Numbers: {node.nums}\n"
                )
                if len(node.nums) == 1:
                    if node.nums[0] == target:
                        search_trace += f"{node.nums[0]},{target} equal: Goal Reached\n"
                        search_trace += get_path_to_target(node)
                        return search_trace, True
                    search_trace += f"{node.nums[0]},{target} unequal: No Solution\n"
                else:
                    node.idx = f"{current_node.idx},{node_index}"
                    node_index += 1
                    search_trace += (
                        f"Generated Node #{node.idx}: {target}:{node.nums} Operation: {node.operations[-1]}\n"
                    )
                    nodes_to_explore.append(node)
            nodes_to_explore.sort()
            is_promising = random.random() < promising_threshold
            if is_promising:
                for node in nodes_to_explore:
                    search_trace += f"Start Sub Search at level {level + 1}: Moving to Node #{node.idx}\n"
                    sub_trace, solved = _search(
                        target, beam_size, heuristic, level + 1, node, promising_threshold
                    )
                    search_trace += sub_trace
                    search_trace += f"Exit Sub Search at level {level + 1}\n"
                    if solved:
                        return search_trace, True
                    search_trace += "No solution found in sub search\n"
            else:
                for node in nodes_to_explore:
                    heapq.heappush(open_set, node)
            if idx < len(current_nodes) - 1:
                search_trace += f"Moving to Node #{current_nodes[idx + 1].idx}\n"
        if open_set:
            search_trace += f"Moving to Node #{open_set[0].idx}\n"
    search_trace += "No solution found.\n"
    return search_trace, False


def sosp(target, nums, beam_size, heuristic=mult_heuristic, promising_threshold=0.5):
    """The SoS+ serial trace (no leading ``Moving to Node #0``)."""
    start_node = CountdownNode("0", None, nums, [], heuristic(nums, target))
    return _search(target, beam_size, heuristic, 0, start_node, promising_threshold)


def _parallel_search(
    target, beam_size, sub_call_beam_size, heuristic, level, start_node, promising_threshold
):
    """APR (section 2.6). Returns (trace_dict, goal_node or None)."""
    trace_dict = {"main_calls": [], "sub_calls": []}
    search_trace = f"Moving to Node #{start_node.idx}\n"
    open_set = []
    heapq.heappush(open_set, start_node)
    while open_set:
        current_nodes = [heapq.heappop(open_set) for _ in range(min(beam_size, len(open_set)))]
        for idx, current_node in enumerate(current_nodes):
            search_trace += (
                f"Current State: {target}:{current_node.nums}, Operations: {current_node.operations}\n"
            )
            nodes_to_explore = []
            node_index = 0
            for node in _expand(current_node, target, beam_size, heuristic):
                search_trace += (
                    f"Exploring Operation: {node.operations[-1]}, Resulting Numbers: {node.nums}\n"
                )
                if len(node.nums) == 1:
                    if node.nums[0] == target:
                        search_trace += f"{node.nums[0]},{target} equal: Goal Reached\n"
                        search_trace += get_path_to_target(node, start_node.idx)
                        trace_dict["main_calls"].append(search_trace)
                        return trace_dict, node
                    search_trace += f"{node.nums[0]},{target} unequal: No Solution\n"
                else:
                    node.idx = f"{current_node.idx},{node_index}"
                    node_index += 1
                    search_trace += (
                        f"Generated Node #{node.idx}: {target}:{node.nums} Operation: {node.operations[-1]}\n"
                    )
                    nodes_to_explore.append(node)
            nodes_to_explore.sort()
            is_promising = False
            if level == 0 and len(nodes_to_explore) > 1:
                is_promising = random.random() < promising_threshold
            if is_promising:
                calling = "<Calling Sub Searches>\n"
                sub_calls, results = [], []
                for idx, node in enumerate(nodes_to_explore):  # reuses `idx`: official flaw 4
                    calling += f"<Start Sub Search {idx} at level {level + 1}> Moving to Node #{node.idx}\n"
                    child = CountdownNode(node.idx, node.parent, node.nums, node.operations, node.heuristic)
                    sub_dict, goal = _parallel_search(
                        target,
                        sub_call_beam_size,
                        sub_call_beam_size,
                        heuristic,
                        level + 1,
                        child,
                        promising_threshold,
                    )
                    sub_calls.append(sub_dict)
                    results.append((node, goal))
                calling += "<End Calling Sub Searches>\n"
                trace_dict["main_calls"].append(search_trace + calling)
                trace_dict["sub_calls"].append(sub_calls)
                search_trace += "<Sub Searches>\n"
                first_goal = None
                for i, (node, goal) in enumerate(results):
                    if goal is None:
                        search_trace += (
                            f"<No Solution in Sub Search {i} at level {level + 1} at Node #{node.idx}>\n"
                        )
                    else:
                        search_trace += (
                            f"<Goal Reached in Sub Search {i} at level {level + 1} at Node #{node.idx}>\n"
                        )
                        search_trace += get_path_to_target(goal, node.idx)
                        first_goal = first_goal or goal
                search_trace += "<End Sub Searches>\n"
                if first_goal is not None:
                    search_trace += f"{target},{target} equal: Goal Reached\n"
                    search_trace += get_path_to_target(first_goal)
                    trace_dict["main_calls"].append(search_trace)
                    return trace_dict, first_goal
            else:
                for node in nodes_to_explore:
                    heapq.heappush(open_set, node)
            if idx < len(current_nodes) - 1:
                search_trace += f"Moving to Node #{current_nodes[idx + 1].idx}\n"
        if open_set:
            search_trace += f"Moving to Node #{open_set[0].idx}\n"
    search_trace += "No solution found.\n"
    trace_dict["main_calls"].append(search_trace)
    return trace_dict, None


def apr(target, nums, beam_size, sub_call_beam_size, heuristic=mult_heuristic, promising_threshold=0.9):
    """The APR trace_dict of one problem, and whether the root reached the goal."""
    start_node = CountdownNode("0", None, nums, [], heuristic(nums, target))
    trace_dict, goal = _parallel_search(
        target, beam_size, sub_call_beam_size, heuristic, 0, start_node, promising_threshold
    )
    return trace_dict, goal is not None


def official_apr(target, nums, max_beam_size=10, max_sub_call_beam_size=15):
    """One problem as `generate_apr.py` runs it: parent beam 1..10, child beam beam..15."""
    beam_size = random.randint(1, max_beam_size)
    sub_call_beam_size = random.randint(beam_size, max_sub_call_beam_size)
    trace_dict, solved = apr(target, nums, beam_size, sub_call_beam_size)
    return {
        "trace_dict": trace_dict,
        "solved": solved,
        "beam_size": beam_size,
        "sub_call_beam_size": sub_call_beam_size,
    }


def official_sosp(target, nums, max_beam_size=5):
    """One problem as `generate_sosp.py` runs it: beam 1..5, promising probability 0.5."""
    beam_size = random.randint(1, max_beam_size)
    search_path, solved = sosp(target, nums, beam_size)
    return {"search_path": search_path, "solved": solved, "beam_size": beam_size}
