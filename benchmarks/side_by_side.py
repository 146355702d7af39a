"""Side-by-side speed of the Countdown core: ours vs the official generator vs reasoning-gym.

    .venv/bin/python benchmarks/side_by_side.py            # full sizes (about a minute)
    .venv/bin/python benchmarks/side_by_side.py --quick    # small sizes, a smoke run

In one run, on one process each, it times:

- problem generation, like for like (each problem with one solution, as the official records
  and reasoning-gym's items carry one): `apr_env.generate_problems` + `first_solution_ops`
  (what `apr_env.save_problems` writes) vs a re-implementation of the official
  generator (`benchmarks/baselines/official_generator.py`: target first, rejection sampling
  with an unmemoised DFS, Python `random`) vs reasoning-gym's ``countdown`` dataset set as
  close to the APR distribution as its config allows (`REASONING_GYM_CONFIG`: 4 numbers in
  1..99, targets 10..100; it builds a random expression and keeps it when the value lands in
  the target range, so its problems are solvable under its own rules, which allow negative
  intermediates);
- answer checking: `apr_env.verify` vs reasoning-gym's ``CountdownDataset.score_answer`` on
  the same answers (half correct expressions from `apr_env.solve`, half wrong in five ways),
  plus `verify` on answer paths (no reasoning-gym equivalent);
- worst-case `verify` time on adversarial inputs at the 10,000-character limit.

It prints a table (problems/s, answers/s, ratios against the targets: generation >= 20x the
official generator's ~285 problems/s and >= 30x reasoning-gym; verification >= 20x
reasoning-gym) and writes everything, with the command, versions, commit, date and machine,
to ``benchmarks/results/core_side_by_side.json`` (``..._quick.json`` with ``--quick``).
Throughputs are the best of `repeats` runs (the least disturbed by other load on the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `benchmarks.` and `apr_env` importable
    sys.path.insert(0, str(ROOT))

from apr_env import Problem, generate_problems, solve, verify  # noqa: E402
from apr_env import grammar as g  # noqa: E402
from apr_env.provenance import provenance  # noqa: E402
from apr_env.solver import first_solution_ops  # noqa: E402
from benchmarks.baselines.official_generator import official_generate  # noqa: E402

OFFICIAL_REFERENCE_RATE = 285.0
"""Problems/s of the official generator on this machine, as stated in the project reference."""

TARGETS = {"generate_vs_official": 20.0, "generate_vs_reasoning_gym": 30.0, "verify_vs_reasoning_gym": 20.0}

REASONING_GYM_CONFIG = {
    "min_numbers": 4,
    "max_numbers": 4,
    "min_value": 1,
    "max_value": 99,
    "min_target": 10,
    "max_target": 100,
    "operators": ("+", "-", "*", "/"),
    "shuffle": True,
}
"""reasoning-gym CountdownConfig fields used (its defaults are 4..6 numbers in 1..100, targets 100..999)."""


@dataclass
class SideBySideConfig:
    """Workload sizes; `--quick` divides them for a smoke run."""

    ours_problems: int = 20_000
    """Problems per timed run of `generate_problems`."""
    official_problems: int = 600
    """Problems per timed run of the official generator re-implementation."""
    reasoning_gym_problems: int = 600
    """Problems per timed run of reasoning-gym's countdown dataset."""
    answers: int = 4_000
    """Expression answers (half correct) checked per timed run, by both checkers."""
    paths: int = 2_000
    """Answer paths (half correct) checked per timed run of `verify`."""
    adversarial_calls: int = 50
    """Calls timed per adversarial input."""
    repeats: int = 3
    """Timed runs per workload; the best is reported."""
    seed: int = 0
    """Seed for every workload."""

    @classmethod
    def quick(cls) -> SideBySideConfig:
        return cls(
            ours_problems=2_000,
            official_problems=60,
            reasoning_gym_problems=60,
            answers=400,
            paths=200,
            adversarial_calls=10,
            repeats=2,
        )


# --------------------------------------------------------------------------------------
# Workloads (also used by benchmarks/bench_core.py)
# --------------------------------------------------------------------------------------


