"""The node agent and the portal's side of it, against real peers: a sysfs tree on disk, the
agent as a subprocess (this machine has no GPU, so NVML is genuinely absent), PostgreSQL, and a
live Daphne server for the posts over HTTP."""

import copy
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from fabric.agent.collect import collect_nics
from fabric.agent.simulate import simulate_report
from fabric.management.commands.node_agent_simulate import hardware_description
from fabric.models import ChangeRecord, Drift, Node
from fabric.selectors.inventory import drift_list_open
from fabric.services.agent import node_agent_token_issue, node_authenticate_agent
from portal.services.audit import Actor
from tests.fabric.factories import GPUFactory, NetworkInterfaceFactory, NodeFactory

URL = "/api/v1/agent/report/"
ACTOR = Actor.system("task")
ROOT = Path(settings.BASE_DIR)
IB_GID = "fe80:0000:0000:0000:0002:c903:0031:7e41"
IB_ADDRESS = "80:00:10:29:fe:80:00:00:00:00:00:00:00:02:c9:03:00:31:7e:41"


def _write(root: Path, relative: str, text: str = "") -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def _net(root, name, *, address, type_="1", speed=None, operstate="up", physical=True, port=None):
    base = f"sys/class/net/{name}"
    _write(root, f"{base}/address", address)
    _write(root, f"{base}/type", type_)
    _write(root, f"{base}/operstate", operstate)
    if speed is not None:
        _write(root, f"{base}/speed", speed)
    if physical:
        (root / base / "device").mkdir()
    if port is not None:
        _write(root, f"{base}/dev_port", port)


def _rdma(root, device, netdev, *, gid=None, link_layer="InfiniBand", node_guid=None):
    base = f"sys/class/infiniband/{device}"
    (root / base / "device/net" / netdev).mkdir(parents=True)
    _write(root, f"{base}/ports/1/link_layer", link_layer)
    if gid:
        _write(root, f"{base}/ports/1/gids/0", gid)
    if node_guid:
        _write(root, f"{base}/node_guid", node_guid)


@pytest.fixture
def sysfs(tmp_path):
    """A server with an Ethernet port, a RoCE port, two IPoIB ports (one whose first GID is not
    set yet), a bridge and the loopback."""
    root = tmp_path / "root"
    _net(root, "lo", address="00:00:00:00:00:00", type_="772", physical=False)
    _net(root, "eno1", address="3C:EC:EF:00:00:01", speed="100000")
    _net(root, "enp2s0f0", address="3c:ec:ef:00:00:02", speed="200000")
    _net(root, "docker0", address="02:42:ac:11:00:01", operstate="down", physical=False)
    _net(root, "ibp1s0", address=IB_ADDRESS, type_="32", speed="400000", port="0")
    _net(root, "ibp2s0", address="80:00:10:29:" + "00:" * 15 + "00", type_="32", speed="-1")
    _rdma(root, "mlx5_0", "ibp1s0", gid=IB_GID, node_guid="0002:c903:0031:7e40")
    _rdma(root, "mlx5_1", "enp2s0f0", gid="fe80::3eec:efff:fe00:2", link_layer="Ethernet")
    _rdma(root, "mlx5_2", "ibp2s0", gid="0000:" * 7 + "0000", node_guid="0002:C903:0031:9A10")
    return root


def _agent(*args, env_extra=None, timeout=60):
    env = {k: v for k, v in os.environ.items() if k != "NODE_AGENT_TOKEN"}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "fabric.agent", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _server():
    """A node with two GPUs, an Ethernet NIC and an InfiniBand NIC."""
    node = NodeFactory()
    GPUFactory(node=node, index=0)
    GPUFactory(node=node, index=1)
    NetworkInterfaceFactory(node=node, name="eno1")
    NetworkInterfaceFactory(node=node, name="ibp1", infiniband=True)
    return node


def _report_of(node: Node) -> dict:
    return simulate_report(hardware_description(node))


