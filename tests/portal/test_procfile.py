"""`make run` starts the Procfile under honcho; Ctrl-C there must stop every process."""

import contextlib
import random
import signal
import subprocess
import uuid
from pathlib import Path

import psutil
import pytest

from catalog.notebooks import sandbox
from fabric.testbed.servers import LabServers
from portal import stack

pytestmark = pytest.mark.django_db(transaction=True)


def test_given_the_procfile_under_honcho_when_interrupted_then_every_process_stops(
    live_stack, tmp_path
):
    port = stack.free_port()
    prefix = f"sfp{uuid.uuid4().hex[:8]}"  # the hub's notebook group and homes, removed below
    lab = f"sf{uuid.uuid4().hex[:6]}"  # the lab's namespaces and links, checked below
    env = {
        **live_stack.env,
        "WEB_PORT": str(port),
        "PATH": f"{stack.BIN}:{live_stack.env['PATH']}",
        "CELERY_BEAT_SCHEDULE_FILE": str(tmp_path / "beat-schedule"),
        "CELERY_CONCURRENCY": "1",
        "JUPYTERHUB_URL": f"http://127.0.0.1:{stack.free_port()}",
        "STOREFRONT_NOTEBOOK_ACCOUNT_PREFIX": prefix,
        "INFERENCE_CHAT_UPSTREAMS": f"http://127.0.0.1:{stack.free_port()}/v1",
        "INFERENCE_EMBEDDING_UPSTREAMS": f"http://127.0.0.1:{stack.free_port()}/v1",
        # The lab (lab_servers, as root) on names and a network of its own.
        "LAB_PREFIX": lab,
        "PROVISIONING_PREFIX": f"10.99.{random.randint(100, 250)}.0/24",
        "PROVISIONING_INTERFACE": f"{lab}-h",
    }
    with contextlib.ExitStack() as processes:
        processes.callback(sandbox.accounts_remove, prefix=prefix, homes=Path("/home") / prefix)
        # honcho kills what has not stopped 5 s after Ctrl-C: the hub's firewall table may be
        # left, and its group id would be handed to the next notebook group.
        processes.callback(sandbox.firewall_remove, prefix=prefix)
        processes.callback(LabServers.remove_prefix, lab, host_link=f"{lab}-h")
        honcho = stack.spawn(
            processes, [stack.BIN / "honcho", "start"], env=env, log=tmp_path / "honcho.log"
        )
        log = tmp_path / "honcho.log"
        try:
            stack.wait_http(f"http://127.0.0.1:{port}/healthz", honcho, timeout=120)
        except (TimeoutError, RuntimeError) as exc:
            raise AssertionError(f"{exc}\n{log.read_text()[-4000:]}") from exc
        children = psutil.Process(honcho.pid).children(recursive=True)
        commands = " ".join(" ".join(child.cmdline()) for child in children)
        assert "uvicorn portal.asgi:application" in commands
        assert "worker" in commands and "beat" in commands
        assert "jupyterhub_run" in commands and "model_servers" in commands
        assert "lab_servers" in commands

        honcho.send_signal(signal.SIGINT)
        honcho.wait(timeout=30)
        _, alive = psutil.wait_procs(children, timeout=15)
        assert alive == [], log.read_text()[-2000:]
        lab_left = [ns for ns in subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=True
        ).stdout.split() if ns.startswith(f"{lab}-")]  # fmt: skip
        assert lab_left == [], log.read_text()[-2000:]