def _wrong_expression(problem: Problem, correct: str, kind: int, rng: random.Random) -> str:
    """A wrong answer of one of five kinds, built from a correct expression."""
    numbers = problem.numbers
    if kind == 0:  # an unknown number
        return f"{correct}+{max(numbers) + 1}-{max(numbers) + 1}"
    if kind == 1:  # a number used twice
        return f"({correct})*{numbers[0]}/{numbers[0]}"
    if kind == 2:  # a number left out: the expression of the other numbers
        return "+".join(map(str, numbers[1:]))
    if kind == 3:  # every number once, wrong value
        return "+".join(map(str, numbers)) if sum(numbers) != problem.target else "*".join(map(str, numbers))
    return correct[: rng.randrange(1, len(correct))] + "("  # unparseable


def expression_answers(n: int, seed: int = 0) -> list[tuple[Problem, str, bool]]:
    """`n` (problem, expression, is_correct) triples on default-distribution problems, half correct."""
    rng = random.Random(seed)
    problems = generate_problems((n + 1) // 2, seed=seed)
    out = []
    for i, problem in enumerate(problems):
        correct = rng.choice(solve(problem))
        out.append((problem, correct, True))
        out.append((problem, _wrong_expression(problem, correct, i % 5, rng), False))
    return out[:n]


def path_answers(n: int, seed: int = 0) -> list[tuple[Problem, str, bool]]:
    """`n` (problem, answer path, is_correct) triples: half correct, half with a wrong last result
    (so the whole path is replayed before the error shows)."""
    out = []
    for problem in generate_problems((n + 1) // 2, seed=seed + 1):
        path = g.answer_path(problem.target, problem.numbers, first_solution_ops(problem))
        head, _sep, tail = path.rpartition(f"={problem.target}, Resulting")
        out.append((problem, path, True))
        out.append((problem, f"{head}={problem.target + 1}, Resulting{tail}", False))
    return out[:n]


def adversarial_answers() -> dict[str, str]:
    """Inputs at the 10,000-character limit that push each part of `verify` to its longest run."""
    return {
        "deep-parentheses": "(" * 4990 + "8/4*(6-1)" + ")" * 4990,
        "only-open-parentheses": "(" * 10_000,
        "long-digit-run": "9" * 10_000,
        "long-stated-result": "8/4*(6-1)=" + "9" * 9_990,
        "many-operators": "4" + "*" * 9_999,
        "many-blank-lines": "\n" * 10_000,
        "many-moving-lines": "Moving to Node #0,0,0\n" * 450 + "10,10 equal: Goal Reached",
        "many-state-lines": "Current State: 10:[1, 4, 6, 8], Operations: []\n" * 200,
        "long-node-id": "Moving to Node #" + "0," * 4900 + "0\n10,10 equal: Goal Reached",
        "long-state-list": "Current State: 10:[" + "1, " * 3300 + "1], Operations: []",
        "long-ops-list": "Current State: 10:[1, 4, 6, 8], Operations: [" + "'1+1=2', " * 1100 + "]",
        "huge-number-in-path": "Exploring Operation: " + "1" * 4500 + "+1=2, Resulting Numbers: [2]",
        "huge-goal-line": "1" * 5000 + ",10 equal: Goal Reached",
        "over-the-limit": "(" * 100_000,
    }


ADVERSARIAL_PROBLEM = Problem(10, (1, 4, 6, 8))


# --------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------


def _best_rate(fn, count: int, repeats: int) -> dict:
    """Run `fn(k)` `repeats` times (k = repeat index); items/s of the best and median run."""
    seconds = []
    for k in range(repeats):
        start = time.perf_counter()
        fn(k)
        seconds.append(time.perf_counter() - start)
    return {
        "items": count,
        "best_s": min(seconds),
        "median_s": statistics.median(seconds),
        "per_s": count / min(seconds),
        "per_s_median": count / statistics.median(seconds),
    }


def _reasoning_gym_dataset(n: int, seed: int):
    from reasoning_gym.games.countdown import CountdownConfig, CountdownDataset

    return CountdownDataset(CountdownConfig(**REASONING_GYM_CONFIG, seed=seed, size=n))


def _records(n: int, seed: int) -> list[dict]:
    """Problems in the official record layout, each with its first DFS solution (the official output)."""
    return [p.to_dict(solution=first_solution_ops(p)) for p in generate_problems(n, seed=seed)]


def time_generation(cfg: SideBySideConfig) -> dict:
    ours = _best_rate(lambda k: _records(cfg.ours_problems, cfg.seed + k), cfg.ours_problems, cfg.repeats)
    ours_bare = _best_rate(
        lambda k: generate_problems(cfg.ours_problems, seed=cfg.seed + k), cfg.ours_problems, cfg.repeats
    )
    official = _best_rate(
        lambda k: official_generate(cfg.official_problems, seed=cfg.seed + k),
        cfg.official_problems,
        cfg.repeats,
    )
    n = cfg.reasoning_gym_problems
    rg = _best_rate(lambda k: [_reasoning_gym_dataset(n, cfg.seed + k)[i] for i in range(n)], n, cfg.repeats)
    # What reasoning-gym's problems are, judged by APR rules (they may need negative intermediates).
    from apr_env import is_solvable

    items = [_reasoning_gym_dataset(n, cfg.seed)[i] for i in range(n)]
    problems = [Problem(e["metadata"]["target"], tuple(e["metadata"]["numbers"])) for e in items]
    rg["apr_solvable_fraction"] = sum(map(is_solvable, problems)) / n
    rg["own_answer_accepted_by_apr_verify"] = (
        sum(verify(p, e["answer"]).correct for p, e in zip(problems, items)) / n
    )
    rg["config"] = {k: list(v) if isinstance(v, tuple) else v for k, v in REASONING_GYM_CONFIG.items()}
    return {
        "ours": ours,
        "ours_without_solutions": ours_bare,
        "official_reimplementation": official,
        "reasoning_gym": rg,
    }


def time_verification(cfg: SideBySideConfig) -> dict:
    from reasoning_gym.games.countdown import CountdownConfig, CountdownDataset

    answers = expression_answers(cfg.answers, cfg.seed)
    entries = [{"metadata": {"numbers": list(p.numbers), "target": p.target}} for p, _, _ in answers]
    scorer = CountdownDataset(CountdownConfig(**REASONING_GYM_CONFIG, seed=cfg.seed, size=1))

    def ours(_k):
        return [verify(p, a) for p, a, _ in answers]

    def rg(_k):
        return [scorer.score_answer(a, e) for (_, a, _), e in zip(answers, entries)]

    ours_rate = _best_rate(ours, len(answers), cfg.repeats)
    rg_rate = _best_rate(rg, len(answers), cfg.repeats)
    our_verdicts = [v.correct for v in ours(0)]
    rg_verdicts = [s == 1.0 for s in rg(0)]
    expected = [c for _, _, c in answers]
    ours_rate["agrees_with_expected"] = sum(a == b for a, b in zip(our_verdicts, expected)) / len(answers)
    rg_rate["agrees_with_expected"] = sum(a == b for a, b in zip(rg_verdicts, expected)) / len(answers)

    paths = path_answers(cfg.paths, cfg.seed)
    path_rate = _best_rate(lambda _k: [verify(p, a) for p, a, _ in paths], len(paths), cfg.repeats)
    path_rate["agrees_with_expected"] = sum(verify(p, a).correct == c for p, a, c in paths) / len(paths)
    return {"ours_expression": ours_rate, "reasoning_gym_expression": rg_rate, "ours_path": path_rate}


def time_adversarial(cfg: SideBySideConfig) -> dict:
    out = {}
    for name, text in adversarial_answers().items():
        seconds = []
        for _ in range(cfg.adversarial_calls):
            start = time.perf_counter()
            verdict = verify(ADVERSARIAL_PROBLEM, text)
            seconds.append(time.perf_counter() - start)
        out[name] = {
            "chars": len(text),
            "code": verdict.code,
            "median_ms": statistics.median(seconds) * 1e3,
            "max_ms": max(seconds) * 1e3,
        }
    return out


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def _environment(argv: list[str]) -> dict:
    return {
        "command": " ".join([".venv/bin/python", "benchmarks/side_by_side.py", *argv]),
        **provenance(("apr-env", "numpy", "reasoning-gym", "sympy")),
        "load_average_1m_5m_15m": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "note": "single process per workload; other engineers share this machine's CPUs, so timings are noisy",
    }


def run(cfg: SideBySideConfig, argv: list[str] | None = None) -> dict:
    """Time everything and return the results as data (no printing, no file)."""
    generation = time_generation(cfg)
    verification = time_verification(cfg)
    adversarial = time_adversarial(cfg)
    ours_gen = generation["ours"]["per_s"]
    ratios = {
        "generate_vs_official_reference_285": ours_gen / OFFICIAL_REFERENCE_RATE,
        "generate_vs_official_reimplementation": ours_gen / generation["official_reimplementation"]["per_s"],
        "generate_vs_reasoning_gym": ours_gen / generation["reasoning_gym"]["per_s"],
        "verify_vs_reasoning_gym": verification["ours_expression"]["per_s"]
        / verification["reasoning_gym_expression"]["per_s"],
    }
    checks = {
        "generate_vs_official": min(
            ratios["generate_vs_official_reference_285"], ratios["generate_vs_official_reimplementation"]
        )
        >= TARGETS["generate_vs_official"],
        "generate_vs_reasoning_gym": ratios["generate_vs_reasoning_gym"]
        >= TARGETS["generate_vs_reasoning_gym"],
        "verify_vs_reasoning_gym": ratios["verify_vs_reasoning_gym"] >= TARGETS["verify_vs_reasoning_gym"],
        "verify_worst_case_median_under_10_ms": max(a["median_ms"] for a in adversarial.values()) < 10.0,
    }
    return {
        "config": asdict(cfg),
        "generation": generation,
        "verification": verification,
        "adversarial_verify": adversarial,
        "ratios": ratios,
        "targets": TARGETS,
        "official_reference_rate": OFFICIAL_REFERENCE_RATE,
        "meets_targets": checks,
        "environment": _environment(argv or []),
    }


def format_table(results: dict) -> str:
    gen, ver, ratios = results["generation"], results["verification"], results["ratios"]
    rows = [
        ("generate + solution: apr_env", gen["ours"]["per_s"], "problems/s"),
        ("generate without solutions: apr_env", gen["ours_without_solutions"]["per_s"], "problems/s"),
        ("generate: official (re-implementation)", gen["official_reimplementation"]["per_s"], "problems/s"),
        ("generate: official (reference figure)", results["official_reference_rate"], "problems/s"),
        ("generate: reasoning-gym countdown", gen["reasoning_gym"]["per_s"], "problems/s"),
        ("verify expression: apr_env.verify", ver["ours_expression"]["per_s"], "answers/s"),
        (
            "verify expression: reasoning-gym score_answer",
            ver["reasoning_gym_expression"]["per_s"],
            "answers/s",
        ),
        ("verify answer path: apr_env.verify", ver["ours_path"]["per_s"], "answers/s"),
    ]
    lines = [f"{'workload':48s} {'rate':>12s}  unit", "-" * 72]
    lines += [f"{name:48s} {rate:12,.0f}  {unit}" for name, rate, unit in rows]
    lines += ["", f"{'ratio':48s} {'measured':>12s}  target", "-" * 72]
    for key, target in (
        ("generate_vs_official_reference_285", TARGETS["generate_vs_official"]),
        ("generate_vs_official_reimplementation", TARGETS["generate_vs_official"]),
        ("generate_vs_reasoning_gym", TARGETS["generate_vs_reasoning_gym"]),
        ("verify_vs_reasoning_gym", TARGETS["verify_vs_reasoning_gym"]),
    ):
        mark = "ok" if ratios[key] >= target else "MISSED"
        lines.append(f"{key:48s} {ratios[key]:11.1f}x  >= {target:.0f}x {mark}")
    worst = max(results["adversarial_verify"].items(), key=lambda kv: kv[1]["median_ms"])
    lines += [
        "",
        f"verify worst case (median of calls): {worst[1]['median_ms']:.2f} ms on {worst[0]!r} "
        f"(limit 10 ms); largest single call {max(a['max_ms'] for a in results['adversarial_verify'].values()):.2f} ms",
        f"reasoning-gym problems solvable under APR rules: {gen['reasoning_gym']['apr_solvable_fraction']:.1%}; "
        f"its own answers accepted by apr_env.verify: {gen['reasoning_gym']['own_answer_accepted_by_apr_verify']:.1%}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output path")
    args = parser.parse_args(argv)
    cfg = SideBySideConfig.quick() if args.quick else SideBySideConfig()
    out = args.out or ROOT / "benchmarks" / "results" / (
        "core_side_by_side_quick.json" if args.quick else "core_side_by_side.json"
    )
    results = run(cfg, argv)
    print(format_table(results))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out}")
    return results


if __name__ == "__main__":
    main()
