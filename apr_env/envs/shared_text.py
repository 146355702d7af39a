"""`ContextText`: the space of a thread's context, with shared memory that works in async vector envs.

``gymnasium.make_vec(..., vectorization_mode="async")`` builds an `AsyncVectorEnv` with
``shared_memory=True``, which reads its observation buffer once, at construction
(`gymnasium.vector.utils.read_from_shared_memory`): arrays come back as views of the shared
buffer and stay current, but a `Text` space comes back as a tuple of strings decoded from the
still-empty buffer, so every later observation reads as the space's first character repeated
(gymnasium 1.4; Farama-Foundation/Gymnasium#1164 describes the one-time read).

`ContextText` is a `Text` space whose shared memory holds ASCII bytes and a length per
environment, and whose read returns `SharedTexts`, a live view that decodes the current
strings when indexed or copied. The async env deep-copies observations by default
(``copy=True``), which turns the view into a plain tuple of strings, as `SyncVectorEnv` gives.
Gymnasium's ``create/read/write_to_shared_memory`` are `functools.singledispatch` functions;
the three registrations below add `ContextText` to them and change nothing for other spaces.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Sequence
from types import ModuleType

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import create_shared_memory, read_from_shared_memory, write_to_shared_memory


class ContextText(spaces.Text):
    """A `Text` space over ASCII characters whose vector-env shared memory stays current."""


class SharedTexts(Sequence):
    """The strings of `n` environments in shared memory, decoded on access (a tuple when deep-copied)."""

    def __init__(self, max_length: int, lengths, data, n: int):
        self._max_length, self._n = max_length, n
        self._lengths = np.frombuffer(lengths.get_obj(), dtype=np.int64)
        self._data = np.frombuffer(data.get_obj(), dtype=np.uint8)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(self._n)))
        if not -self._n <= index < self._n:
            raise IndexError(f"environment index {index} out of range for {self._n} environments")
        index %= self._n
        start = index * self._max_length
        return self._data[start : start + int(self._lengths[index])].tobytes().decode("ascii")

    def __deepcopy__(self, memo) -> tuple[str, ...]:
        return tuple(self)

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __repr__(self) -> str:
        return f"SharedTexts({tuple(self)!r})"


@create_shared_memory.register(ContextText)
def _create(space: ContextText, n: int = 1, ctx: ModuleType = mp):
    return ctx.Array("q", n), ctx.Array("B", n * space.max_length)


@read_from_shared_memory.register(ContextText)
def _read(space: ContextText, shared_memory, n: int = 1) -> SharedTexts:
    lengths, data = shared_memory
    return SharedTexts(space.max_length, lengths, data, n)


@write_to_shared_memory.register(ContextText)
def _write(space: ContextText, index: int, value: str, shared_memory) -> None:
    lengths, data = shared_memory
    raw = value.encode("ascii")
    if len(raw) > space.max_length:
        raise ValueError(
            f"an observation of {len(raw)} characters does not fit the space's max_length={space.max_length}"
        )
    start = index * space.max_length
    np.frombuffer(data.get_obj(), dtype=np.uint8)[start : start + len(raw)] = np.frombuffer(
        raw, dtype=np.uint8
    )
    np.frombuffer(lengths.get_obj(), dtype=np.int64)[index] = len(raw)
