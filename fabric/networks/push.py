"""Apply a plan to the switches: in parallel, one lock per switch, step by step, checking each
answer against the driver's error patterns. Only when every switch succeeded is each one saved
(or committed); if any failed, every switch undoes the steps it applied. Each push and the
device's output go into the network's history (NetworkPush)."""

from __future__ import annotations

import os
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.db import connection
from netmiko import ConnectHandler
from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException
from paramiko.ssh_exception import SSHException

from fabric.errors import PushFailed
from fabric.models import NetworkPush, Switch, TenantNetwork
from fabric.networks.drivers import driver_for
from fabric.networks.drivers.base import Step, SwitchDriver

CONNECT_ATTEMPTS = 3
TRANSIENT = (NetmikoTimeoutException, SSHException, ConnectionError, OSError)


@dataclass
class SwitchRun:
    switch: Switch
    steps: list[Step]
    driver: SwitchDriver = field(init=False)
    applied: list[Step] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    error: str = ""
    started: float = 0.0
    connection: object = None

    def __post_init__(self):
        self.driver = driver_for(self.switch.platform)


def _password(switch: Switch) -> str:
    ref = switch.credentials_ref
    if ref.startswith("env:"):
        return os.environ.get(ref[4:], "")
    return ""


def _connect(switch: Switch, driver: SwitchDriver):
    params = {
        "device_type": driver.netmiko_type,
        "host": str(switch.management_address),
        "port": switch.management_port,
        "username": switch.username,
        "password": _password(switch),
        "fast_cli": True,
        "conn_timeout": 10,
    }
    connect = driver.connection_class or ConnectHandler
    for attempt in range(CONNECT_ATTEMPTS):
        try:
            return connect(**params)
        except NetmikoAuthenticationException:
            raise
        except TRANSIENT:
            if attempt == CONNECT_ATTEMPTS - 1:
                raise
            time.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


def _switch_lock(switch: Switch, take: bool) -> None:
    """A lock per switch across every process: PostgreSQL's session advisory lock."""
    key = zlib.crc32(f"switch:{switch.pk}".encode())
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {'pg_advisory_lock' if take else 'pg_advisory_unlock'}(%s)", [key])


def _apply(run: SwitchRun) -> SwitchRun:
    run.started = time.perf_counter()
    try:
        _switch_lock(run.switch, True)
        run.connection = _connect(run.switch, run.driver)
        for step in run.steps:
            commands = run.driver.render(step)
            run.applied.append(step)  # a refused step may be half applied: undo it too
            answer = run.driver.send(run.connection, commands)
            run.commands += commands
            run.output.append(answer)
            refused = run.driver.failed(answer)
            if refused:
                run.error = f"{run.switch.name} refused: {refused}"
                break
    except Exception as exc:  # every failure ends in the rollback below
        run.error = f"{run.switch.name}: {type(exc).__name__}: {exc}"[:300]
    return run


def _finish(run: SwitchRun, *, save: bool) -> str:
    """Save after success, or undo what was applied; then let the switch go."""
    try:
        if run.connection is None:
            return ""
        if save:
            return run.driver.save(run.connection)
        undo = [step.inverse() for step in reversed(run.applied)]
        commands = run.driver.render_all(undo)
        return run.driver.send(run.connection, commands) if commands else ""
    except Exception as exc:  # recorded; the rollback of other switches goes on
        return f"{type(exc).__name__}: {exc}"
    finally:
        if run.connection is not None:
            run.connection.disconnect()
        _switch_lock(run.switch, False)
        connection.close()


def _record(network: TenantNetwork, run: SwitchRun, operation: str, status: str, extra: str):
    NetworkPush.objects.create(
        network=network,
        switch=run.switch,
        operation=operation,
        commands=run.commands,
        output="\n".join([*run.output, extra]).strip()[-20000:],
        status=status,
        error=run.error,
        seconds=round(time.perf_counter() - run.started, 3),
    )


def push(
    *, network: TenantNetwork, plan: dict[Switch, list[Step]], operation: str, dry_run: bool = False
) -> list[NetworkPush]:
    """Apply `plan`; raise PushFailed (after undoing everything) if any switch failed."""
    if dry_run:
        return [
            NetworkPush.objects.create(
                network=network,
                switch=switch,
                operation=operation,
                commands=driver_for(switch.platform).render_all(steps),
                status=NetworkPush.Status.DRY_RUN,
            )
            for switch, steps in plan.items()
        ]
    runs = [SwitchRun(switch, steps) for switch, steps in plan.items()]
    if not runs:
        return []
    decision: dict[str, bool] = {}

    def decide() -> None:
        decision["save"] = not any(run.error for run in runs)

    everyone_applied = threading.Barrier(len(runs), action=decide)

    def work(run: SwitchRun) -> str:
        # One thread per switch from connect to disconnect: it holds that switch's lock and
        # session, applies, waits for the others, then saves or undoes.
        _apply(run)
        everyone_applied.wait()
        return _finish(run, save=decision["save"])

    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        tails = list(pool.map(work, runs))
    failed = [run for run in runs if run.error]
    status = NetworkPush.Status.ROLLED_BACK if failed else NetworkPush.Status.APPLIED
    for run, tail in zip(runs, tails, strict=True):
        _record(network, run, operation, NetworkPush.Status.FAILED if run.error else status, tail)
    if failed:
        reasons = "; ".join(run.error for run in failed)
        raise PushFailed(f"Nothing was changed: {reasons}")
    return list(network.pushes.order_by("-pk")[: len(runs)])
