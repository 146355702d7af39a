"""Start an SGLang server as a subprocess and wait until it can generate.

    from runtime.launch_sglang import launch_sglang_server
    with launch_sglang_server("runs/sft/final", 30000, extra_args=["--dp-size", "2"]) as server:
        backend = SGLangBackend(server.url)

Runs ``python -m sglang.launch_server --model-path ... --host ... --port ... [extra_args]``
(the documented entry point; SGLang needs a CUDA GPU), sends its output to a log file, and polls
``GET /health_generate`` (one real one-token generation, so "ready" means the model is loaded,
not just the HTTP port open) until it answers 200, the process exits, or the deadline passes.
SGLang's own launcher waits the same way; unlike its ``http_request`` helper, every poll here
has a timeout.

When ``sglang`` is not importable this raises `DependencyNotInstalled` naming the pip extra,
without starting anything. Not here: choosing ports, GPUs or parallelism (pass them in
`extra_args`), and talking to the server (`runtime.backends.sglang_backend`).
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from apr_env.errors import DependencyNotInstalled
from runtime.backends.base import BackendError

POLL_INTERVAL_S = 2.0
"""Seconds between readiness polls (loading a model takes tens of seconds to minutes)."""
POLL_TIMEOUT_S = 10.0
"""Timeout of one ``/health_generate`` poll."""
LOG_TAIL_CHARS = 3000
"""Characters of the server log quoted in an error."""


class SGLangServer:
    """A running SGLang subprocess: ``.url``, ``.process``, ``.log_path``, ``.terminate()``."""

    def __init__(self, process: subprocess.Popen, url: str, log_path: Path):
        self.process, self.url, self.log_path = process, url, log_path

    def terminate(self, timeout_s: float = 30.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after `timeout_s`)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> SGLangServer:
        return self

    def __exit__(self, *exc) -> None:
        self.terminate()


def require_sglang() -> None:
    """Raise `DependencyNotInstalled` with the install line when ``sglang`` cannot be imported."""
    if importlib.util.find_spec("sglang") is None:
        raise DependencyNotInstalled(
            "SGLang is not installed, so an SGLang server cannot be launched here. Install it with "
            "`pip install 'apr-env[sglang]'` on a machine with a CUDA GPU, or serve a model without it: "
            "`apr-env serve --model DIR` (same HTTP API, in-process transformers backend)."
        )


def _log_tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-LOG_TAIL_CHARS:]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it), for a local test or benchmark server.

    Another process could take it before the server binds; for a local, short-lived server that
    race is rare enough, and the readiness wait fails loudly if it happens.
    """
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until_ready(
    url: str,
    process: subprocess.Popen,
    *,
    timeout_s: float,
    log_path: Path,
    poll_interval_s: float = POLL_INTERVAL_S,
    sleep: Callable[[float], None] = time.sleep,
    route: str = "/health_generate",
    name: str = "SGLang server",
) -> None:
    """Poll ``url + route`` until it answers 2xx.

    The default route is SGLang's one-token generation; ``route="/health"`` waits for any server
    with a plain health route (`apr-env serve`, vLLM), and `name` labels it in the errors.

    Raises:
        BackendError: the process exited first (its exit code and the log's tail in the message).
        TimeoutError: not ready within `timeout_s` (the process is left running; the caller stops it).
    """
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    with httpx.Client(timeout=POLL_TIMEOUT_S) as client:
        while True:
            code = process.poll()
            if code is not None:
                raise BackendError(
                    f"{name} exited with code {code} before it was ready at {url}; "
                    f"log {log_path}:\n{_log_tail(log_path)}"
                )
            try:
                response = client.get(url + route)
                if response.is_success:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as err:
                last = f"{type(err).__name__}: {err}"
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{name} at {url} not ready after {timeout_s:.0f}s (last poll: {last}); "
                    f"raise timeout_s for big models; log {log_path}:\n{_log_tail(log_path)}"
                )
            sleep(poll_interval_s)


def launch_sglang_server(
    model_path: str,
    port: int = 30000,
    *,
    host: str = "127.0.0.1",
    extra_args: Sequence[str] = (),
    timeout_s: float = 900.0,
    python: str = sys.executable,
    log_path: str | Path | None = None,
) -> SGLangServer:
    """Start ``python -m sglang.launch_server`` and return once it can generate.

    Args:
        model_path: Model folder or hub id, passed as ``--model-path``.
        port: Port to listen on (``--port``).
        host: Interface (``--host``); 127.0.0.1 keeps it local.
        extra_args: More ``sglang.launch_server`` flags, e.g. ``["--dp-size", "2", "--mem-fraction-static", "0.8"]``.
        timeout_s: Seconds to wait for ``/health_generate``; on timeout the process is stopped.
        python: Interpreter that has SGLang installed.
        log_path: Where the server's stdout and stderr go (default: a new temporary file).

    Raises:
        DependencyNotInstalled: ``sglang`` is not importable (checked in this interpreter when
            `python` is this one).
        BackendError: the server exited during startup.
        TimeoutError: it was not ready in time.
    """
    if python == sys.executable:
        require_sglang()
    if log_path is None:
        with tempfile.NamedTemporaryFile(prefix="sglang-", suffix=".log", delete=False) as handle:
            log_path = handle.name
    log_path = Path(log_path)
    command = [python, "-m", "sglang.launch_server", "--model-path", str(model_path), "--host", host,
               "--port", str(port), *extra_args]  # fmt: skip
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    server = SGLangServer(process, f"http://{host}:{port}", log_path)
    try:
        wait_until_ready(server.url, process, timeout_s=timeout_s, log_path=log_path)
    except BaseException:
        server.terminate()
        raise
    return server