def _post(client, report, token):
    return client.post(
        URL, data=json.dumps(report), content_type="application/json", HTTP_AUTHORIZATION=token
    )


def _open(node: Node) -> dict[tuple[str, str], Drift]:
    return {(d.kind, d.subject): d for d in node.drifts.filter(resolved_at=None)}


# --- the agent on this machine ----------------------------------------------------------------


def test_given_a_sysfs_tree_when_collecting_nics_then_macs_speeds_and_ib_guids_are_read(sysfs):
    nics = {nic["name"]: nic for nic in collect_nics(sysfs)}

    assert "lo" not in nics
    assert nics["eno1"] == {
        "name": "eno1",
        "mac": "3c:ec:ef:00:00:01",
        "address": "3c:ec:ef:00:00:01",
        "kind": "ethernet",
        "speed_mbps": 100000,
        "operstate": "up",
        "virtual": False,
        "ib_device": None,
        "ib_guid": None,
    }
    assert nics["ibp1s0"]["kind"] == "infiniband"
    assert nics["ibp1s0"]["mac"] is None and nics["ibp1s0"]["address"] == IB_ADDRESS
    assert (nics["ibp1s0"]["ib_device"], nics["ibp1s0"]["ib_guid"]) == (
        "mlx5_0",
        "0002:c903:0031:7e41",
    )
    assert nics["ibp2s0"]["ib_guid"] == "0002:c903:0031:9a10"  # node_guid when GID 0 is unset
    assert nics["ibp2s0"]["speed_mbps"] is None
    assert nics["enp2s0f0"]["ib_device"] == "mlx5_1" and nics["enp2s0f0"]["ib_guid"] is None
    assert nics["docker0"]["virtual"] is True and nics["docker0"]["speed_mbps"] is None


def test_given_no_gpu_here_when_the_agent_prints_then_nvml_is_unavailable_and_nics_are_listed(
    sysfs,
):
    result = _agent("--print", "--sysfs-root", str(sysfs))

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["nvml"]["available"] is False
    assert "NVML" in report["nvml"]["error"] or "pynvml" in report["nvml"]["error"]
    assert report["gpus"] == []
    assert {nic["name"] for nic in report["nics"]} == {
        "eno1",
        "enp2s0f0",
        "docker0",
        "ibp1s0",
        "ibp2s0",
    }
    assert "NVML unavailable" in result.stderr


def test_given_a_hardware_description_when_simulating_then_the_report_has_its_gpus_and_nics(
    tmp_path,
):
    description = {
        "hostname": "sim-01",
        "gpus": [
            {
                "uuid": f"GPU-{'0' * 8}-0000-0000-0000-{'0' * 12}",
                "serial": "1650",
                "nvlink_links": 18,
                "mig_capable": True,
            }
        ],
        "nics": [
            {
                "name": "ibp1",
                "mac": "02:00:00:00:00:0A",
                "kind": "infiniband",
                "ib_guid": "0002:c903:0000:0001",
            }
        ],
    }
    path = tmp_path / "hw.json"
    path.write_text(json.dumps(description))

    result = _agent("--simulate", str(path), "--print")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["source"], report["hostname"]) == ("simulator", "sim-01")
    assert report["nvml"]["available"] is True
    (gpu,) = report["gpus"]
    assert gpu["serial"] == "1650" and len(gpu["nvlink"]) == 18
    assert gpu["mig_mode"] == {"current": 0, "pending": 0}
    assert gpu["ecc"]["volatile_uncorrected"] == 0 and gpu["temperature_c"] is not None
    assert report["nics"][0]["mac"] == "02:00:00:00:00:0a"
    assert report["nics"][0]["ib_guid"] == "0002:c903:0000:0001"


