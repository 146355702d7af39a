"""Mutation testing of the core rules: mutmut per module, then a score table per module.

    .venv/bin/python benchmarks/mutation.py                  # fresh run of every module (`make mutation`)
    .venv/bin/python benchmarks/mutation.py --modules limits rewards
    .venv/bin/python benchmarks/mutation.py --report-only    # re-read mutants/ without running anything

mutmut 3 (configured in ``pyproject.toml`` ``[tool.mutmut]``: the five core modules and their
test files) copies the project into ``mutants/``, changes one operator, constant or argument at a
time, and runs the tests that reach the changed function; a mutant that no test notices
"survives". This script runs mutmut once per module (``mutmut run "apr_env.<module>.*"``, at
most `--jobs` test processes: the machine is shared), starting from an empty ``mutants/`` so
that no stale copy of an unchanged module is tested, and then prints, per module: mutants,
killed (a test failed or timed out), equivalent, survived, the score
``killed / (mutants - equivalent)`` and the raw score ``killed / mutants``.

A mutant is *equivalent* when no input can tell it from the original (a speed shortcut made
stricter, a branch that cannot be reached, a default that every caller overrides).
`benchmarks/mutation_equivalents.py` lists them by module, function and the exact changed
lines (and, where a function holds the same line twice, the line above), with the reason; a
survivor that is not listed counts against the score. Mutant numbers
change whenever a function is edited, so they are matched by their diff, not their number.

With `--write`, the table, the remaining survivors (with their diffs) and the equivalent
mutants found (with the reasons) are written to ``benchmarks/results/mutation.json`` with the
command, commit, date and machine (`apr_env.provenance`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: mutmut brings `toml` there
    import toml as tomllib

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from apr_env.provenance import provenance  # noqa: E402
from benchmarks.mutation_equivalents import EQUIVALENT  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "mutation.json"
KILLED = ("killed", "timeout")  # a mutant that makes a test fail or hang is caught either way


def configured_modules() -> dict[str, str]:
    """Module name -> source path, from ``[tool.mutmut] only_mutate`` (e.g. 'verifier' -> 'apr_env/verifier.py')."""
    return {Path(path).stem: path for path in mutmut_config()["only_mutate"]}


def mutmut_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]


def run_mutmut(modules: list[str], jobs: int) -> dict[str, float]:
    """Run mutmut per module from an empty ``mutants/``; returns the wall seconds of each run."""
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    seconds = {}
    for module in modules:
        log = ROOT / "mutants" / f"mutmut-{module}.log"
        print(f"mutmut run apr_env.{module}.* (log: {log.relative_to(ROOT)})", flush=True)
        start = time.perf_counter()
        # the log is written after the run: mutmut creates mutants/ itself
        proc = subprocess.run(
            [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), f"apr_env.{module}.*"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        seconds[module] = round(time.perf_counter() - start, 1)
        log.write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise SystemExit(f"mutmut failed on {module} (exit {proc.returncode}); see {log}")
    return seconds


def _changed_lines(diff: str) -> tuple[str, str, str]:
    """The removed lines, the added lines (each stripped, joined by newlines) and the unchanged line
    just above them (to tell apart identical lines of one function) of a mutant's unified diff."""
    body = [line for line in diff.split("\n")[2:] if not line.startswith("@@")]  # after the header
    removed = "\n".join(line[1:].strip() for line in body if line.startswith("-"))
    added = "\n".join(line[1:].strip() for line in body if line.startswith("+"))
    first = next(i for i, line in enumerate(body) if line[:1] in "-+")
    above = body[first - 1][1:].strip() if first else ""
    return removed, added, above


def _function(mutant: str) -> str:
    """Readable function name of a mutant key: 'apr_env.episode.xǁEpisodeǁ_append__mutmut_3' -> 'Episode._append'."""
    mangled = mutant.rpartition(".")[2].partition("__mutmut_")[0]
    if mangled.startswith("xǁ"):
        _, cls, name = mangled.split("ǁ")
        return f"{cls}.{name}"
    return mangled[2:]


