"""The multiply heuristic of the official solvers (reference section 2.2), memoised per target.

``h(nums) = sum over n of min over f of |n - f|``, with f the integers in [2, T] that divide
T: the form the official *code* uses (the paper's appendix writes ``min |f - sum(nums)|``;
the code produced the data). Lower is better. The search (`agents.search`) reads the
per-target `distance_table` directly and adds a child's distances incrementally.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache


@lru_cache(maxsize=1024)
def factors(target: int) -> tuple[int, ...]:
    """Integers f in [2, target] with ``target % f == 0``; ``(target,)`` when there are none.

    The official heuristic has no rule for targets below 2 (``min`` of nothing raises); we
    fall back to the distance to the target itself.
    """
    found = tuple(f for f in range(2, target + 1) if target % f == 0)
    return found or (target,)


@lru_cache(maxsize=1024)
def distance_table(target: int) -> tuple[int, ...]:
    """``table[v] = min(|v - f| for f in factors(target))`` for ``0 <= v <= target``.

    Values above the target need no table: the largest factor is the target itself (or the
    fallback), so their distance is ``v - target``. This keeps the memo bounded whatever
    products a search builds.
    """
    fs = factors(target)
    return tuple(min(abs(v - f) for f in fs) for v in range(target + 1))


def mult_heuristic(nums: Sequence[int], target: int) -> int:
    """The official multiply heuristic of `nums` (lower is better)."""
    table = distance_table(target)
    return sum([table[n] if n <= target else n - target for n in nums])
