"""A customer orders a Ray cluster of two servers in the browser; the platform boots them like
bare metal and starts a Ray head and a worker on them over SSH through the network's jump host.
From the customer laptop (outside the fabric) the customer opens the tunnel the page shows,
submits a job that runs one task on every node and gets back each node's hostname and the GPU
ids Ray gave it, connects with the Ray Client, and reads the dashboard through the portal,
which no other tenant can; then adds a worker (a third server boots and joins Ray) and removes
it again. Real Ray (the lab image's), real worker, FakeNOS switches, the
Redfish emulator, lab servers. Needs root (CI runs as root)."""

import json
import re
import subprocess

import pytest
from playwright.sync_api import expect

from catalog.models import Order
from catalog.services.products import product_upsert
from portal.stack import ROOT
from tests.catalog.lab import bare_metal_lab, customer, running_lab, with_key
from tests.fabric.lab_chain import keypair, require_root_and_tools, ssh_config, wait
from tests.portal.factories import PASSWORD, member

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
H100 = "NVIDIA H100 80GB HBM3"
IMAGE_PYTHON = str(ROOT / ".venv-notebook/bin/python")
JOB = """
import json, socket
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

ray.init()

@ray.remote(num_gpus=1)
def where():
    return socket.gethostname(), ray.get_gpu_ids()

alive = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
refs = [
    where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote()
    for n in alive
]
print("RESULT " + json.dumps(ray.get(refs)))
"""
CLIENT = """
import sys, time
import ray
deadline = time.monotonic() + 120  # the client server starts a server per client: give it time
while True:
    try:
        ray.init("ray://127.0.0.1:10001")
        break
    except ConnectionError as exc:
        if time.monotonic() > deadline:
            sys.exit(f"ray.init: {exc!r}")
print("GPUS", ray.cluster_resources().get("GPU"), ray.__version__)
"""


def _sign_in(page, url, user):
    page.goto(url + "/accounts/login/")
    page.fill("#id_login", user.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def test_given_a_ray_cluster_order_then_a_job_from_the_laptop_runs_on_every_server(
    live_stack, page, switches, bmc_emulator, tmp_path
):
    require_root_and_tools()
    _, nodes, _ = bare_metal_lab(switches=switches, emulator=bmc_emulator, gpu_model=H100)
    product_upsert(
        slug="ray-cluster", name="Ray cluster", kind="ray",
        summary="A head and GPU workers wired together, ready for ray.init().",
    )  # fmt: skip
    private_key, public_key = keypair(tmp_path, "laptop")
    user = customer()
    with_key(user, public_key)

    with running_lab(live_stack, nodes, root=tmp_path / "lab") as lab:
        _sign_in(page, live_stack.url, user)
        page.click("#order-ray-cluster")
        page.select_option("#id_gpu_model", H100)
        page.fill("#id_nodes", "2")
        page.click("#get-quote")
        expect(page.locator("#quote")).to_contain_text("per hour")
        page.click("#place-order")
        expect(page).to_have_url(re.compile(r"/orders/\d+/$"))
        expect(page.locator("#order-state")).to_have_attribute(
            "data-state", "active", timeout=240_000
        )
        order = Order.objects.get(organization__memberships__user=user)
        head, worker = order.nodes.order_by("pk")
        assert head.service["role"] == "head" and worker.service["role"] == "worker"
        assert page.locator("[data-ray=version]").inner_text() == head.service["ray"]
        assert page.locator("[data-ray=python]").inner_text() == head.service["python"]
        tunnel = page.locator("[data-ray=tunnel]").inner_text()
        assert re.fullmatch(
            rf"ssh -N -L 10001:{head.address}:10001 -L 8265:{head.address}:8265 jump@[0-9.]+",
            tunnel,
        ), tunnel
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(page.locator("#order-known-hosts").inner_text())
        config = ssh_config(tmp_path / "ssh_config", private_key, known_hosts)

        # The laptop opens the tunnel the page shows, then submits a job through it.
        forwarding = subprocess.Popen(
            ["ip", "netns", "exec", lab.access.laptop_ns, "ssh", "-F", str(config),
             *tunnel.split()[1:]],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            knock = "import socket; socket.create_connection(('127.0.0.1', 8265), 2)"
            probe = [IMAGE_PYTHON, "-c", knock]
            wait(lambda: lab.access.laptop(probe).returncode == 0, 30, "the tunnel")
            job = tmp_path / "job"
            job.mkdir()
            (job / "job.py").write_text(JOB)
            done = lab.access.laptop(
                [IMAGE_PYTHON, "-m", "ray.scripts.scripts", "job", "submit",
                 "--address", "http://127.0.0.1:8265", "--working-dir", str(job),
                 "--", "python", "job.py"],
                timeout=240,
            )  # fmt: skip
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
            found = re.search(r"^RESULT (.*)$", done.stdout, re.M)
            assert found, done.stdout[-2000:]
            answers = json.loads(found[1])
            assert sorted(host for host, _ in answers) == sorted([head.hostname, worker.hostname])
            assert all(len(gpu_ids) == 1 for _, gpu_ids in answers)

            client = lab.access.laptop([IMAGE_PYTHON, "-c", CLIENT], timeout=180)
            assert client.returncode == 0, client.stderr[-2000:]
            assert f"GPUS 2.0 {head.service['ray']}" in client.stdout
        finally:
            forwarding.terminate()
            forwarding.wait(10)

        # The dashboard, through the portal, for this tenant only.
        with page.expect_popup() as popup:
            page.click("[data-ray-link=dashboard]")
        expect(popup.value).to_have_title("Ray Dashboard", timeout=30_000)
        popup.value.close()
        version = page.request.get(f"{live_stack.url}/orders/{order.pk}/ray/api/version")
        assert version.ok and version.json()["ray_version"] == head.service["ray"]
        stranger = page.context.browser.new_page()
        _sign_in(stranger, live_stack.url, member(verified=True))
        other = stranger.request.get(f"{live_stack.url}/orders/{order.pk}/ray/api/version")
        assert other.status == 404
        stranger.close()

        # A worker more, then one fewer: the servers table and Ray follow.
        def alive() -> list[str]:
            answer = page.request.get(f"{live_stack.url}/orders/{order.pk}/ray/api/v0/nodes")
            nodes = answer.json()["data"]["result"]["result"] if answer.ok else []
            return sorted(n["node_ip"] for n in nodes if n["state"] == "ALIVE")

        page.click("#add-worker")
        rows = page.locator("#order-nodes tbody tr")
        expect(rows).to_have_count(3, timeout=30_000)
        wait(lambda: len(alive()) == 3, 180, "the third Ray node")
        expect(rows.filter(has_text="ready")).to_have_count(3, timeout=30_000)
        order.refresh_from_db()
        assert order.spec["nodes"] == 3 and order.allocation.count == 3
        third = order.nodes.order_by("pk").last()
        assert third.service["role"] == "worker" and third.address in alive()
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#remove-worker")
        wait(lambda: alive() == sorted([head.address, worker.address]), 120, "the worker to go")
        expect(rows.filter(has_text="ended")).to_have_count(1, timeout=30_000)
        order.refresh_from_db()
        assert order.spec["nodes"] == 2 and order.allocation.count == 2

        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#terminate")
        expect(page.locator("#order-state")).to_have_attribute(
            "data-state", "terminated", timeout=60_000
        )
        expect(page.locator("#order-ray")).to_be_hidden()
