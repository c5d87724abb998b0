import uuid

import factory

from fabric.models import GPU, NetworkInterface, Node, Rack, Site


def _mac(n: int) -> str:
    return "02:00:" + ":".join(f"{(n >> shift) & 0xFF:02x}" for shift in (24, 16, 8, 0))


def _guid(n: int) -> str:
    return f"0002:c903:{(n >> 16) & 0xFFFF:04x}:{n & 0xFFFF:04x}"


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    name = factory.Sequence(lambda n: f"site-{n}")


class RackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rack

    site = factory.SubFactory(SiteFactory)
    name = factory.Sequence(lambda n: f"r{n:03d}")


class NodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Node

    name = factory.Sequence(lambda n: f"gpu-{n:04d}")
    serial = factory.Sequence(lambda n: f"SN{n:08d}")
    vendor = "Supermicro"
    model = "SYS-821GE-TNHR"
    node_type = "hgx-h100-8"
    gpu_model = "H100-SXM5-80GB"
    site = factory.SubFactory(SiteFactory)


class GPUFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GPU

    node = factory.SubFactory(NodeFactory)
    index = factory.Sequence(lambda n: n % 8)
    uuid = factory.LazyFunction(lambda: f"GPU-{uuid.uuid4()}")
    serial = factory.Sequence(lambda n: f"165{n:010d}")
    model = "H100-SXM5-80GB"
    memory_mb = 81559
    pci_bus_id = factory.Sequence(lambda n: f"0000:{n % 256:02x}:00.0")


class NetworkInterfaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NetworkInterface

    node = factory.SubFactory(NodeFactory)
    name = factory.Sequence(lambda n: f"eth{n}")
    mac = factory.Sequence(_mac)
    speed_gbps = 100

    class Params:
        infiniband = factory.Trait(
            kind=NetworkInterface.Kind.INFINIBAND,
            name=factory.Sequence(lambda n: f"ibp{n}"),
            ib_guid=factory.Sequence(_guid),
            speed_gbps=400,
        )