def test_given_the_agent_when_it_is_imported_then_it_loads_neither_django_nor_the_project():
    code = (
        "import sys, fabric.agent.cli; "
        "print([m for m in sys.modules if m.split('.')[0] in "
        "('django', 'rest_framework', 'portal', 'catalog', 'billing', 'pynvml') "
        "or m.startswith('fabric.') and not m.startswith('fabric.agent')])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--token", "x"], "--portal is required"),
        (["--portal", "http://127.0.0.1:9"], "--token"),
        (["--simulate", "/nonexistent.json", "--print"], "cannot read hardware description"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_given_a_usage_error_when_the_agent_runs_then_it_exits_2(args, message):
    result = _agent(*args)

    assert result.returncode == 2
    assert message in result.stderr


def test_given_an_unreachable_portal_when_posting_then_it_exits_1_without_showing_the_token(sysfs):
    secret = "sfn_1_do-not-print-me"
    result = _agent(
        "--sysfs-root",
        str(sysfs),
        "--portal",
        "http://127.0.0.1:9",
        env_extra={"NODE_AGENT_TOKEN": secret},
    )

    assert result.returncode == 1
    assert "post failed: cannot reach http://127.0.0.1:9/api/v1/agent/report/" in result.stderr
    assert secret not in result.stdout + result.stderr


# --- tokens -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_given_a_node_when_a_token_is_issued_then_only_its_sha256_digest_is_stored():
    node = NodeFactory()

    plain = node_agent_token_issue(node=node, actor=ACTOR)

    node.refresh_from_db()
    assert plain.startswith(f"sfn_{node.pk}_")
    assert node.agent_token_digest == hashlib.sha256(plain.encode()).hexdigest()
    assert node_authenticate_agent(plain) == node
    record = ChangeRecord.objects.get(object_id=node.pk, action=ChangeRecord.Action.UPDATE)
    logged = json.dumps([record.before, record.after])
    assert plain.split("_", 2)[2] not in logged and node.agent_token_digest not in logged


@pytest.mark.django_db
def test_given_a_reissued_token_when_the_old_one_or_another_nodes_id_is_used_then_it_fails():
    node, other = NodeFactory(), NodeFactory()
    old = node_agent_token_issue(node=node, actor=ACTOR)

    new = node_agent_token_issue(node=node, actor=ACTOR)

    assert node_authenticate_agent(old) is None
    assert node_authenticate_agent(new) == node
    assert node_authenticate_agent(new.replace(f"_{node.pk}_", f"_{other.pk}_", 1)) is None
    assert node_authenticate_agent("sfn_x_y") is None and node_authenticate_agent("") is None


# --- the report API ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_given_hardware_matching_the_inventory_when_reported_then_201_and_no_drift(client):
    node = _server()
    token = node_agent_token_issue(node=node, actor=ACTOR)

    response = _post(client, _report_of(node), f"Node {token}")

    assert response.status_code == 201, response.content
    assert response.json() == {"drift": []}
    node.refresh_from_db()
    assert node.last_report_at is not None
    assert node.reports.get().nvml_available is True


@pytest.mark.django_db
def test_given_each_kind_of_difference_when_reported_then_each_drift_kind_is_opened(client):
    node = _server()
    gpu0, gpu1 = node.gpus.order_by("index")
    eth, ib = node.interfaces.order_by("name")
    token = f"Node {node_agent_token_issue(node=node, actor=ACTOR)}"
    report = _report_of(node)
    report["gpus"] = [g for g in report["gpus"] if g["uuid"] != gpu0.uuid]
    report["gpus"][0]["serial"] = "SWAPPED"
    unknown_gpu = "GPU-ffffffff-0000-0000-0000-000000000001"
    report["gpus"].append({"uuid": unknown_gpu.upper(), "serial": "X1"})
    report["nics"] = [n for n in report["nics"] if n["mac"] != eth.mac]
    report["nics"][0]["ib_guid"] = "0002:c903:dead:beef"
    report["nics"].append({"name": "eth9", "mac": "06:00:00:00:00:09"})

    response = _post(client, report, token)

    assert response.status_code == 201, response.content
    expected = {
        ("gpu_missing", gpu0.uuid),
        ("gpu_serial_mismatch", gpu1.uuid),
        ("gpu_unknown", unknown_gpu),
        ("nic_missing", eth.mac),
        ("guid_mismatch", ib.mac),
        ("mac_unknown", "06:00:00:00:00:09"),
    }
    assert {(d["kind"], d["subject"]) for d in response.json()["drift"]} == expected
    assert set(_open(node)) == expected
    mismatch = _open(node)[("gpu_serial_mismatch", gpu1.uuid)]
    assert (mismatch.expected, mismatch.observed) == (gpu1.serial, "SWAPPED")
    guid = _open(node)[("guid_mismatch", ib.mac)]
    assert (guid.expected, guid.observed) == (ib.ib_guid, "0002:c903:dead:beef")


@pytest.mark.django_db
def test_given_open_drift_when_the_same_difference_is_reported_again_then_it_is_refreshed(client):
    node = _server()
    token = f"Node {node_agent_token_issue(node=node, actor=ACTOR)}"
    report = _report_of(node)
    report["nics"].append({"name": "eth9", "mac": "06:00:00:00:00:09"})
    _post(client, report, token)
    (first,) = _open(node).values()

    assert _post(client, report, token).status_code == 201

    (again,) = _open(node).values()
    assert again.pk == first.pk
    assert again.first_seen == first.first_seen and again.last_seen > first.last_seen
    assert Drift.objects.filter(node=node).count() == 1


@pytest.mark.django_db
def test_given_open_drift_when_the_hardware_matches_again_then_it_is_resolved(client):
    node = _server()
    token = f"Node {node_agent_token_issue(node=node, actor=ACTOR)}"
    faulty = _report_of(node)
    faulty["gpus"].pop()
    faulty["nics"].pop()
    faulty["nics"].append({"name": "eth9", "mac": "06:00:00:00:00:09"})
    _post(client, faulty, token)
    assert len(drift_list_open()) == 3

    response = _post(client, _report_of(node), token)

    assert response.json() == {"drift": []}
    assert not drift_list_open().exists()
    assert Drift.objects.filter(node=node, resolved_at__isnull=False).count() == 3


@pytest.mark.django_db
def test_given_no_nvml_when_reported_then_gpu_drift_is_neither_opened_nor_resolved(client):
    node = _server()
    token = f"Node {node_agent_token_issue(node=node, actor=ACTOR)}"
    missing_gpu = _report_of(node)
    gone = missing_gpu["gpus"].pop()
    _post(client, missing_gpu, token)
    blind = _report_of(node)
    blind["nvml"] = {"available": False, "error": "NVMLError_LibraryNotFound"}
    blind["gpus"] = []
    blind["nics"].pop()

    response = _post(client, blind, token)

    kinds = {(d["kind"], d["subject"]) for d in response.json()["drift"]}
    nic = node.interfaces.order_by("name").last()
    assert kinds == {("nic_missing", nic.mac)}
    assert set(_open(node)) == {("gpu_missing", gone["uuid"]), ("nic_missing", nic.mac)}
    assert node.reports.first().nvml_available is False


@pytest.mark.django_db
def test_given_many_reports_when_ingested_then_only_the_newest_ten_are_kept(client):
    node = _server()
    token = f"Node {node_agent_token_issue(node=node, actor=ACTOR)}"
    for n in range(12):
        report = _report_of(node) | {"hostname": f"take-{n}"}
        assert _post(client, report, token).status_code == 201

    kept = list(node.reports.values_list("payload__hostname", flat=True))
    assert kept == [f"take-{n}" for n in range(11, 1, -1)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header", ["", "Node sfn_1_wrong", "Node", "Bearer sfk_a_b", "Node sfn_{pk}_wrong"]
)
def test_given_a_bad_token_when_reporting_then_401(client, header):
    node = _server()
    node_agent_token_issue(node=node, actor=ACTOR)

    response = _post(client, _report_of(node), header.format(pk=node.pk))

    assert response.status_code == 401
    assert not node.reports.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r.pop("nics"), "nics"),
        (lambda r: r.update(nvml={"available": "yes"}), "nvml.available"),
        (lambda r: r["gpus"][1].update(uuid=7), "gpus[1].uuid"),
        (lambda r: r["nics"][0].update(mac="not-a-mac"), "nics[0].mac"),
        (lambda r: r["nics"][1].update(ib_guid="0002c9030000"), "nics[1].ib_guid"),
        (lambda r: r["nics"][0].pop("name"), "nics[0].name"),
        (lambda r: r.update(gpus=["GPU-1"]), "gpus[0]"),
    ],
)
def test_given_a_malformed_report_when_posted_then_400_names_the_field(client, change, field):
    node = _server()
    token = f"Node {node_agent_token_issue(node=node, actor=ACTOR)}"
    report = copy.deepcopy(_report_of(node))
    change(report)

    response = _post(client, report, token)

    assert response.status_code == 400
    assert field in response.json()
    assert not node.reports.exists()


