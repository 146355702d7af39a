"""Per-episode seeds: how every tool derives problem i's seed from a run's base seed.

The environments, the runtime's runner, the data builder and the trainers all need the same
derivation, so that an episode replays identically whether it ran alone, in a batch, in a
worker process or in a training rollout. It lives here, in the bottom layer, so every layer
can use it without importing a higher one.
"""

from __future__ import annotations


def episode_seed(seed: int, index: int) -> int:
    """A per-episode seed that depends only on (seed, index): same whatever the batch or order.

    A SplitMix64-style mix of the two integers, folded to 31 bits (a valid seed for `random`,
    numpy and torch alike).
    """
    x = (seed * 0x9E3779B97F4A7C15 + index * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & (2**63 - 1)
    return (x ^ (x >> 29)) & (2**31 - 1)
