"""Operators register BMCs: address, user and a write-only password (stored encrypted) or a
reference to where it lives (env:, file:), through the spreadsheet import, the inventory API and
the operator console; "verify BMC" reads the power state and the system serial from the BMC and
flags a serial that is not the inventory's. The demo's H100 and A100 servers are sold as bare
metal, and the order form shows what each server is."""

import base64
import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError

from fabric import secrets
from fabric.models import Bmc, ChangeRecord, Drift
from fabric.services.power import NO_SERIAL, bmc_set, bmc_verify, node_power_state
from fabric.spreadsheets import exporter, inventory_import, read_xlsx
from portal.services.audit import Actor
from tests.catalog.factories import ProductFactory
from tests.catalog.lab import customer
from tests.fabric.factories import GPUFactory, NetworkInterfaceFactory, NodeFactory
from tests.fabric.test_spreadsheets import GOOD, workbook
from tests.portal.factories import UserFactory

pytestmark = pytest.mark.django_db

SECRET = "s3cret-Pa55word"
VARIABLE = "TEST_FABRIC_BMC_PASSWORD"
BMC_HEADERS = ["node", "address", "system_id", "username", "password", "password_ref"]


def with_bmcs(*rows: list) -> dict[str, list[list]]:
    return {**GOOD, "bmcs": [BMC_HEADERS, *rows]}


def run_import(sheets):
    parsed = read_xlsx(workbook(sheets), filename="inventory.xlsx")
    return inventory_import(sheets=parsed, actor=Actor.system())


@pytest.fixture
def operator(client):
    user = UserFactory(is_staff=True)
    client.force_login(user)
    return user


@pytest.fixture
def superuser(client):
    user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


@pytest.fixture
def credential_dir(tmp_path, settings):
    settings.BMC_CREDENTIAL_DIRS = [str(tmp_path)]
    return tmp_path


# --- the spreadsheet -----------------------------------------------------------------------------


def test_given_a_bmcs_sheet_with_a_password_then_it_is_stored_encrypted_and_logged_without_it():
    report = run_import(
        with_bmcs(
            ["gpu01", "10.100.0.1", "/redfish/v1/Systems/1", "admin", SECRET, ""],
            ["gpu02", "http://127.0.0.1:8000/", "", "root", SECRET, ""],
        )
    )

    assert report.ok, report.lines()
    first = Bmc.objects.get(node__name="gpu01")
    assert (first.url, first.system_id, first.username) == (
        "https://10.100.0.1",
        "/redfish/v1/Systems/1",
        "admin",
    )
    assert SECRET not in first.password_encrypted
    assert secrets.decrypt(first.password_encrypted) == SECRET and first.password_ref == ""
    assert Bmc.objects.get(node__name="gpu02").url == "http://127.0.0.1:8000"
    logged = json.dumps(list(ChangeRecord.objects.values("before", "after")))
    assert SECRET not in logged and first.password_encrypted not in logged


def test_given_the_same_bmc_password_imported_again_then_nothing_changes():
    sheets = with_bmcs(["gpu01", "10.100.0.1", "", "admin", SECRET, ""])
    assert run_import(sheets).ok
    stored = Bmc.objects.get().password_encrypted

    again = run_import(sheets)

    assert again.ok and again.tallies["bmcs"].unchanged == 1
    assert Bmc.objects.get().password_encrypted == stored


def test_given_a_bmcs_sheet_with_a_reference_then_the_reference_is_kept_and_no_password(
    monkeypatch,
):
    monkeypatch.setenv(VARIABLE, SECRET)
    assert run_import(with_bmcs(["gpu01", "10.100.0.1", "", "admin", SECRET, ""])).ok

    report = run_import(with_bmcs(["gpu01", "10.100.0.1", "", "admin", "", f"env:{VARIABLE}"]))

    assert report.ok, report.lines()
    bmc = Bmc.objects.get()
    assert (bmc.password_ref, bmc.password_encrypted) == (f"env:{VARIABLE}", "")


