"""The database itself refuses bad inventory: duplicates, overlaps, malformed identifiers."""

import pytest
from django.db import IntegrityError, transaction
from django.db.backends.postgresql.psycopg_any import NumericRange

from fabric.models import (
    GPU,
    Cable,
    CableEnd,
    NetworkInterface,
    Node,
    NumberAllocation,
    NumberPool,
    Prefix,
    Rack,
    Site,
    Switch,
    SwitchPort,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def rack():
    return Rack.objects.create(site=Site.objects.create(name="dc9"), name="r1")


def _node(rack, name, position, units=2, **kwargs):
    return Node.objects.create(
        name=name, serial=f"S-{name}", vendor="v", model="m", node_type="t", site=rack.site,
        rack=rack, rack_position=position, rack_units=units, **kwargs,
    )  # fmt: skip


def _refused(create):
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


def test_nodes_may_not_share_rack_units(rack):
    _node(rack, "a", 1, units=2)  # U1-U2
    _refused(lambda: _node(rack, "b", 2))  # U2-U3 overlaps
    _node(rack, "c", 3)  # U3-U4 is free


def test_identifiers_are_unique_and_well_formed(rack):
    node = _node(rack, "a", 1)
    gpu = dict(node=node, model="H100", memory_mb=80000, pci_bus_id="0:1")
    GPU.objects.create(index=0, uuid="GPU-" + "0" * 8 + "-0000-0000-0000-" + "0" * 12, **gpu)
    bad = {**gpu, "pci_bus_id": "0:2"}
    _refused(lambda: GPU.objects.create(index=1, uuid="GPU-not-a-uuid", **bad))
    nic = dict(node=node, speed_gbps=400)
    NetworkInterface.objects.create(name="eth0", mac="02:00:00:00:00:01", **nic)
    _refused(lambda: NetworkInterface.objects.create(name="eth1", mac="02:00:00:00:00:01", **nic))
    _refused(lambda: NetworkInterface.objects.create(name="eth2", mac="02-00-00-00-00-02", **nic))
    _refused(
        lambda: NetworkInterface.objects.create(
            name="eth3", mac="02:00:00:00:00:03", ib_guid="0000:0000:0000:0001", **nic
        )
    )  # a GUID on an Ethernet NIC


def test_a_port_or_nic_cannot_be_cabled_twice(rack):
    node = _node(rack, "a", 1)
    nic = NetworkInterface.objects.create(node=node, name="ib0", mac="02:00:00:00:00:01")
    switch = Switch.objects.create(
        name="leaf", site=rack.site, vendor="Arista", platform="arista_eos",
        management_address="10.0.0.1", role="leaf",
    )  # fmt: skip
    port = SwitchPort.objects.create(switch=switch, name="p1")
    first = Cable.objects.create(label="C1")
    CableEnd.objects.create(cable=first, side="a", interface=nic)
    CableEnd.objects.create(cable=first, side="b", port=port)
    second = Cable.objects.create(label="C2")
    _refused(lambda: CableEnd.objects.create(cable=second, side="a", port=port))
    _refused(lambda: CableEnd.objects.create(cable=second, side="a", interface=nic))
    _refused(lambda: CableEnd.objects.create(cable=second, side="a"))  # neither end


def test_prefixes_and_number_pools_never_overlap(rack):
    site = rack.site
    Prefix.objects.create(site=site, vrf="mgmt", prefix="10.1.0.0/16", role="management")
    _refused(lambda: Prefix.objects.create(vrf="mgmt", prefix="10.1.2.0/24", role="management"))
    Prefix.objects.create(vrf="other", prefix="10.1.2.0/24", role="tenant")  # another VRF is fine
    NumberPool.objects.create(site=site, kind="vlan", name="a", values=NumericRange(100, 200))
    _refused(
        lambda: NumberPool.objects.create(
            site=site, kind="vlan", name="b", values=NumericRange(150, 250)
        )
    )
    pool = NumberPool.objects.create(site=site, kind="vni", name="c", values=NumericRange(150, 250))
    NumberAllocation.objects.create(pool=pool, site=site, kind="vni", value=160)
    _refused(lambda: NumberAllocation.objects.create(pool=pool, site=site, kind="vni", value=160))
