"""KV storage for the in-process backend: a slot cache for running sequences, an LRU of idle ones.

`SlotKVCache` is a `transformers.Cache` whose per-layer buffers have shape
``[num_slots, kv_heads, capacity, head_dim]``. Running sequences occupy slots ``0..n-1``
(the backend keeps them contiguous), so a decode step writes one key/value per row in place
and hands attention a *view* ``[:n, :, :kv_len]``: no concatenation, no copy. Before each
forward the backend states what the forward writes with `plan_decode` or `plan_prefill`;
`update` (called by every attention layer) follows that plan. Positions past a row's length
hold stale but finite values; the backend's attention mask hides them. `capacity` starts
small and doubles (one copy of the buffers) when a plan needs more, up to `max_len`, so a
model with a 32k-token context does not reserve 32k positions per slot up front.

`RetainedKV` is a finished sequence's KV copied out of its slot (exact length, one tensor per
layer), kept so a later request can continue it (``cache_key``) or fork from it
(``fork_from``) without prefilling the shared prefix again; `RetainedStore` keeps them in
least-recently-used order under a count and a memory bound. Idle sequences therefore never
hold a decode slot.

What this module leaves to the backend: which slot a sequence gets, masks and positions,
when to retain, and the bookkeeping of token lists.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from dataclasses import dataclass

import torch
from transformers.cache_utils import Cache


def cache_kwargs(model, cache: Cache) -> dict[str, Cache]:
    """The keyword argument that hands `cache` to ``model.forward``: ``{"cache": cache}`` or the older name.

    transformers 5.2x renamed the forward's ``past_key_values`` to ``cache`` (the old name warns
    and is removed in 5.40); earlier releases only know ``past_key_values``. Reading the
    signature once keeps both working without a version table.
    """
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    return {name: cache}


@dataclass
class _Plan:
    """What the next forward writes: rows ``lo..hi-1`` of the buffers, keys up to `kv_len` returned."""

    lo: int
    hi: int
    kv_len: int
    positions: torch.Tensor | None = None
    """Decode: LongTensor [hi - lo], the position each row's single new token is written at."""
    starts: tuple[int, ...] = ()
    """Prefill: first position written for each row."""
    lengths: tuple[int, ...] = ()
    """Prefill: real (unpadded) new tokens of each row."""