def _matches(entry: dict, function: str, removed: str, added: str, above: str) -> bool:
    """Does an equivalent-mutant entry describe this change? ('after', when given, is the line above it.)"""
    if (entry["function"], entry["removed"], entry["added"]) != (function, removed, added):
        return False
    return entry.get("after") is None or entry["after"] == above


def module_results(module: str, path: str) -> dict:
    """Counts, equivalent mutants and survivors of one module, read from ``mutants/<path>.meta``."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code

    meta = json.loads((ROOT / "mutants" / f"{path}.meta").read_text())
    known = [e for e in EQUIVALENT if e["module"] == module]
    counts = {"mutants": 0, "killed": 0, "equivalent": 0, "survived": 0, "not_run": 0}
    equivalent, survivors = [], []
    for mutant, exit_code in sorted(meta["exit_code_by_key"].items()):
        status = status_by_exit_code[exit_code]
        counts["mutants"] += 1
        if status in KILLED:
            counts["killed"] += 1
            continue
        if status == "not checked":  # mutmut was stopped before it reached this mutant
            counts["not_run"] += 1
            continue
        diff = get_diff_for_mutant(mutant, path=path)
        removed, added, above = _changed_lines(diff)
        function = _function(mutant)
        entry = {"mutant": mutant, "function": function, "removed": removed, "added": added}
        match = next((e for e in known if _matches(e, function, removed, added, above)), None)
        if match is not None:
            counts["equivalent"] += 1
            equivalent.append({**entry, "why": match["why"]})
        else:  # survived, no test reached it, or a crash mutmut could not classify: all count against
            counts["survived"] += 1
            survivors.append({**entry, "status": status})
    scored = counts["mutants"] - counts["equivalent"] - counts["not_run"]
    counts["score"] = round(counts["killed"] / scored, 4) if scored else None
    run = counts["mutants"] - counts["not_run"]
    counts["raw_score"] = (
        round(counts["killed"] / run, 4) if run else None
    )  # equivalents counted as survivors
    return {**counts, "equivalent_mutants": equivalent, "survivors": survivors}


def print_table(results: dict[str, dict], seconds: dict[str, float]) -> None:
    header = ("module", "mutants", "killed", "equivalent", "survived", "not run", "score", "raw", "seconds")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for module, r in results.items():
        score, raw = ("-" if x is None else f"{100 * x:.1f}%" for x in (r["score"], r["raw_score"]))
        row = (module, r["mutants"], r["killed"], r["equivalent"], r["survived"], r["not_run"], score, raw)
        print(" | ".join(map(str, (*row, seconds.get(module, "-")))))
    for r in results.values():
        for s in r["survivors"]:
            print(f"\nsurvivor {s['mutant']} ({s['status']}):\n  - {s['removed']}\n  + {s['added']}")


def main(argv: list[str] | None = None) -> dict:
    modules = configured_modules()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", nargs="+", choices=list(modules), default=list(modules))
    parser.add_argument("--jobs", type=int, default=2, help="test processes mutmut may run at once")
    parser.add_argument("--report-only", action="store_true", help="read mutants/ as it is, run nothing")
    parser.add_argument("--write", type=Path, nargs="?", const=OUT, default=None, help=f"default {OUT}")
    args = parser.parse_args(argv)
    seconds = {} if args.report_only else run_mutmut(args.modules, args.jobs)
    results = {m: module_results(m, modules[m]) for m in args.modules}
    print_table(results, seconds)
    record = {
        "command": " ".join(
            ["python", "benchmarks/mutation.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        **provenance(packages=("apr-env", "mutmut", "pytest", "hypothesis")),
        "mutmut_config": mutmut_config(),
        "jobs": args.jobs,
        "seconds": seconds,
        "modules": results,
    }
    if args.write is not None:
        args.write.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
        print(f"\nwrote {args.write}")
    return record


if __name__ == "__main__":
    main()
