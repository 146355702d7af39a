"""Nothing finished is lost when the backend dies: `apr-env eval` against a real `apr-env serve`
subprocess that is killed mid-run keeps every finished episode on disk (records appended and
flushed as each finishes, `--out` summarising them), exits 1 with a clear error, and `--resume`
plays exactly the missing episodes: the union equals an uninterrupted in-process run.

Also: the records file helpers (a line cut by a kill is dropped; a file from another run is
refused), and a request the server refuses for length ends that thread as truncated.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import Future

import pytest
from tiny_models import make_tiny_llama, save_tiny_model

from apr_env import generate_problems
from apr_env.cli import main as cli
from apr_env.seeding import episode_seed
from apr_env.tokenizer import default_tokenizer
from runtime.backends.base import Backend, GenerationRequest
from runtime.backends.http_errors import BackendContextLengthError
from runtime.launch_sglang import free_port, wait_until_ready
from runtime.records import RecordWriter, check_resumable, load_records

WINDOW = 48
N = 6


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tok = default_tokenizer()
    model = make_tiny_llama(tok.vocab_size, seed=5, max_pos=WINDOW + 8)
    return save_tiny_model(tmp_path_factory.mktemp("tiny"), model, tok)


def _start_server(model_dir, log_path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "apr_env.cli", "serve", "--model", str(model_dir), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(url, proc, timeout_s=90, log_path=log_path, route="/health", name="apr-env serve")
    return proc, url


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(timeout=10)


def _eval_argv(backend: str, model_dir, records, out, *extra: str) -> list[str]:
    return [
        "eval",
        "--agent",
        "llm",
        "--backend",
        backend,
        "--model",
        str(model_dir),
        "--n",
        str(N),
        "--context-window",
        str(WINDOW),
        "--concurrency",
        "2",
        "--records",
        str(records),
        "--out",
        str(out),
        *extra,
    ]


def _by_index(records: list[dict]) -> dict[int, tuple]:
    return {r["index"]: (r["outcome"], r["metrics"], r["answer"]) for r in records}


@pytest.mark.slow
def test_killing_the_server_keeps_finished_episodes_and_resume_plays_the_rest(model_dir, tmp_path, capsys):
    records, out = tmp_path / "records.jsonl", tmp_path / "out.json"
    proc, url = _start_server(model_dir, tmp_path / "server1.log")
    killed_at: list[int] = []

    def kill_after_two() -> None:
        while proc.poll() is None:
            if records.exists() and records.read_text().count("\n") >= 2:
                proc.kill()
                killed_at.append(records.read_text().count("\n"))
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=kill_after_two, daemon=True)
    watcher.start()
    try:
        rc = cli(_eval_argv("sglang", model_dir, records, out, "--url", url))
    finally:
        _stop(proc)
        watcher.join(timeout=10)
    err = capsys.readouterr().err
    assert killed_at, "the run finished before the server was killed"
    assert rc == 1
    assert "stopped after" in err and "--resume" in err and "BackendConnectionError" in err
    first = load_records(records)
    summary = json.loads(out.read_text())
    assert 2 <= len(first) < N
    assert len({r["index"] for r in first}) == len(first)
    assert summary["complete"] is False and summary["episodes_recorded"] == len(first)
    assert summary["points"][0]["episodes"] == len(first)
    assert "could not reach the server" in summary["error"]

    proc, url = _start_server(model_dir, tmp_path / "server2.log")
    try:
        rc = cli(_eval_argv("sglang", model_dir, records, out, "--url", url, "--resume"))
    finally:
        _stop(proc)
    assert rc == 0
    resumed = load_records(records)
    assert sorted(r["index"] for r in resumed) == list(range(N))  # each episode once
    assert resumed[: len(first)] == first  # the earlier lines are kept as they were
    assert json.loads(out.read_text())["complete"] is True

    full = tmp_path / "full.jsonl"
    assert cli(_eval_argv("transformers", model_dir, full, tmp_path / "full.json")) == 0
    assert _by_index(resumed) == _by_index(load_records(full))


def test_a_line_cut_by_a_kill_is_dropped_and_cut_off_before_appending(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"index": 0, "x": 1}\n{"index": 1, "x"')
    assert load_records(path) == [{"index": 0, "x": 1}]
    with RecordWriter(path, resume=True) as writer:
        writer.write({"index": 2})
    assert path.read_text() == '{"index": 0, "x": 1}\n{"index": 2}\n'


def test_records_of_another_run_are_refused(tmp_path):
    problems = generate_problems(3, seed=1)
    rec = {"index": 1, "problem": problems[1].info(), "seed": episode_seed(0, 1)}
    check_resumable([rec], problems, lambda i: episode_seed(0, i), "r.jsonl")
    with pytest.raises(ValueError, match="is not this run's episode 1"):
        check_resumable([rec], problems, lambda i: episode_seed(7, i), "r.jsonl")
    with pytest.raises(ValueError, match="outside this run's 3 problems"):
        check_resumable([{**rec, "index": 5}], problems, lambda i: episode_seed(0, i), "r.jsonl")


def test_resume_needs_a_records_file():
    with pytest.raises(SystemExit, match="--resume needs --records"):
        cli(["eval", "--agent", "random", "--n", "2", "--resume"])


class _Refusing(Backend):
    """Refuses (for length, as vLLM does) every request whose prompt text `refuse(text)` picks."""

    def __init__(self, inner: Backend, tok, refuse):
        self.inner, self.tok, self.refuse, self.refused = inner, tok, refuse, 0

    def submit(self, request: GenerationRequest) -> Future:
        if self.refuse(self.tok.decode(request.input_ids[1:])):
            self.refused += 1
            future: Future = Future()
            future.set_exception(
                BackendContextLengthError(
                    "refused",
                    url="http://x",
                    status=400,
                    body="max_tokens=4073 cannot be greater than max_model_len",
                )
            )
            return future
        return self.inner.submit(request)


def _play(refuse) -> tuple[dict, int]:
    from test_llm_agent import GOLDEN, TOK, ScriptBackend, _problem, golden_script

    from agents.llm_agent import LLMAgent
    from runtime.runner import RunConfig, run_episodes

    entry = next(e for e in GOLDEN if e["trace_dict"]["sub_calls"])
    backend = _Refusing(ScriptBackend(golden_script(entry)), TOK, refuse)
    [record] = run_episodes(LLMAgent(backend, TOK), [_problem(entry)], RunConfig(protocol="apr"))
    return record, backend.refused


def test_a_root_request_refused_for_length_ends_the_episode_as_truncated():
    record, refused = _play(lambda prompt: True)
    assert refused == 1
    assert record["truncated"] is True and record["outcome"] == "context_window"


def test_a_child_request_refused_for_length_is_that_childs_outcome_and_the_run_goes_on():
    record, refused = _play(lambda prompt: prompt.startswith("Moving to Node #0,"))
    children = [t for t in record["tree"] if t["parent"] == 0]
    assert refused == len(children) > 0
    assert {t["reason"] for t in children} == {"context_window"}
    assert record["truncated"] is False and record["outcome"] is not None