class SlotKVCache(Cache):
    """Per-slot key/value buffers, passed as the model's cache (see `cache_kwargs`).

    Buffers are allocated on the first `update` of each layer, with that layer's head count,
    head size and dtype, so any model whose attention layers call the cache's ``update``
    (Llama, Qwen2/3, Mistral, ...) works without knowing its head layout in advance.

    Args:
        num_slots: sequences that can run at once (the decode batch bound).
        max_len: most positions per slot (the backend's context length).
        device: where the buffers live (the model's device).
        initial_len: positions allocated per slot at first (grown by doubling up to `max_len`).
    """

    def __init__(
        self, num_slots: int, max_len: int, device: torch.device | str = "cpu", initial_len: int = 256
    ):
        super().__init__(layers=[])
        if num_slots < 1 or max_len < 1 or initial_len < 1:
            raise ValueError(
                f"num_slots, max_len and initial_len must be >= 1, got {num_slots}, {max_len}, {initial_len}"
            )
        self.num_slots = num_slots
        self.max_len = max_len
        self.capacity = min(initial_len, max_len)
        """Positions currently allocated per slot."""
        self.device = torch.device(device)
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self._plan: _Plan | None = None
        self._rows = torch.arange(num_slots, device=self.device)
        self._flat_index: dict[int, torch.Tensor] = {}  # decode write indexes of this plan, by head count

    # ---- plans: called by the backend right before a forward -------------------------------------------

    def plan_decode(self, positions: torch.Tensor, kv_len: int | None = None) -> None:
        """Next forward: rows ``0..n-1`` each write one token at ``positions[row]`` (LongTensor [n]).

        `kv_len` (``max(positions) + 1``) saves reading the maximum back from the device when the
        caller knows it."""
        if kv_len is None:
            kv_len = int(positions.max()) + 1
        self.reserve(kv_len)
        self._plan = _Plan(lo=0, hi=int(positions.shape[0]), kv_len=kv_len, positions=positions)
        self._flat_index.clear()

    def plan_prefill(self, first_slot: int, starts: list[int], lengths: list[int]) -> None:
        """Next forward: row ``i`` (slot ``first_slot + i``) writes ``lengths[i]`` tokens from ``starts[i]``."""
        end = max(s + n for s, n in zip(starts, lengths))
        if first_slot + len(starts) > self.num_slots:
            raise ValueError(
                f"prefill of slots {first_slot}..{first_slot + len(starts) - 1} does not fit {self.num_slots} slots"
            )
        self.reserve(end)
        self._plan = _Plan(
            first_slot, first_slot + len(starts), end, starts=tuple(starts), lengths=tuple(lengths)
        )

    def reserve(self, n_positions: int) -> None:
        """Make every slot hold at least `n_positions` positions (doubling, capped at `max_len`)."""
        if n_positions <= self.capacity:
            return
        if n_positions > self.max_len:
            raise ValueError(
                f"{n_positions} positions requested, the cache holds at most max_len={self.max_len}"
            )
        capacity = min(self.max_len, max(n_positions, 2 * self.capacity))
        for buffers in (self.keys, self.values):
            for layer, old in enumerate(buffers):
                new = old.new_zeros((*old.shape[:2], capacity, old.shape[3]))
                new[:, :, : self.capacity] = old
                buffers[layer] = new
        self.capacity = capacity

    # ---- the transformers Cache interface ---------------------------------------------------------------

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write this forward's keys/values ([rows, kv_heads, q_len, head_dim]) and return the slot views."""
        plan = self._plan
        if plan is None:
            raise RuntimeError(
                "SlotKVCache.update called without a plan_decode/plan_prefill before the forward"
            )
        if layer_idx == len(self.keys):
            self.keys.append(self._buffer(key_states))
            self.values.append(self._buffer(value_states))
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        if plan.positions is not None:
            # Row r, head h, position p is row ((r * heads + h) * capacity + p) of the buffer seen as
            # [slots * heads * capacity, head_dim]: one index_copy_ per buffer (faster than index_put_).
            heads = keys.shape[1]
            flat = self._flat_index.get(heads)
            if flat is None:
                rows = (
                    self._rows[plan.lo : plan.hi, None] * heads
                    + torch.arange(heads, device=self.device)[None]
                )
                flat = self._flat_index[heads] = (rows * self.capacity + plan.positions[:, None]).view(-1)
            keys.view(-1, keys.shape[3]).index_copy_(0, flat, key_states.reshape(-1, keys.shape[3]))
            values.view(-1, values.shape[3]).index_copy_(0, flat, value_states.reshape(-1, values.shape[3]))
        else:
            for i, (start, n) in enumerate(zip(plan.starts, plan.lengths)):
                keys[plan.lo + i, :, start : start + n] = key_states[i, :, :n]
                values[plan.lo + i, :, start : start + n] = value_states[i, :, :n]
        return keys[plan.lo : plan.hi, :, : plan.kv_len], values[plan.lo : plan.hi, :, : plan.kv_len]

    def _buffer(self, states: torch.Tensor) -> torch.Tensor:
        """Zeroed [num_slots, heads, capacity, head_dim] buffer matching `states` [rows, heads, q, head_dim]."""
        shape = (self.num_slots, states.shape[1], self.capacity, states.shape[3])
        return torch.zeros(shape, dtype=states.dtype, device=self.device)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Keys visible to the current forward (the longest row); rows differ, the mask says which are real."""
        return 0 if self._plan is None else self._plan.kv_len

    def get_max_length(self) -> int:
        return self.max_len

    # ---- slot management ---------------------------------------------------------------------------------

    def copy_slot(self, src: int, dst: int, n_tokens: int) -> None:
        """Copy the first `n_tokens` positions of slot `src` into slot `dst` (all layers)."""
        if src != dst and n_tokens > 0:
            for keys, values in zip(self.keys, self.values):
                keys[dst, :, :n_tokens] = keys[src, :, :n_tokens]
                values[dst, :, :n_tokens] = values[src, :, :n_tokens]

    def export(self, slot: int, n_tokens: int, tokens: list[int]) -> RetainedKV:
        """A copy of the first `n_tokens` positions of `slot`, as the KV of ``tokens[:n_tokens]``."""
        keys = [k[slot, :, :n_tokens].clone() for k in self.keys]
        values = [v[slot, :, :n_tokens].clone() for v in self.values]
        return RetainedKV(tokens=list(tokens[:n_tokens]), keys=keys, values=values)

    def load(self, slot: int, retained: RetainedKV, n_tokens: int) -> None:
        """Copy the first `n_tokens` positions of `retained` into `slot`."""
        if n_tokens > 0:
            for keys, values, k, v in zip(self.keys, self.values, retained.keys, retained.values):
                keys[slot, :, :n_tokens] = k[:, :n_tokens]
                values[slot, :, :n_tokens] = v[:, :n_tokens]


@dataclass
class RetainedKV:
    """The KV of an idle sequence: ``keys[layer]`` and ``values[layer]`` are [kv_heads, len(tokens), head_dim]."""

    tokens: list[int]
    keys: list[torch.Tensor]
    values: list[torch.Tensor]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class RetainedStore:
    """Idle sequences' KV by cache key, least recently used evicted first.

    Args:
        max_sequences: at most this many retained sequences.
        max_bytes: at most this much KV memory in total (a sequence bigger than this alone
            is not retained).
    """

    def __init__(self, max_sequences: int, max_bytes: int):
        self.max_sequences = max_sequences
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, RetainedKV] = OrderedDict()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def put(self, key: str, retained: RetainedKV) -> None:
        """Retain `retained` under `key` (replacing an older entry), then evict down to the bounds."""
        self.pop(key)
        if self.max_sequences < 1 or retained.nbytes > self.max_bytes:
            return
        self._items[key] = retained
        self.nbytes += retained.nbytes
        while len(self._items) > self.max_sequences or self.nbytes > self.max_bytes:
            _, evicted = self._items.popitem(last=False)
            self.nbytes -= evicted.nbytes

    def get(self, key: str) -> RetainedKV | None:
        """The entry for `key` (marked most recently used), or None."""
        retained = self._items.get(key)
        if retained is not None:
            self._items.move_to_end(key)
        return retained

    def pop(self, key: str) -> RetainedKV | None:
        """Remove and return the entry for `key`, or None."""
        retained = self._items.pop(key, None)
        if retained is not None:
            self.nbytes -= retained.nbytes
        return retained

    def clear(self) -> None:
        self._items.clear()
        self.nbytes = 0