@pytest.mark.django_db
def test_given_a_report_that_is_not_an_object_when_posted_then_400(client):
    node = _server()
    token = f"Node {node_agent_token_issue(node=node, actor=ACTOR)}"

    response = _post(client, [1, 2], token)

    assert response.status_code == 400
    assert "report" in response.json()


# --- over real HTTP ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_given_a_live_portal_when_the_agent_reports_then_drift_comes_back_over_http(
    live_stack, sysfs, tmp_path
):
    # The host path: no NVML here, NICs from the fake sysfs, matched to an inventory node.
    node = NodeFactory()
    GPUFactory(node=node, index=0)
    NetworkInterfaceFactory(node=node, name="eno1", mac="3c:ec:ef:00:00:01")
    NetworkInterfaceFactory(node=node, name="enp2s0f0", mac="3c:ec:ef:00:00:02")
    NetworkInterfaceFactory(
        node=node, name="ibp1s0", infiniband=True, ib_guid="0002:c903:0031:7e41"
    )
    NetworkInterfaceFactory(
        node=node, name="ibp2s0", infiniband=True, ib_guid="0002:c903:0031:9a99"
    )
    token = node_agent_token_issue(node=node, actor=ACTOR)

    host = _agent(
        "--sysfs-root",
        str(sysfs),
        "--portal",
        live_stack.url,
        env_extra={"NODE_AGENT_TOKEN": token},
    )

    assert host.returncode == 0, host.stderr
    assert token not in host.stdout + host.stderr
    ib2 = node.interfaces.get(name="ibp2s0")
    assert host.stdout.splitlines()[1:] == [f"drift: guid_mismatch {ib2.mac}"]
    assert set(_open(node)) == {("guid_mismatch", ib2.mac)}  # no gpu_missing without NVML

    # The simulator path, with a GPU gone; and a stranger's token is refused.
    description = hardware_description(node)
    gone = description["gpus"].pop()
    path = tmp_path / "hw.json"
    path.write_text(json.dumps(description))
    simulated = _agent("--simulate", str(path), "--portal", live_stack.url, "--token", token)
    refused = _agent("--simulate", str(path), "--portal", live_stack.url, "--token", "sfn_1_x")

    assert simulated.returncode == 0, simulated.stderr
    assert f"drift: gpu_missing {gone['uuid']}" in simulated.stdout
    assert ("gpu_missing", gone["uuid"]) in _open(node)
    assert refused.returncode == 1 and "HTTP 401" in refused.stderr


@pytest.mark.django_db(transaction=True)
def test_given_a_fleet_when_simulated_with_one_fault_then_only_that_node_drifts(live_stack):
    nodes = [_server() for _ in range(3)]
    out = io.StringIO()

    call_command(
        "node_agent_simulate", portal=live_stack.url, faults=1, seed=3, workers=3, stdout=out
    )

    output = out.getvalue()
    assert "3 nodes reported." in output
    (faulty_line,) = [line for line in output.splitlines() if ": fault: " in line]
    faulty = Node.objects.get(name=faulty_line.split(":")[0])
    assert {d.node_id for d in drift_list_open()} == {faulty.pk}
    assert all(Node.objects.get(pk=n.pk).last_report_at for n in nodes)
