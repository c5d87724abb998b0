"""Click to usable notebook: the time from asking for a notebook to its JupyterLab server
answering, through the portal (an order: authorize, allocate a MIG slice, start through
JupyterHub's REST API, the pre-spawn hook asking the portal) and through a direct JupyterHub
REST spawn (the same hub, the same hook) in the same run. Targets: portal p50 <= 5 s and
<= 1.2x the direct spawn.

    python -m portal.embedded run -- .venv/bin/python bench/notebooks.py [--rounds 8]

It works in a scratch database (bench_notebooks), so your data is untouched.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.scratch import django_setup, process_environment, scratch_database


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    django_setup()

    with scratch_database("bench_notebooks"):
        return run(args.rounds)


def usable(name: str, server: str, started: float, timeout: float = 60) -> float:
    """Seconds from `started` until the server answers its API through the hub's proxy."""
    import requests
    from django.conf import settings

    url = f"{settings.JUPYTERHUB_URL}/user/{name}/{server}/api/status"
    headers = {"Authorization": f"token {settings.JUPYTERHUB_API_TOKEN}"}
    while time.perf_counter() - started < timeout:
        try:
            answer = requests.get(url, headers=headers, timeout=2, allow_redirects=False)
            if answer.status_code == 200 and "started" in answer.json():
                return time.perf_counter() - started
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{server} was not usable in {timeout} s")


def run(rounds: int) -> int:
    from django.conf import settings
    from django.test import override_settings
    from django.utils import timezone

    from billing.models import CreditGrant
    from catalog.models import Order, OrderState
    from catalog.notebooks import hub, runner
    from catalog.notebooks.oauth import hub_application_ensure
    from catalog.services.orders import order_place, order_terminate
    from catalog.services.products import product_upsert
    from fabric.models import GPU, Node, Site
    from portal import stack
    from portal.embedded import free_port
    from portal.services.accounts import user_create
    from portal.services.audit import Actor

    hub_url, token = f"http://127.0.0.1:{free_port()}", uuid.uuid4().hex
    env = process_environment(JUPYTERHUB_URL=hub_url, JUPYTERHUB_API_TOKEN=token)
    owner = user_create(
        username="bench", email="bench@example.com", password=os.urandom(8).hex(),
        organization_name="Bench", email_verified=True,
    )  # fmt: skip
    membership = owner.memberships.get()
    CreditGrant.objects.create(organization=membership.organization, amount=100_000)
    product = product_upsert(slug="notebook", name="Notebook", kind="notebook", summary="-")
    model = settings.NOTEBOOK_PROFILES["h100-1g"]["gpu_model"]
    node = Node.objects.create(
        name="bench-h100", serial="BENCH1", vendor="x", model="x", node_type="x",
        gpu_model=model, site=Site.objects.create(name="bench"), state="available",
    )  # fmt: skip
    for index in range(8):
        GPU.objects.create(
            node=node, index=index, uuid=f"GPU-{uuid.uuid4()}", model=model, memory_mb=81559,
            pci_bus_id=f"0000:{index:02x}:00.0", mig_capable=True,
        )  # fmt: skip
    portal_times, direct_times, before_spawn = [], [], []
    with (
        override_settings(JUPYTERHUB_URL=hub_url, JUPYTERHUB_API_TOKEN=token),
        tempfile.TemporaryDirectory() as tmp,
        contextlib.ExitStack() as processes,
    ):
        web_url, _, _ = stack.web_and_worker(processes, env=env, logs=Path(tmp) / "logs")
        client_id, secret = hub_application_ensure(redirect_uri=f"{hub_url}/hub/oauth_callback")
        hub_process = runner.start(
            config=runner.hub_config(
                url=hub_url, portal_url=web_url, token=token, client_id=client_id,
                client_secret=secret, data=Path(tmp) / "hub", account_prefix="sfbench",
            ),
            log=Path(tmp) / "hub.log", remove_accounts=True,
        )  # fmt: skip
        processes.callback(hub_process.stop)
        name = hub.hub_name(owner.pk)
        hub.user_ensure(name)
        for _ in range(rounds):
            started = time.perf_counter()
            order = order_place(
                membership=membership, product=product, spec={"profile": "h100-1g"},
                actor=Actor(user=owner),
            )  # fmt: skip
            portal_times.append(usable(name, f"o{order.pk}", started))
            launching = order.events.get(to_state=OrderState.LAUNCHING).created_at
            before_spawn.append((launching - order.created_at).total_seconds())
            while Order.objects.get(pk=order.pk).state != OrderState.ACTIVE:
                time.sleep(0.05)
            order_terminate(order=Order.objects.get(pk=order.pk), actor=Actor(user=owner))

            # The direct spawn: a launching order the hook admits (no task runs it), then the
            # hub's REST API alone.
            direct = Order.objects.create(
                organization=membership.organization, created_by=owner, product=product,
                offering="notebook", spec=order.spec, hourly_quote=order.hourly_quote,
                state=OrderState.LAUNCHING,
            )  # fmt: skip
            started = time.perf_counter()
            hub.server_start(name, f"o{direct.pk}", {"profile": "h100-1g"})
            direct_times.append(usable(name, f"o{direct.pk}", started))
            hub.server_stop(name, f"o{direct.pk}")
            Order.objects.filter(pk=direct.pk).update(
                state=OrderState.CANCELLED, cleaned_up_at=timezone.now()
            )
            while Order.objects.filter(cleaned_up_at=None).exists():
                time.sleep(0.05)

    def pct(values, q):
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    print(f"\nclick to usable notebook (MIG 1g slice), {rounds} rounds each, seconds:\n")
    print(f"  {'path':<28} {'p50':>6} {'p95':>6} {'min':>6} {'max':>6}")
    for label, values in (
        ("portal (order + hub)", portal_times),
        ("direct hub REST", direct_times),
    ):
        print(f"  {label:<28} {statistics.median(values):6.2f} {pct(values, 0.95):6.2f}"
              f" {min(values):6.2f} {max(values):6.2f}")  # fmt: skip
    print(f"\n  portal: order placed to the hub asked to spawn, p50 "
          f"{statistics.median(before_spawn):.3f} s")  # fmt: skip
    ratio = statistics.median(portal_times) / statistics.median(direct_times)
    print(f"\nportal p50 / direct p50 = {ratio:.2f} (target <= 1.2); "
          f"portal p50 {statistics.median(portal_times):.2f} s (target <= 5)")  # fmt: skip
    return 0 if ratio <= 1.2 and statistics.median(portal_times) <= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