def test_given_bad_bmc_rows_then_each_problem_names_its_row_and_column_and_nothing_changes(
    credential_dir,
):
    report = run_import(
        with_bmcs(
            ["gpu01", "10.100.0.1", "", "admin", "", "vault://bmc/dc1"],
            ["gpu02", "10.100.0.2", "", "admin", "", f"file:{credential_dir}/missing"],
        )
    )

    assert not report.applied and not Bmc.objects.exists()
    problems = {(p.sheet, p.row, p.column): p.reason for p in report.problems}
    assert "not a password reference" in problems["bmcs", 2, "password_ref"]
    assert "does not exist" in problems["bmcs", 3, "password_ref"]

    report = run_import(with_bmcs(["gpu01", "not a host!", "", "admin", "", ""]))
    assert {(p.row, p.column) for p in report.problems} == {(2, "address"), (2, "password")}


def test_given_bmcs_with_passwords_then_no_export_holds_one_and_the_export_imports_back():
    assert run_import(with_bmcs(["gpu01", "10.100.0.1", "", "admin", SECRET, ""])).ok
    stored = Bmc.objects.get().password_encrypted

    csv = exporter.csv_bytes("bmcs")
    xlsx = exporter.xlsx_bytes()
    archive = zipfile.ZipFile(io.BytesIO(exporter.csv_zip_bytes()))

    assert csv.decode().splitlines() == [
        "node,address,system_id,username,password,password_ref,verify_tls,driver",
        "gpu01,https://10.100.0.1,,admin,,,true,redfish",
    ]
    everything = [csv, xlsx, *(archive.read(n) for n in archive.namelist())]
    unpacked = zipfile.ZipFile(io.BytesIO(xlsx))
    everything += [unpacked.read(n) for n in unpacked.namelist()]
    assert not any(SECRET.encode() in blob or stored.encode() in blob for blob in everything)
    # The empty password cell keeps the stored one.
    report = inventory_import(sheets=read_xlsx(xlsx, filename="export.xlsx"), actor=Actor.system())
    assert report.ok and report.tallies["bmcs"].unchanged == 1
    assert secrets.decrypt(Bmc.objects.get().password_encrypted) == SECRET


# --- the service and the API ---------------------------------------------------------------------


def test_a_bad_reference_is_a_validation_error_on_the_password_ref_field(credential_dir):
    node = NodeFactory()
    for ref, says in [
        ("vault:bmc/dc1", "env:VARIABLE or file:/path"),
        ("env:TEST_FABRIC_BMC_UNSET", "is not set"),
        ("env:DJANGO_SECRET_KEY", "must contain BMC"),
        (f"file:{credential_dir}/nothing", "does not exist"),
        ("file:/etc/hostname", "outside the BMC credential folders"),
    ]:
        with pytest.raises(ValidationError) as refused:
            bmc_set(node=node, url="https://10.0.0.9", username="admin", password_ref=ref)
        assert list(refused.value.message_dict) == ["password_ref"]
        assert says in refused.value.message_dict["password_ref"][0], ref
    with pytest.raises(ValidationError) as refused:
        bmc_set(node=node, url="https://10.0.0.9", username="admin")
    assert list(refused.value.message_dict) == ["password"]
    assert not Bmc.objects.exists()


def test_a_file_reference_is_read_at_each_use(credential_dir, bmc_emulator):
    node = NodeFactory()
    secret_file = credential_dir / "bmc-password"
    secret_file.write_text("wrong\n")
    bmc_set(
        node=node,
        url=bmc_emulator.url,
        system_id=bmc_emulator.system_id("pool-1"),
        username="admin",
        password_ref=f"file:{secret_file}",
    )
    from fabric.errors import PowerFatal

    with pytest.raises(PowerFatal, match="refused the credentials"):
        node_power_state(node=node)
    secret_file.write_text(bmc_emulator.password + "\n")  # rotated by a secret manager
    assert node_power_state(node=node) in ("on", "off")


