"""Small string helpers shared by the data builders and the LLM agent."""

from __future__ import annotations


def common_prefix_len(a: str, b: str) -> int:
    """Length of the longest common prefix of `a` and `b`.

    A binary search with C-level ``startswith`` on slices, not a character loop: the strings
    are whole thread contexts (kilobytes) that usually share almost everything.
    """
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if b.startswith(a[:mid]):
            lo = mid
        else:
            hi = mid - 1
    return lo
