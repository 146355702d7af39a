"""Per-thread random streams for the symbolic solvers: reproducible per problem, not per batch.

The official solvers draw every decision (beam sizes, shuffles, "promising" coins) from one
global `random`, so a trace depends on everything generated before it in the same process,
and forked workers reseed themselves from OS entropy (reference flaw 1). Here each *thread*
of a search owns its own stream, named by a string key:

- root thread: ``"{kind}|{seed}|{target}|{n1,n2,...}"`` (`problem_key`), numbers in the
  given order because the trace prints them in that order;
- child thread: ``"{parent key}/{node id}"`` (`child_key`): a child's trace depends only on
  the root key and its own start node, not on whether its siblings ran before it, in which
  process, or in what batch;
- per-problem settings (beam sizes drawn when not given): the hash of ``"{root key}|beams"``
  (`settings_bits`), apart from the root's search stream, so fixing a beam size by hand
  gives the same trace as drawing that value.

The stream is `ThreadRandom`, a `random.Random` subclass whose core generator is BLAKE2b in
counter mode over the key (block i = ``blake2b(key + "#" + i)``, 512 bits), overriding
``seed``, ``getrandbits``, ``random``, ``getstate`` and ``setstate`` the way the `random`
module documents for custom generators, so every `random.Random` method works on top. Why
not the Mersenne Twister: seeding one costs 4-6 us, and an APR problem runs ~7.5 threads;
that was the largest per-thread cost of trace generation. A BLAKE2b stream costs one hash
per 512 bits, is the same in every process, platform and Python version (no salted
``hash()``), and its bits are as good as a cryptographic hash makes them.

The solvers only call ``rng.random()`` and ``rng.shuffle(list)``, so any object with those two
methods works in place of a `ThreadRandom` (a plain `random.Random` or a
``numpy.random.Generator`` does; tests use a scripted one).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from itertools import permutations
from math import factorial
from operator import itemgetter

_BLOCK_BITS = 512
_SUFFIXES = tuple(b"#%d" % i for i in range(16))
"""``b"#{i}"``, appended to the key for block i (most threads need one or two blocks)."""
_blake2b = hashlib.blake2b
_TABLE_MAX = 6
"""Lists up to this length are shuffled through a table of all their permutations."""
_PERMS = {n: [itemgetter(*p) for p in permutations(range(n))] for n in range(2, _TABLE_MAX + 1)}
_RADIX_MAX = 20
"""Lists up to this length draw one index below n! (n! < 2**62) and decode it in mixed radix."""


def _shuffle_spec(n: int) -> tuple:
    """How `ThreadRandom.shuffle` shuffles a list of length n (see `_SHUFFLE`)."""
    count = factorial(n)
    bits = (count - 1).bit_length()
    return count, bits, (1 << bits) - 1, _PERMS.get(n)


_SHUFFLE = (None, None, *(_shuffle_spec(n) for n in range(2, _RADIX_MAX + 1)))
"""Per list length n <= _RADIX_MAX: (n!, bits of an index below n!, their mask, the permutation
table or None); None for n < 2 (nothing to shuffle)."""


class ThreadRandom(random.Random):
    """A `random.Random` whose bits come from BLAKE2b in counter mode over a string key.

    Args:
        key: the thread's key (`problem_key`, `child_key`); equal keys give equal streams.

    ``shuffle`` is exactly uniform and cheaper than the inherited one for the short lists
    the solvers shuffle: a list of n <= 20 items takes ONE index below n! by rejection
    sampling on ``getrandbits`` (so every permutation is equally likely) and applies it,
    from a table for n <= 6, by decoding it into Fisher-Yates swaps above.
    """

    def __init__(self, key: str):
        if type(key) is str:  # `seed`, inlined: one stream per search thread
            self._key = key.encode()
            self._block = 0
            self._pool = 0
            self._left = 0
            self.gauss_next = None
        else:
            self.seed(key)

    def seed(self, a=None, version=2) -> None:
        """Restart the stream of key `a` (a str; bytes accepted)."""
        if not isinstance(a, (str, bytes)):
            raise TypeError(f"ThreadRandom is seeded with a str key, got {type(a).__name__}")
        self._key = a.encode() if isinstance(a, str) else bytes(a)
        self._block = 0
        self._pool = 0
        self._left = 0
        self.gauss_next = None

    def _refill(self) -> None:
        block = self._block
        suffix = _SUFFIXES[block] if block < len(_SUFFIXES) else b"#%d" % block
        digest = _blake2b(self._key + suffix, digest_size=64).digest()
        self._block += 1
        self._pool |= int.from_bytes(digest, "little") << self._left
        self._left += _BLOCK_BITS

    def getrandbits(self, k: int) -> int:
        """``k`` uniformly random bits as a non-negative int."""
        if k > self._left:
            if k < 0:
                raise ValueError(f"number of bits must be non-negative, got {k}")
            while k > self._left:
                self._refill()
        r = self._pool & ((1 << k) - 1)
        self._pool >>= k
        self._left -= k
        return r

    def random(self) -> float:
        """A float in [0, 1) with 53 random bits."""
        if self._left < 53:
            self._refill()
        r = self._pool & 0x1FFFFFFFFFFFFF
        self._pool >>= 53
        self._left -= 53
        return r * 1.1102230246251565e-16  # 2**-53

    def getstate(self) -> tuple:
        return (self._key, self._block, self._pool, self._left, self.gauss_next)

    def setstate(self, state: tuple) -> None:
        self._key, self._block, self._pool, self._left, self.gauss_next = state

    def shuffle(self, x: list) -> None:
        """Shuffle `x` in place, every order equally likely."""
        n = len(x)
        if n > _RADIX_MAX:
            super().shuffle(x)
            return
        spec = _SHUFFLE[n]
        if spec is None:
            return
        count, bits, mask, perms = spec
        pool = self._pool
        left = self._left
        while True:  # getrandbits(bits) until below n!, inlined: this is the solvers' hottest call
            if bits > left:
                self._pool = pool
                self._left = left
                self._refill()
                pool = self._pool
                left = self._left
            r = pool & mask
            pool >>= bits
            left -= bits
            if r < count:
                break
        self._pool = pool
        self._left = left
        if perms is not None:
            x[:] = perms[r](x)
            return
        for i in range(n - 1, 0, -1):
            r, j = divmod(r, i + 1)
            x[i], x[j] = x[j], x[i]


def stable_seed(key: str) -> int:
    """A 64-bit int from `key` that is the same in every process (blake2b, not ``hash()``)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def problem_key(kind: str, seed: int, target: int, numbers: Sequence[int]) -> str:
    """The root thread's key, e.g. ``"apr|0|83|84,64,21,23"``."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    return f"{kind}|{seed}|{target}|{','.join(map(str, numbers))}"


def child_key(parent_key: str, node_id: str) -> str:
    """The key of the child thread started at `node_id` by the thread with `parent_key`."""
    return f"{parent_key}/{node_id}"


def settings_key(root_key: str) -> str:
    """The key whose hash draws a problem's beam sizes."""
    return f"{root_key}|beams"


def settings_bits(key: str) -> int:
    """64 random bits for per-problem settings (beam sizes), straight from the key's hash.

    Drawing ``1 + bits % 10`` is uniform up to a bias below 2**-59; it spares a generator.
    """
    return stable_seed(settings_key(key))


def make_rng(key: str) -> ThreadRandom:
    """The stream of the thread with `key`."""
    return ThreadRandom(key)
