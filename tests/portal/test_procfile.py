"""`make run` starts the Procfile under honcho; Ctrl-C there must stop every process."""

import contextlib
import signal

import psutil
import pytest

from portal import stack

pytestmark = pytest.mark.django_db(transaction=True)


def test_given_the_procfile_under_honcho_when_interrupted_then_every_process_stops(
    live_stack, tmp_path
):
    port = stack.free_port()
    env = {
        **live_stack.env,
        "WEB_PORT": str(port),
        "PATH": f"{stack.BIN}:{live_stack.env['PATH']}",
        "CELERY_BEAT_SCHEDULE_FILE": str(tmp_path / "beat-schedule"),
        "CELERY_CONCURRENCY": "1",
        "JUPYTERHUB_URL": f"http://127.0.0.1:{stack.free_port()}",
        "INFERENCE_CHAT_UPSTREAMS": f"http://127.0.0.1:{stack.free_port()}/v1",
        "INFERENCE_EMBEDDING_UPSTREAMS": f"http://127.0.0.1:{stack.free_port()}/v1",
    }
    with contextlib.ExitStack() as processes:
        honcho = stack.spawn(
            processes, [stack.BIN / "honcho", "start"], env=env, log=tmp_path / "honcho.log"
        )
        stack.wait_http(f"http://127.0.0.1:{port}/healthz", honcho, timeout=60)
        children = psutil.Process(honcho.pid).children(recursive=True)
        commands = " ".join(" ".join(child.cmdline()) for child in children)
        assert "daphne" in commands and "worker" in commands and "beat" in commands
        assert "jupyterhub_run" in commands and "model_servers" in commands

        honcho.send_signal(signal.SIGINT)
        honcho.wait(timeout=30)
        _, alive = psutil.wait_procs(children, timeout=15)
        assert alive == [], (tmp_path / "honcho.log").read_text()[-2000:]
