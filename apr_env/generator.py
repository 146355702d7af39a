"""Seeded, solvable Countdown problems: the APR distribution by default, with knobs.

Default (reference section 1.3): 4 numbers drawn uniformly from 1..99 (repeats allowed),
target drawn uniformly from 10..100, the number set redrawn until the problem is solvable
under APR rules. The target is drawn first and kept, as in the official generator, so the
target distribution stays uniform.

Reproducibility (fixes official flaw 1): every random draw is a counter-based hash of
``(seed, index, attempt, slot)`` (splitmix64), so problem ``i`` of seed ``s`` is the same
whatever the batch size, the starting index or the number of worker processes. Rejection
sampling is vectorised: candidate number sets for many indices are checked at once by
`apr_env.solver.solvable_batch`.

`split_problems` builds train/val/test splits with no (sorted numbers, target) overlap
between or inside splits (fixes official flaw 2).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields

import numpy as np

from apr_env.arithmetic import RULES
from apr_env.errors import ConfigError
from apr_env.problem import Problem
from apr_env.solver import is_solvable, solvable_batch


@dataclass(frozen=True)
class GeneratorConfig:
    """Knobs of the problem distribution. Defaults reproduce the official APR distribution."""

    min_numbers: int = 4
    """Fewest input numbers per problem (2..6)."""
    max_numbers: int = 4
    """Most input numbers per problem (2..6); the count is uniform in [min_numbers, max_numbers]."""
    min_value: int = 1
    """Smallest input number (inclusive, >= 0)."""
    max_value: int = 99
    """Largest input number (inclusive)."""
    min_target: int = 10
    """Smallest target (inclusive, >= 0)."""
    max_target: int = 100
    """Largest target (inclusive)."""
    rules: str = "apr"
    """Arithmetic rules for solvability: 'apr' (integer, non-negative, exact division) or 'rational'."""
    solvable_only: bool = True
    """Redraw the numbers until the problem is solvable (the official behaviour)."""
    max_attempts: int = 10_000
    """Number sets tried per problem before giving up with a ConfigError (a range with no solution)."""

    def __post_init__(self) -> None:
        for name in (
            "min_numbers",
            "max_numbers",
            "min_value",
            "max_value",
            "min_target",
            "max_target",
            "max_attempts",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} must be an int, got {value!r}")
        if not 2 <= self.min_numbers <= 6 or not 2 <= self.max_numbers <= 6:
            raise ConfigError(
                f"min_numbers={self.min_numbers}, max_numbers={self.max_numbers}: the count of numbers must be in 2..6"
            )
        for lo, hi in (
            ("min_numbers", "max_numbers"),
            ("min_value", "max_value"),
            ("min_target", "max_target"),
        ):
            if getattr(self, lo) > getattr(self, hi):
                raise ConfigError(
                    f"{lo}={getattr(self, lo)} is above {hi}={getattr(self, hi)}; accepted: {lo} <= {hi}"
                )
        if self.min_value < 0 or self.min_target < 0:
            raise ConfigError(
                f"min_value={self.min_value}, min_target={self.min_target}: values must be non-negative"
            )
        if self.rules not in RULES:
            raise ConfigError(
                f"rules={self.rules!r} is not a rule set; accepted: {', '.join(map(repr, RULES))}"
            )
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts={self.max_attempts} must be >= 1")

    @classmethod
    def from_kwargs(cls, **config) -> GeneratorConfig:
        """Build from keyword arguments, rejecting unknown names with the list of accepted ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigError(f"unknown generator option(s) {unknown}; accepted: {sorted(known)}")
        return cls(**config)


# ---------------------------------------------------------------------------------------
# Counter-based random draws
# ---------------------------------------------------------------------------------------

_MASK = (1 << 64) - 1
_TARGET_SLOT, _COUNT_SLOT = 15, 14


