"""The paper's claims end to end: data -> SFT (SoS+, APR) -> eval -> GRPO (APR) -> eval -> table + plots.

    apr-env experiment paper --scale cpu --out runs/paper_cpu --resume     # make paper
    apr-env experiment paper --scale gpu --out runs/paper_gpu              # documented, not run here

Every stage goes through the project's public pieces: the data builder
(`apr_env.split_problems`, `trainers.data.build_traces`/`write_traces`, `trainers.sft_data.build_rows`
for token counts), `train sft` (`trainers.sft.train_sft`), `train grpo` (`trainers.grpo.train_grpo`),
`apr-env eval` (the runtime's runner, records, latency) and `runtime.report` (summaries, Wilson
intervals). A stage writes its outputs and a ``done.json`` (command, config, provenance, summary)
into its own folder of RUN_DIR:

    data/       train/test problems, APR and SoS+ traces, token counts per epoch
    warmup/     the arithmetic warm-up model both SFT models start from (`train sft --operations-only`
                on the APR traces' operation lines); empty when the config has no warm-up
    sft_sos/    the SoS+ model (train_sft's folder)      sft_apr/   the APR model
    grpo_apr/   GRPO on the APR model (metrics.csv, model/)
    eval_apr/   one apr-env eval JSON + records JSONL per point: the APR model (main row, sub-call
                budget sweep) and the APR solver
    eval_sos/   the same for SoS+ (main row, token budget sweep, best-of-N samples, SoS+ solver)
    eval_grpo/  the APR model's evaluation points for the GRPO model
    report/     table.md, table.json (Wilson 95% intervals), fig4a/fig4b/fig6/grpo_curve PNGs

Each SFT stage (and the warm-up) records the arithmetic probe of its model (`benchmarks.arithmetic_probe`:
exact operation results on held-out solver traces, teacher-forced); with ``probe_gate`` set, the
evaluation and GRPO stages refuse a model below it, since such a model solves nothing (the first
CPU run: 15% right, 0% solved) and hours of evaluation would only say so.

A stage with a ``done.json`` is skipped; a stage without one runs and continues whatever it had
finished (SFT and GRPO from their checkpoints, evaluations episode by episode from their
records); once a stage runs, every stage downstream of it (``NEEDS``) is cleared and rerun, since
its inputs changed. ``--jobs 2`` runs independent stages side by side (``make paper`` does).
RUN_DIR/config.json pins the config: continuing (``--resume``) with another config is an error.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path

from apr_env.errors import ConfigError
from apr_env.provenance import provenance
from benchmarks.paper_config import PaperConfig

STAGES = ("data", "warmup", "sft_sos", "sft_apr", "grpo_apr", "eval_apr", "eval_sos", "eval_grpo", "report")
NEEDS: dict[str, tuple[str, ...]] = {
    "data": (),
    "warmup": ("data",),
    "sft_sos": ("warmup",),
    "sft_apr": ("warmup",),
    "grpo_apr": ("sft_apr",),
    "eval_apr": ("sft_apr",),
    "eval_sos": ("sft_sos",),
    "eval_grpo": ("grpo_apr",),
    "report": ("eval_apr", "eval_sos", "eval_grpo"),
}
"""The stages each stage reads. STAGES respects it and is also the order of preference when
several stages are ready: GRPO first, since GRPO and its evaluation are the longest chain."""
DONE = "done.json"


# ---------------------------------------------------------------------------------------------- stages


def stage_data(cfg: PaperConfig, run: Path, out: Path) -> dict:
    """Problems (train/test without a shared key), solver traces of both protocols, token counts."""
    from apr_env import save_problems, split_problems
    from apr_env.generator import GeneratorConfig
    from apr_env.tokenizer import default_tokenizer
    from trainers.data import build_traces, write_traces
    from trainers.sft_data import build_rows

    gen = GeneratorConfig(
        min_numbers=cfg.numbers,
        max_numbers=cfg.numbers,
        min_value=cfg.min_value,
        max_value=cfg.max_value,
        min_target=cfg.min_target,
        max_target=cfg.max_target,
    )
    splits = split_problems({"train": cfg.n_train, "test": cfg.n_test}, seed=cfg.seed, config=gen)
    train, test = splits["train"], splits["test"]
    overlap = len({p.key for p in train} & {p.key for p in test})
    if overlap:
        raise RuntimeError(f"{overlap} (sorted numbers, target) keys shared by train and test")
    save_problems(train, out / "train_problems.json")
    save_problems(test, out / "test_problems.json")
    tok = default_tokenizer()
    max_length = cfg.max_length or _preset_context(cfg.preset)
    beams = cfg.beams or ((None, None),)
    summary: dict = {"train": len(train), "test": len(test), "key_overlap": overlap, "protocols": {}}
    for protocol in ("apr", "serial"):
        records: list[dict] = []
        for k, (beam, sub_beam) in enumerate(beams):  # equal shares of the problems, in order
            part = train[k * len(train) // len(beams) : (k + 1) * len(train) // len(beams)]
            records += build_traces(
                part,
                protocol,
                seed=cfg.seed + k,
                beam_size=beam,
                sub_beam_size=sub_beam if protocol == "apr" else None,
            )
        write_traces(records, out / protocol)
        rows, stats = build_rows(
            records, tok, condition=cfg.condition, solved_only=cfg.solved_only, max_length=max_length
        )
        stats["tokens_per_epoch"] = sum(r["length"] for r in rows)
        stats["solved"] = sum(bool(r["solved"]) for r in records) / len(records)
        if protocol == "apr":
            spawned = [r for r in records if r["trace_dict"]["sub_calls"]]
            stats["spawn_rate"] = len(spawned) / len(records)
        summary["protocols"][protocol] = stats
    return summary


def _preset_context(preset: str) -> int:
    from trainers.models import model_config

    return int(model_config(preset).max_position_embeddings)


def stage_warmup(cfg: PaperConfig, run: Path, out: Path) -> dict:
    """Arithmetic warm-up: `train sft --operations-only` on the APR traces' operation lines.

    Both SFT models start from this one model, so the comparison stays fair (same weights, same
    trace budget after it). A config without ``warmup_tokens`` writes only its done.json.
    """
    if not cfg.warmup_tokens:
        return {"skipped": "warmup_tokens is not set: both SFT models start from a fresh preset"}
    from apr_env.tokenizer import default_tokenizer
    from trainers.sft import train_sft
    from trainers.sft_config import SFTRunConfig
    from trainers.sft_data import load_trace_records, operation_rows

    _, ops = operation_rows(
        load_trace_records(run / "data" / "apr"),
        default_tokenizer(),
        row_tokens=cfg.warmup_row_tokens,
        solved_only=cfg.solved_only,
        seed=cfg.seed,
        loss=cfg.operation_loss,
    )
    config = SFTRunConfig(
        **_sft_common(cfg, run, out, "apr"),
        operations_only=True,
        operation_loss=cfg.operation_loss,
        operation_row_tokens=cfg.warmup_row_tokens,
        batch_size=cfg.warmup_batch_size,
        lr=cfg.sft_lr,
        warmup_steps=cfg.sft_warmup_steps,
        epochs=_epochs_for(cfg.warmup_tokens, ops["tokens"]),  # the schedule ends at the budget
        tokens=cfg.warmup_tokens,
        num_threads=cfg.warmup_num_threads,
    )
    summary = train_sft(config)
    summary["command"] = _command("apr-env train sft", config)
    summary["probe"] = _probe(cfg, run, out, "apr", dense=True)
    return summary


def _epochs_for(tokens: int, tokens_per_epoch: int) -> float:
    return max(tokens / max(tokens_per_epoch, 1), 1e-3)


def _sft_common(cfg: PaperConfig, run: Path, out: Path, protocol: str) -> dict:
    """The SFTRunConfig fields the warm-up and both SFT stages share."""
    return dict(
        out=str(out),
        preset=cfg.preset,
        data=str(run / "data" / protocol),
        protocol=protocol,
        n_test=0,
        numbers=cfg.numbers,
        min_value=cfg.min_value,
        max_value=cfg.max_value,
        min_target=cfg.min_target,
        max_target=cfg.max_target,
        problem_seed=cfg.seed,
        solved_only=cfg.solved_only,
        seed=cfg.seed,
        save_steps=200,
        resume=_has_checkpoint(out),
        eval=False,  # evaluated by eval_sos and eval_apr on the pipeline's own held-out split
        progress=sys.stderr.isatty(),
    )


def _probe(cfg: PaperConfig, run: Path, model: Path, protocol: str, *, dense: bool = False) -> dict:
    """The arithmetic probe of `model` on the solver traces of the first ``probe_n`` test problems
    (``dense``: their operation lines packed as the warm-up's rows, for a model that never saw a trace)."""
    from apr_env.tokenizer import default_tokenizer
    from benchmarks.arithmetic_probe import held_out_records, held_out_rows, operand_probe, probe
    from trainers.sft_data import operation_rows

    beam, sub_beam = cfg.beams[len(cfg.beams) // 2] if cfg.beams else (None, None)
    problems = str(run / "data" / "test_problems.json")
    if dense:
        tok = default_tokenizer()
        records = held_out_records(problems, cfg.probe_n, protocol, beam, sub_beam)
        rows, _ = operation_rows(records, tok, row_tokens=cfg.warmup_row_tokens, solved_only=False)
    else:
        max_length = cfg.max_length or _preset_context(cfg.preset)
        rows, tok = held_out_rows(problems, cfg.probe_n, protocol, beam, sub_beam, max_length)
    result = probe(model, rows, tok)
    result["format"] = "operation lines" if dense else f"{protocol} traces"
    if not dense:  # operand choice needs the traces' states
        result["operands"] = operand_probe(model, rows, tok, max_lines=cfg.probe_operand_lines)
    return result


def _check_gate(cfg: PaperConfig, run: Path, sft_stage: str, stage: str) -> None:
    """Refuse to evaluate or RL-train a model whose arithmetic probe is below ``probe_gate``."""
    if cfg.probe_gate is None:
        return
    found = _done(run, sft_stage)["summary"].get("probe", {}).get("exact_result_accuracy")
    if found is None or found < cfg.probe_gate:
        shown = "no probe" if found is None else f"{found:.1%} of held-out operation results right"
        raise RuntimeError(
            f"{stage}: the {sft_stage} model has {shown}, under probe_gate={cfg.probe_gate:.0%}; such a "
            "model solves ~nothing and gives GRPO no signal (benchmarks/results/paper_cpu_v1). Give it "
            "more arithmetic (warmup_tokens, sft_operations_mix, sft_tokens) in a new run folder, or "
            "set probe_gate to None"
        )


def _sft(cfg: PaperConfig, run: Path, out: Path, protocol: str) -> dict:
    from trainers.sft import train_sft
    from trainers.sft_config import SFTRunConfig

    data = _done(run, "data")["summary"]["protocols"][protocol]
    epochs = 1.0
    if cfg.sft_max_steps is None:  # the schedule ends at the token budget
        # an epoch holds the trace rows and the operation rows mixed among them
        epochs = _epochs_for(cfg.sft_tokens, data["tokens_per_epoch"] / (1 - cfg.sft_operations_mix))
    warm = run / "warmup"
    config = SFTRunConfig(
        **_sft_common(cfg, run, out, protocol),
        model=str(warm) if (warm / "model.safetensors").is_file() else None,
        condition=cfg.condition,
        operations_mix=cfg.sft_operations_mix,
        operation_loss=cfg.operation_loss,
        operation_row_tokens=cfg.warmup_row_tokens,
        max_length=cfg.max_length,
        batch_size=cfg.sft_batch_size,
        lr=cfg.sft_lr,
        warmup_steps=cfg.sft_warmup_steps,
        epochs=epochs,
        max_steps=cfg.sft_max_steps or -1,
        tokens=cfg.sft_tokens,
        num_threads=cfg.num_threads,
    )
    summary = train_sft(config)
    summary["command"] = _command("apr-env train sft", config)
    summary["probe"] = _probe(cfg, run, out, protocol)
    return summary


def stage_sft_sos(cfg: PaperConfig, run: Path, out: Path) -> dict:
    """SoS+ model: `train sft` on the serial traces, the same preset and token budget as APR."""
    return _sft(cfg, run, out, "serial")


def stage_sft_apr(cfg: PaperConfig, run: Path, out: Path) -> dict:
    """APR model: `train sft` on the APR traces."""
    return _sft(cfg, run, out, "apr")


def _has_checkpoint(folder: Path) -> bool:
    return folder.is_dir() and any(p.name.startswith("checkpoint-") for p in folder.iterdir())


def _median_condition(run: Path, protocol: str) -> dict:
    """The median condition of the training demonstrations (as `train sft`'s own evaluation uses)."""
    from apr_env.tokenizer import default_tokenizer
    from trainers.sft_data import sub_call_budget, token_budget

    records = json.loads((run / "data" / protocol / "traces.json").read_text())
    used = [r for r in records if r.get("solved")] or records
    if protocol == "apr":
        return {"sub_call_budget": int(statistics.median_low(sub_call_budget(r) for r in used))}
    tok = default_tokenizer()
    return {"token_budget": int(statistics.median_low(token_budget(r, tok) for r in used))}


def _eval_points(cfg: PaperConfig, run: Path, which: str) -> list[dict]:
    """The evaluation points of one stage (which: sos, apr, grpo): name, row, agent, model, protocol,
    condition, n, sampling."""
    kind = "sos" if which == "sos" else "apr"
    protocol = "serial" if kind == "sos" else "apr"
    model = {"sos": run / "sft_sos", "apr": run / "sft_apr", "grpo": run / "grpo_apr" / "model"}[which]
    label = {"sos": "SoS+ (SFT)", "apr": "APR (SFT)", "grpo": "APR (SFT + GRPO)"}[which]
    cond = _median_condition(run, protocol) if cfg.condition else {}
    points = [dict(name=f"{kind}_main", row=label, agent="llm", model=model, protocol=protocol,
                   cond=cond, n=cfg.eval_n, temperature=0.0, seed=cfg.seed)]  # fmt: skip
    if cfg.condition:
        key, values = (
            ("token_budget", cfg.token_budgets)
            if kind == "sos"
            else ("sub_call_budget", cfg.sub_call_budgets)
        )
        for v in values:
            points.append(dict(name=f"{kind}_{key}_{v}", row=label, agent="llm", model=model,
                               protocol=protocol, cond={key: v}, n=cfg.sweep_n, temperature=0.0,
                               seed=cfg.seed, sweep=key, sweep_value=v))  # fmt: skip
    if kind == "sos":
        for k in range(max(cfg.bon_ns, default=0)):
            points.append(dict(name=f"sos_sample_{k}", row="SoS+ best-of-N", agent="llm", model=model,
                               protocol=protocol, cond=cond, n=cfg.sweep_n,
                               temperature=cfg.bon_temperature, seed=cfg.seed + 1 + k))  # fmt: skip
    if which != "grpo":
        agent, row = ("sos+", "SoS+ solver (ceiling)") if kind == "sos" else ("apr", "APR solver (ceiling)")
        points.append(dict(name=f"solver_{protocol}", row=row, agent=agent, model=None, protocol=protocol,
                           cond={}, n=cfg.eval_n, temperature=0.0, seed=cfg.seed))  # fmt: skip
    return points


def _eval_argv(cfg: PaperConfig, run: Path, out: Path, point: dict) -> list[str]:
    argv = ["eval", "--agent", point["agent"], "--protocol", point["protocol"],
            "--problems", str(run / "data" / "test_problems.json"), "--n", str(point["n"]),
            "--seed", str(point["seed"]), "--temperature", str(point["temperature"]),
            "--context-window", str(cfg.eval_window), "--concurrency", str(cfg.concurrency),
            "--out", str(out / f"{point['name']}.json"), "--records", str(out / f"{point['name']}.jsonl")]  # fmt: skip
    if point["model"] is not None:
        argv += ["--backend", "transformers", "--model", str(point["model"])]
    else:
        beam, sub_beam = cfg.beams[len(cfg.beams) // 2] if cfg.beams else (None, None)
        argv += [] if beam is None else ["--beam-size", str(beam), "--sub-beam-size", str(sub_beam)]
    for key, value in point["cond"].items():
        argv += ["--" + key.replace("_", "-"), str(value)]
    return argv


def _evaluate(cfg: PaperConfig, run: Path, out: Path, which: str) -> dict:
    """Every point through `apr-env eval` (in process): a JSON summary and a records JSONL per point."""
    from apr_env.cli import main as apr_env_main

    if cfg.num_threads:
        import torch

        torch.set_num_threads(cfg.num_threads)
    done = {}
    for point in _eval_points(cfg, run, which):
        argv = _eval_argv(cfg, run, out, point)
        result = out / f"{point['name']}.json"
        if not (result.is_file() and json.loads(result.read_text()).get("complete")):
            resume = ["--resume"] if (out / f"{point['name']}.jsonl").is_file() else []
            with redirect_stdout(sys.stderr):
                status = apr_env_main(argv + resume)
            if status != 0:
                raise RuntimeError(f"apr-env {' '.join(argv + resume)} failed with status {status}")
        done[point["name"]] = {**{k: str(v) if isinstance(v, Path) else v for k, v in point.items()},
                               "command": "apr-env " + " ".join(argv)}  # fmt: skip
    return {"points": done}


def stage_eval_sos(cfg: PaperConfig, run: Path, out: Path) -> dict:
    """The SoS+ SFT model (main row, token-budget sweep, best-of-N samples) and the SoS+ solver."""
    _check_gate(cfg, run, "sft_sos", "eval_sos")
    return _evaluate(cfg, run, out, "sos")


def stage_eval_apr(cfg: PaperConfig, run: Path, out: Path) -> dict:
    """The APR SFT model (main row, sub-call-budget sweep) and the APR solver."""
    _check_gate(cfg, run, "sft_apr", "eval_apr")
    return _evaluate(cfg, run, out, "apr")


def stage_grpo_apr(cfg: PaperConfig, run: Path, out: Path) -> dict:
    """`train grpo` on the APR SFT model, problems drawn from the training split."""
    from trainers.grpo import train_grpo
    from trainers.grpo_config import GRPOConfig

    _check_gate(cfg, run, "sft_apr", "grpo_apr")
    if cfg.num_threads:
        import torch

        torch.set_num_threads(cfg.num_threads)
    config = GRPOConfig(
        model=str(run / "sft_apr"),
        problems=str(run / "data" / "train_problems.json"),
        out=str(out),
        steps=cfg.grpo_steps,
        seed=cfg.seed,
        resume=(out / "checkpoint").is_dir(),
        save_every=5,
        tensorboard=False,
        progress=sys.stderr.isatty(),
        problems_per_step=cfg.grpo_problems_per_step,
        group_size=cfg.grpo_group_size,
        protocol="apr",
        protocol_kwargs=_median_condition(run, "apr") if cfg.condition else {},
        context_window=cfg.main_window,
        max_new_tokens=cfg.grpo_max_new_tokens,
        reward=cfg.grpo_reward,
        ppo_epochs=cfg.grpo_ppo_epochs,
        lr=cfg.grpo_lr,
        kl_beta=cfg.grpo_kl_beta,
    )
    last = train_grpo(config)
    return {"last_step": last, "command": _command("apr-env train grpo", config), "model": str(out / "model")}


def stage_eval_grpo(cfg: PaperConfig, run: Path, out: Path) -> dict:
    """The GRPO model at the same points as the APR SFT model."""
    return _evaluate(cfg, run, out, "grpo")


def stage_report(cfg: PaperConfig, run: Path, out: Path) -> dict:
    """table.md, table.json and the figures from the evaluation records and GRPO metrics."""
    from benchmarks.paper_report import write_report

    return write_report(cfg, run, out)


STAGE_FUNCS: dict[str, Callable[[PaperConfig, Path, Path], dict]] = {
    "data": stage_data,
    "warmup": stage_warmup,
    "sft_sos": stage_sft_sos,
    "sft_apr": stage_sft_apr,
    "grpo_apr": stage_grpo_apr,
    "eval_apr": stage_eval_apr,
    "eval_sos": stage_eval_sos,
    "eval_grpo": stage_eval_grpo,
    "report": stage_report,
}


# ---------------------------------------------------------------------------------------------- the run


def _command(prefix: str, config) -> str:
    """The CLI command equivalent to a config dataclass (flags are field names with dashes)."""
    from dataclasses import fields

    parts = [prefix]
    for f in fields(config):
        value = getattr(config, f.name)
        if value is None or value == [] or value == {}:
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + f.name.replace("_", "-"))
        elif isinstance(value, dict):
            parts += [flag, f"'{json.dumps(value)}'"]
        else:
            parts += [flag, str(value)]
    return " ".join(parts)


def _done(run: Path, stage: str) -> dict:
    return json.loads((run / stage / DONE).read_text())


MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
               "tokenizer_config.json", "special_tokens_map.json")  # fmt: skip
"""What a model folder needs to be loaded (no optimizer state, no checkpoints)."""


def publish(run_dir: str | Path, dest: str | Path) -> list[str]:
    """Copy what a run has finished into `dest` (e.g. benchmarks/results/paper_cpu/), to commit.

    ``report/*`` (table.md, table.json, PNGs) at the top; ``stages/STAGE.json`` (each done.json:
    command, config, provenance, summary); ``eval/STAGE/POINT.json`` (the `apr-env eval` summaries,
    not the per-episode records, which hold every call's token ids); ``metrics/`` (the SFT and GRPO
    training curves); ``models/{sos_sft,apr_sft,apr_grpo}/`` (the loadable model files only).
    A run without a finished report (stopped, or still running) also gets ``partial.json``: the
    finished stages and a summary (accuracy with its Wilson interval, tokens, threads, format
    errors, outcomes) of every evaluation point's records so far. Returns the written paths.

    Raises:
        ConfigError: `run_dir` is not a paper run folder (no config.json).
    """
    run, dest = Path(run_dir), Path(dest)
    if not (run / "config.json").is_file():
        raise ConfigError(f"{run} is not a paper run folder (no config.json); run the experiment first")
    copies: list[tuple[Path, Path]] = [(run / "config.json", dest / "config.json")]
    if (run / "report").is_dir():
        copies += [(f, dest / f.name) for f in sorted((run / "report").iterdir()) if f.name != DONE]
    copies += [(run / s / DONE, dest / "stages" / f"{s}.json") for s in STAGES if (run / s / DONE).is_file()]
    for stage in ("eval_apr", "eval_sos", "eval_grpo"):
        copies += [
            (f, dest / "eval" / stage / f.name)
            for f in sorted((run / stage).glob("*.json"))
            if f.name != DONE
        ]
    for stage in ("warmup", "sft_sos", "sft_apr", "grpo_apr"):
        if (run / stage / "metrics.csv").is_file():
            copies.append((run / stage / "metrics.csv", dest / "metrics" / f"{stage}.csv"))
    for name, folder in (
        ("sos_sft", run / "sft_sos"),
        ("apr_sft", run / "sft_apr"),
        ("apr_grpo", run / "grpo_apr" / "model"),
    ):
        if (folder / "model.safetensors").is_file():
            copies += [
                (folder / f, dest / "models" / name / f) for f in MODEL_FILES if (folder / f).is_file()
            ]
    for src, dst in copies:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    written = [str(dst) for _, dst in copies]
    if not (run / "report" / DONE).is_file():
        (dest / "partial.json").write_text(json.dumps(partial_summary(run), indent=2) + "\n")
        written.append(str(dest / "partial.json"))
    return written


def partial_summary(run: Path) -> dict:
    """The finished stages of an unfinished run and a summary of every evaluation's records so far."""
    from collections import Counter

    from benchmarks.arithmetic_probe import generated_line_checks, joined_goal_checks
    from runtime.records import load_records
    from runtime.report import summarize

    points = {}
    for stage in ("eval_apr", "eval_sos", "eval_grpo"):
        for path in sorted((run / stage).glob("*.jsonl")):
            records = load_records(path)
            if not records:
                continue
            n = len(records)
            # the protocol only matters to summarize for self_consistency, which no paper point plays
            s = summarize(records, protocol="apr", knob="point", value=path.stem, windows=[], seconds=0)
            points[f"{stage}/{path.stem}"] = {
                **{
                    k: s[k]
                    for k in (
                        "episodes",
                        "accuracy",
                        "accuracy_ci95",
                        "total_tokens",
                        "longest_thread_tokens",
                        "threads",
                    )
                },
                "format_error_rate": sum(bool(r["format_errors"]) for r in records) / n,
                "generated_lines": generated_line_checks(records),
                "joined_goals": joined_goal_checks(records),
                "outcomes": dict(Counter(str(r.get("outcome")) for r in records).most_common()),
            }
    return {
        "complete": False,
        "stages_done": [s for s in STAGES if (run / s / DONE).is_file()],
        "points": points,
        "provenance": provenance(),
    }


def _run_stage(cfg: PaperConfig, run: Path, stage: str) -> float:
    """Run one stage into RUN/STAGE and write its done.json; returns the seconds it took.

    A module-level function so that `run_paper(jobs > 1)` can run it in a worker process.
    """
    out = run / stage
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    summary = STAGE_FUNCS[stage](cfg, run, out)
    done = {
        "stage": stage,
        "command": f"apr-env experiment paper --scale {cfg.scale} --out {run} --resume",
        "config": json.loads(json.dumps(cfg.to_dict())),
        "seconds": time.perf_counter() - started,
        "provenance": provenance(),
        "summary": summary,
    }
    (out / DONE).write_text(json.dumps(done, indent=2, default=str) + "\n")
    return done["seconds"]


def _stale(run: Path) -> list[str]:
    """Stages to run: those without a done.json and every stage downstream of one (in STAGES order)."""
    stale: list[str] = []
    for stage in STAGES:
        if not (run / stage / DONE).is_file() or any(need in stale for need in NEEDS[stage]):
            stale.append(stage)
    return stale


def run_paper(
    cfg: PaperConfig, run_dir: str | Path, *, resume: bool = False, jobs: int = 1, log=print
) -> dict:
    """Run (or continue) every stage of the experiment in `run_dir`; returns {stage: 'ran' | 'skipped'}.

    With ``jobs > 1`` independent stages run at the same time in worker processes (``NEEDS`` is
    the graph): SoS+ and APR SFT side by side, then then GRPO and its evaluation beside the
    evaluations of the SFT models. On a 2-core CPU with one torch thread per stage (the cpu scale's ``num_threads``)
    that halves the wall time. A failing stage stops new stages from starting; the running ones
    finish and keep their outputs, then the error is raised.

    Raises:
        ConfigError: `run_dir` holds a run but `resume` is off, or holds a run of another config,
            or `jobs` < 1.
        RuntimeError: a stage failed (its name and the worker's error in the message).
    """
    if jobs < 1:
        raise ConfigError(f"jobs={jobs}; accepted: 1 (stages in order) or more (independent stages at once)")
    run = Path(run_dir)
    pinned = run / "config.json"
    config = json.loads(json.dumps(cfg.to_dict()))
    if pinned.is_file():
        if not resume:
            raise ConfigError(
                f"{run} already holds a run; pass --resume to continue it, or choose another --out"
            )
        earlier = json.loads(pinned.read_text())
        if earlier != config:
            diff = sorted(k for k in set(earlier) | set(config) if earlier.get(k) != config.get(k))
            raise ConfigError(f"{run} holds a run of another config (fields {', '.join(diff)} differ)")
    run.mkdir(parents=True, exist_ok=True)
    pinned.write_text(json.dumps(config, indent=2) + "\n")
    stale = _stale(run)
    status = {stage: "ran" if stage in stale else "skipped" for stage in STAGES}
    for stage in STAGES:
        if stage not in stale:
            log(f"[paper] {stage}: done, skipped")
        elif any(need in stale for need in NEEDS[stage]) and (run / stage).exists():
            # built from inputs that will change (a lone unfinished stage continues instead)
            shutil.rmtree(run / stage)
    if jobs == 1:
        for stage in stale:
            log(f"[paper] {stage}: running")
            log(f"[paper] {stage}: done in {_run_stage(cfg, run, stage):.0f} s")
        return status
    _run_parallel(cfg, run, stale, jobs, log)
    return status


def _run_parallel(cfg: PaperConfig, run: Path, stale: list[str], jobs: int, log) -> None:
    """Run the stale stages in up to `jobs` worker processes, each as soon as its NEEDS are done."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    waiting, running, failed = list(stale), {}, []
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        while waiting or running:
            ready = [s for s in waiting if not any(n in waiting or n in running.values() for n in NEEDS[s])]
            for stage in ready[: jobs - len(running)] if not failed else []:
                waiting.remove(stage)
                log(f"[paper] {stage}: running")
                running[pool.submit(_run_stage, cfg, run, stage)] = stage
            if not running:
                break  # a failure left stages that can no longer start
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                stage = running.pop(future)
                if future.exception() is not None:
                    failed.append((stage, future.exception()))
                    log(f"[paper] {stage}: failed: {future.exception()!r}")
                else:
                    log(f"[paper] {stage}: done in {future.result():.0f} s")
    if failed:
        stage, err = failed[0]
        raise RuntimeError(
            f"stage {stage} failed: {err!r}; finished stages are kept, rerun with --resume"
        ) from err