def test_the_api_takes_a_password_but_never_answers_with_it(client, operator):
    node = NodeFactory()
    response = client.post(
        "/api/v1/inventory/bmcs/",
        {"node": node.name, "url": "https://10.0.0.9", "username": "admin", "password": SECRET},
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    created = response.json()
    assert "password" not in created and created["password_stored"] is True
    assert secrets.decrypt(Bmc.objects.get().password_encrypted) == SECRET

    listed = client.get("/api/v1/inventory/bmcs/").content.decode()
    changes = client.get("/api/v1/inventory/changes/?content_type__model=bmc").content.decode()
    assert SECRET not in listed + changes
    assert Bmc.objects.get().password_encrypted not in listed + changes

    # An update without a password keeps it; a reference replaces it.
    bmc_url = f"/api/v1/inventory/bmcs/{created['id']}/"
    patched = client.patch(bmc_url, {"username": "root"}, content_type="application/json")
    assert patched.status_code == 200 and patched.json()["password_stored"] is True
    assert secrets.decrypt(Bmc.objects.get().password_encrypted) == SECRET


def test_the_api_refuses_a_bad_reference_naming_the_field(client, operator, monkeypatch):
    node = NodeFactory()
    body = {"node": node.name, "url": "https://10.0.0.9", "username": "admin"}
    refused = client.post(
        "/api/v1/inventory/bmcs/",
        {**body, "password_ref": "env:TEST_FABRIC_BMC_UNSET"},
        content_type="application/json",
    )
    assert refused.status_code == 400 and "is not set" in refused.json()["password_ref"][0]
    both = client.post(
        "/api/v1/inventory/bmcs/",
        {**body, "password": SECRET, "password_ref": f"env:{VARIABLE}"},
        content_type="application/json",
    )
    assert both.status_code == 400 and "password_ref" in both.json()

    monkeypatch.setenv(VARIABLE, SECRET)
    made = client.post(
        "/api/v1/inventory/bmcs/",
        {**body, "password_ref": f"env:{VARIABLE}"},
        content_type="application/json",
    )
    assert made.status_code == 201, made.json()
    assert made.json()["password_ref"] == f"env:{VARIABLE}"
    assert made.json()["password_stored"] is False


def test_a_customer_can_neither_read_nor_write_bmcs(client):
    bmc_set(node=NodeFactory(), url="https://10.0.0.9", username="admin", password=SECRET)
    client.force_login(customer(credit=None))
    assert client.get("/api/v1/inventory/bmcs/").status_code == 403
    node = Bmc.objects.get().node
    assert client.post(f"/api/v1/inventory/nodes/{node.pk}/bmc/verify/").status_code in (
        403,
        404,
    )


def test_the_operator_console_keeps_the_password_write_only(client, superuser):
    node = NodeFactory()
    form = {
        "node": node.pk,
        "driver": "redfish",
        "url": "https://10.0.0.9",
        "system_id": "",
        "username": "admin",
        "password": SECRET,
        "password_ref": "",
        "verify_tls": "on",
    }
    added = client.post("/admin/fabric/bmc/add/", form)
    assert added.status_code == 302, added.context["adminform"].form.errors
    bmc = Bmc.objects.get()
    assert secrets.decrypt(bmc.password_encrypted) == SECRET
    page = client.get(f"/admin/fabric/bmc/{bmc.pk}/change/").content.decode()
    assert SECRET not in page and bmc.password_encrypted not in page

    refused = client.post(
        f"/admin/fabric/bmc/{bmc.pk}/change/",
        {**form, "password": "", "password_ref": "file:relative/path"},
    )
    assert refused.status_code == 200
    assert "password_ref" in refused.context["adminform"].form.errors


# --- verify BMC ----------------------------------------------------------------------------------


class SerialBmc:
    """A BMC that reports a serial: the sushy-tools emulator (the lab's BMC) reports none, so
    the serial comparison is tested against this small Redfish service, which answers the
    three documents the driver reads (service root, systems, the system), all but the root
    behind basic auth."""

    def __init__(self, serial: str, password: str) -> None:
        self.serial = serial
        token = base64.b64encode(f"admin:{password}".encode()).decode()
        bmc = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                documents = {
                    "/redfish/v1": {
                        "@odata.id": "/redfish/v1/",
                        "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot",
                        "Id": "RootService",
                        "Name": "Root Service",
                        "RedfishVersion": "1.5.0",
                        "Systems": {"@odata.id": "/redfish/v1/Systems"},
                    },
                    "/redfish/v1/Systems": {
                        "@odata.id": "/redfish/v1/Systems",
                        "@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
                        "Name": "Systems",
                        "Members@odata.count": 1,
                        "Members": [{"@odata.id": "/redfish/v1/Systems/1"}],
                    },
                    "/redfish/v1/Systems/1": {
                        "@odata.id": "/redfish/v1/Systems/1",
                        "@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem",
                        "Id": "1",
                        "Name": "server",
                        "PowerState": "On",
                        "SerialNumber": bmc.serial,
                    },
                }
                public = self.path.rstrip("/") == "/redfish/v1"  # as Redfish says
                if not public and self.headers.get("Authorization") != f"Basic {token}":
                    self.send_response(401)
                    self.end_headers()
                    return
                document = documents.get(self.path.rstrip("/"))
                body = json.dumps(document).encode()
                self.send_response(200 if document else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serial_bmc():
    bmc = SerialBmc(serial="OTHER-SERIAL", password=SECRET)
    yield bmc
    bmc.close()


def test_verify_reads_the_power_state_from_the_emulator_and_says_when_no_serial_is_reported(
    bmc_emulator,
):
    node = NodeFactory()
    bmc_set(
        node=node,
        url=bmc_emulator.url,
        system_id=bmc_emulator.system_id("pool-2"),
        username="admin",
        password=bmc_emulator.password,
    )

    result = bmc_verify(node=node, actor=Actor.system())

    assert result.reachable and result.power_state in ("on", "off")
    assert result.serial_reported == "" and result.serial_matches is None
    assert NO_SERIAL in result.detail
    assert not Drift.objects.filter(node=node).exists()
    bmc = Bmc.objects.get()
    assert bmc.verified_at is not None and bmc.verification == result.detail


def test_verify_through_the_api_with_an_env_reference(client, operator, bmc_emulator, monkeypatch):
    monkeypatch.setenv(VARIABLE, bmc_emulator.password)
    node = NodeFactory()
    bmc_set(
        node=node,
        url=bmc_emulator.url,
        system_id=bmc_emulator.system_id("pool-3"),
        username="admin",
        password_ref=f"env:{VARIABLE}",
    )

    answer = client.post(f"/api/v1/inventory/nodes/{node.pk}/bmc/verify/")

    assert answer.status_code == 200, answer.json()
    assert answer.json()["reachable"] is True
    assert answer.json()["power_state"] in ("on", "off")
    assert answer.json()["serial_expected"] == node.serial
    no_bmc = client.post(f"/api/v1/inventory/nodes/{NodeFactory().pk}/bmc/verify/")
    assert no_bmc.status_code == 400 and "no BMC" in no_bmc.json()["bmc"][0]


def test_verify_with_a_wrong_password_says_so_and_never_shows_it(bmc_emulator):
    node = NodeFactory()
    bmc_set(
        node=node,
        url=bmc_emulator.url,
        system_id=bmc_emulator.system_id("pool-4"),
        username="admin",
        password=SECRET,
    )

    result = bmc_verify(node=node, actor=Actor.system())

    assert not result.reachable and "refused the credentials" in result.detail
    assert SECRET not in result.detail and SECRET not in Bmc.objects.get().verification


def test_a_serial_that_is_not_the_inventorys_is_flagged_as_drift_and_resolved_once_it_agrees(
    serial_bmc,
):
    node = NodeFactory(serial="SN-INVENTORY")
    bmc_set(node=node, url=serial_bmc.url, username="admin", password=SECRET)

    flagged = bmc_verify(node=node, actor=Actor.system())

    assert flagged.reachable and flagged.power_state == "on"
    assert (flagged.serial_reported, flagged.serial_matches) == ("OTHER-SERIAL", False)
    drift = Drift.objects.get(node=node, resolved_at=None)
    assert (drift.kind, drift.expected, drift.observed) == (
        Drift.Kind.BMC_SERIAL_MISMATCH,
        "SN-INVENTORY",
        "OTHER-SERIAL",
    )
    again = bmc_verify(node=node, actor=Actor.system())
    assert again.serial_matches is False
    assert Drift.objects.filter(node=node, resolved_at=None).count() == 1

    serial_bmc.serial = "SN-INVENTORY"
    agreed = bmc_verify(node=node, actor=Actor.system())

    assert agreed.serial_matches is True and "matches" in agreed.detail
    assert not Drift.objects.filter(node=node, resolved_at=None).exists()


def test_the_admin_action_verifies_the_selected_nodes(client, superuser, serial_bmc):
    node = NodeFactory()
    bmc_set(node=node, url=serial_bmc.url, username="admin", password=SECRET)
    answer = client.post(
        "/admin/fabric/node/",
        {"action": "verify_bmc", "_selected_action": [node.pk]},
        follow=True,
    )
    assert answer.status_code == 200
    assert "OTHER-SERIAL differs" in answer.content.decode()
    assert Drift.objects.filter(node=node, kind=Drift.Kind.BMC_SERIAL_MISMATCH).exists()


# --- what is sold ---------------------------------------------------------------------------------


def test_the_order_form_offers_every_model_with_bmcs_and_shows_each_servers_specs(client):
    product = ProductFactory(kind="bare_metal", slug="bare-metal")
    for gpu_model, cores in (("NVIDIA H100 80GB HBM3", 112), ("NVIDIA A100-SXM4-80GB", 128)):
        node = NodeFactory(
            gpu_model=gpu_model, cpu_model="2x Xeon", cpu_cores=cores, memory_gb=2048
        )
        GPUFactory(node=node, index=0, model=gpu_model, memory_mb=81920)
        NetworkInterfaceFactory(node=node, infiniband=True)
        NetworkInterfaceFactory(node=node, speed_gbps=200)
        bmc_set(node=node, url="https://10.0.0.9", username="admin", password=SECRET)
    NodeFactory(gpu_model="NVIDIA L40S")  # no BMC: not sold as bare metal
    client.force_login(customer())

    page = client.get(f"/orders/new/{product.slug}/")

    choices = [value for value, _ in page.context["form"].fields["gpu_model"].choices]
    assert choices == ["NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3"]
    html = page.content.decode()
    assert 'id="server-specs"' in html
    for text in ("1 × NVIDIA H100 80GB HBM3, 80 GB each", "2x Xeon (112 cores)", "2048 GB"):
        assert text in html
    assert "1 × 400 Gb/s InfiniBand" in html and "1 × 200 Gb/s Ethernet" in html
    assert "NVIDIA L40S" not in html


def test_the_demo_fleets_h100_and_a100_servers_are_the_ones_given_bmcs():
    from fabric.testbed.fleet import fleet_bare_metal_nodes, fleet_generate

    fleet_generate(sites=1, nodes_per_site=96, seed=1, actor=Actor.system("task"))

    nodes = fleet_bare_metal_nodes()

    assert {n.node_type for n in nodes} == {"hgx-h100-8", "hgx-a100-8"}
    assert len(nodes) == 64