def _splitmix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrap-around arithmetic is intended)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _draw(seed: int, index: np.ndarray, attempt: np.ndarray, slot: int, lo: int, hi: int) -> np.ndarray:
    """Uniform ints in [lo, hi], a pure function of (seed, index, attempt, slot)."""
    base = _splitmix(np.uint64(seed & _MASK) + _splitmix(index.astype(np.uint64)))
    h = _splitmix(base ^ _splitmix(attempt.astype(np.uint64) * np.uint64(16) + np.uint64(slot)))
    return (lo + (h % np.uint64(hi - lo + 1))).astype(np.int64)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"seed must be an int, got {seed!r}")
    return int(seed) & _MASK


# ---------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------

_ROUND_WIDTH = 8  # candidate sets tried per pending index per vectorised round (about 1/p for p = 12%)


def _first_solvable(nums: np.ndarray, targets: np.ndarray, width: int, rules: str) -> np.ndarray:
    """Solvability one problem at a time (6 numbers, rational rules), stopping at each index's first hit.

    Rows come in groups of `width` candidates per index; the caller keeps only the first
    solvable one, so the candidates after it are left unchecked (marked False) instead of
    paying the slow per-problem check for them. The chosen problems are the same as with a
    full check.
    """
    ok = np.zeros(len(nums), dtype=bool)
    for first in range(0, len(nums), width):
        for k in range(first, first + width):
            if is_solvable(Problem(int(targets[k]), tuple(int(x) for x in nums[k])), rules):
                ok[k] = True
                break
    return ok


def _generate_range(seed: int, start: int, stop: int, cfg: GeneratorConfig) -> list[Problem]:
    index = np.arange(start, stop, dtype=np.int64)
    zeros = np.zeros_like(index)
    targets = _draw(seed, index, zeros, _TARGET_SLOT, cfg.min_target, cfg.max_target)
    counts = _draw(seed, index, zeros, _COUNT_SLOT, cfg.min_numbers, cfg.max_numbers)
    chosen: list[np.ndarray | None] = [None] * len(index)
    pending = np.arange(len(index))
    attempt, width, rounds = 0, (1 if not cfg.solvable_only else _ROUND_WIDTH), 0
    while len(pending) and attempt < cfg.max_attempts:
        width = min(width, cfg.max_attempts - attempt)
        still = []
        for count in np.unique(counts[pending]):
            rows = pending[counts[pending] == count]
            idx = np.repeat(index[rows], width)
            att = np.tile(np.arange(attempt, attempt + width, dtype=np.int64), len(rows))
            nums = np.stack(
                [_draw(seed, idx, att, slot, cfg.min_value, cfg.max_value) for slot in range(int(count))],
                axis=1,
            )
            tgt = np.repeat(targets[rows], width)
            if not cfg.solvable_only:
                ok = np.ones(len(idx), dtype=bool)
            elif cfg.rules == "apr" and count < 6:
                ok = solvable_batch(nums, tgt)
            else:
                ok = _first_solvable(nums, tgt, width, cfg.rules)
            ok = ok.reshape(len(rows), width)
            first = ok.argmax(axis=1)
            found = ok.any(axis=1)
            nums = nums.reshape(len(rows), width, int(count))
            for r, f, hit, cand in zip(rows, first, found, nums):
                if hit:
                    chosen[r] = cand[f]
                else:
                    still.append(r)
        pending = np.array(sorted(still), dtype=np.int64)
        attempt += width
        rounds += 1
        if rounds % 4 == 0:  # a rare-solution configuration: widen so rounds stay few
            width *= 4
    if len(pending):
        i = int(index[pending[0]])
        raise ConfigError(
            f"no solvable problem found for index {i} (target {int(targets[pending[0]])}) within "
            f"max_attempts={cfg.max_attempts} number sets; the ranges min_value..max_value="
            f"{cfg.min_value}..{cfg.max_value} with {int(counts[pending[0]])} numbers rarely or never reach "
            f"targets in min_target..max_target={cfg.min_target}..{cfg.max_target}. Widen the number range, "
            f"narrow the target range, or raise max_attempts."
        )
    return [Problem(int(t), tuple(int(x) for x in c)) for t, c in zip(targets, chosen)]


def _worker(job: tuple) -> list[Problem]:
    seed, start, stop, cfg_dict = job
    return _generate_range(seed, start, stop, GeneratorConfig(**cfg_dict))


def generate_problems(n: int, *, seed: int, start: int = 0, workers: int = 1, **config) -> list[Problem]:
    """Problems ``start .. start+n-1`` of the seeded stream.

    Args:
        n: how many problems.
        seed: any int; with `start` it fixes the output exactly.
        start: index of the first problem (so a long stream can be produced in pieces).
        workers: processes to use; the output does not depend on it.
        **config: fields of `GeneratorConfig` (e.g. ``min_numbers=5, max_numbers=5``).

    Raises:
        ConfigError: a bad field, or a range in which no solvable problem was found.
    """
    cfg = config.pop("config", None) or GeneratorConfig.from_kwargs(**config)
    seed = _check_seed(seed)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"n must be a non-negative int, got {n!r}")
    if not isinstance(start, (int, np.integer)) or start < 0:
        raise ConfigError(f"start must be a non-negative int, got {start!r}")
    block = 2048
    jobs = [(seed, s, min(s + block, start + n), asdict(cfg)) for s in range(start, start + n, block)]
    if workers <= 1 or len(jobs) <= 1:
        return [p for job in jobs for p in _worker(job)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return [p for part in pool.map(_worker, jobs) for p in part]


def _split_seed(seed: int, name: str) -> int:
    # A one-element array, not a numpy scalar: scalar uint64 arithmetic warns on the intended wrap-around.
    mixed = _splitmix(np.array([seed], dtype=np.uint64) ^ np.uint64(zlib.crc32(name.encode())))
    return int(mixed[0])


_MAX_STALLED_BATCHES = 8  # batches of >= 64 draws in a row with no new key: the distribution is used up


def split_problems(
    sizes: Mapping[str, int], *, seed: int, workers: int = 1, **config
) -> dict[str, list[Problem]]:
    """Disjoint splits, e.g. ``split_problems({"train": 10000, "val": 1000, "test": 1000}, seed=0)``.

    No (sorted numbers, target) key appears twice, inside a split or across splits. Splits
    are filled smallest first, each from its own seeded stream, so the val/test sets do not
    change when the train size changes.

    Raises:
        ConfigError: a bad field, or a distribution with fewer distinct problems than asked
            for (detected as `_MAX_STALLED_BATCHES` batches in a row adding nothing new).
    """
    seed = _check_seed(seed)
    used: set = set()
    out: dict[str, list[Problem]] = {}
    for name in sorted(sizes, key=lambda k: (sizes[k], k)):
        want, got, cursor, stalled = sizes[name], [], 0, 0
        sub_seed = _split_seed(seed, name)
        while len(got) < want:
            batch = max(64, int((want - len(got)) * 1.1))
            before = len(got)
            for p in generate_problems(batch, seed=sub_seed, start=cursor, workers=workers, **config):
                if p.key not in used and len(got) < want:
                    used.add(p.key)
                    got.append(p)
            cursor += batch
            stalled = stalled + 1 if len(got) == before else 0
            if stalled >= _MAX_STALLED_BATCHES:
                raise ConfigError(
                    f"split {name!r}: found only {len(got)} of {want} problems distinct from the "
                    f"{len(used) - len(got)} already in other splits; the distribution has too few distinct "
                    f"(sorted numbers, target) keys for sizes={dict(sizes)}. Widen the value or target "
                    f"range, or ask for fewer problems."
                )
        out[name] = got
    return {name: out[name] for name in sizes}
