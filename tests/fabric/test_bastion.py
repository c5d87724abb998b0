"""The bastion's files: addresses from the network, sshd_config that Debian's sshd accepts,
authorized_keys granting each key its own order's servers on port 22 and nothing else."""

import ipaddress
import secrets
import subprocess

import pytest
from django.core.exceptions import ValidationError

from catalog.access import bastion_grants
from catalog.models import Order, OrderNode, OrderState
from catalog.services.products import product_upsert
from fabric.bastion import (
    AUTHORIZED_KEYS,
    CONFIG,
    bastion_files_write,
    bastion_host_key,
    bastion_of,
    probe_public_key,
    render_authorized_keys,
)
from fabric.models import NetworkSegment, TenantNetwork
from fabric.services.networks import network_bastion_key_set
from portal.services.audit import Actor
from portal.services.ssh_keys import ssh_key_add
from tests.catalog.lab import LAPTOP_KEY
from tests.fabric.factories import NodeFactory, SiteFactory
from tests.portal.factories import member, organization_of

OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHdTa7RQxs2+iFhw8t8JfXG6rbKqlEtdDVZPq9cf2BJX b@x"
pytestmark = pytest.mark.django_db


def _network(owner, *, access="10.210.9.0/28", segment="10.210.10.0/24"):
    network = TenantNetwork.objects.create(
        organization=organization_of(owner), site=SiteFactory(), label="x", access_prefix=access
    )
    NetworkSegment.objects.create(network=network, prefix=segment, gateway="10.210.10.1")
    return network


def _order(owner, network, addresses, state=OrderState.READY, spec=None):
    product = product_upsert(slug="bare-metal", name="Bare metal", kind="bare_metal", summary="-")
    order = Order.objects.create(
        organization=organization_of(owner), created_by=owner, product=product,
        offering="bare_metal", spec=spec or {"gpu_model": "H100", "nodes": 1}, hourly_quote=1,
        state=state, network=network,
    )  # fmt: skip
    for address in addresses:
        OrderNode.objects.create(
            order=order, node=NodeFactory(), hostname="h", address=address,
            metadata_nonce=secrets.token_hex(16),
        )  # fmt: skip
    return order


def test_the_bastion_sits_on_the_access_prefix_and_the_last_host_of_the_segment():
    network = _network(member())
    bastion = bastion_of(network)
    assert bastion.public == ipaddress.IPv4Interface("10.210.9.2/28")
    assert bastion.gateway == ipaddress.IPv4Address("10.210.9.1")
    assert bastion.tenant == ipaddress.IPv4Interface("10.210.10.254/24")
    assert bastion.jump == "jump@10.210.9.2"
    network.access_prefix = None
    assert bastion_of(network) is None


def test_each_key_reaches_port_22_of_its_own_orders_servers_only():
    a, b = member(), member()
    ssh_key_add(user=a, name="a", public_key=LAPTOP_KEY, actor=Actor(user=a))
    ssh_key_add(user=b, name="b", public_key=OTHER_KEY, actor=Actor(user=b))
    a_net, b_net = _network(a), _network(b, access="10.210.9.16/28", segment="10.210.11.0/24")
    _order(a, a_net, ["10.210.10.2", "10.210.10.3"])
    _order(b, b_net, ["10.210.11.2"])
    ended = _network(a, access="10.210.9.32/28", segment="10.210.12.0/24")
    _order(a, ended, ["10.210.12.2"], state=OrderState.TERMINATED)
    assert bastion_grants(network=ended) == {}  # an ended order grants nothing

    grants = bastion_grants(network=a_net)
    servers = {"10.210.10.2", "10.210.10.3"}
    assert grants == {LAPTOP_KEY: servers, probe_public_key(): servers}  # the ready check's
    text = render_authorized_keys({LAPTOP_KEY: grants[LAPTOP_KEY]})
    assert text == (
        'restrict,port-forwarding,permitopen="10.210.10.2:22",permitopen="10.210.10.3:22" '
        f"{' '.join(LAPTOP_KEY.split()[:2])}\n"
    )
    assert OTHER_KEY.split()[1] not in text
    assert render_authorized_keys({LAPTOP_KEY: set()}) == ""  # no server, no line


def test_an_order_that_chose_its_keys_grants_only_those():
    a = member()
    chosen = ssh_key_add(user=a, name="a", public_key=LAPTOP_KEY, actor=Actor(user=a))
    ssh_key_add(user=a, name="other", public_key=OTHER_KEY, actor=Actor(user=a))
    network = _network(a)
    _order(a, network, ["10.210.10.2"], spec={"ssh_keys": [chosen.fingerprint]})
    assert set(bastion_grants(network=network)) == {LAPTOP_KEY, probe_public_key()}


def test_a_key_line_that_is_not_a_key_is_refused_before_it_is_written():
    with pytest.raises(ValidationError):
        render_authorized_keys({'ssh-ed25519 AAAA",command="sh': {"10.210.10.2"}})
    with pytest.raises(ValueError):
        render_authorized_keys({LAPTOP_KEY: {"10.210.10.2:22,x"}})


def test_debian_sshd_accepts_the_rendered_configuration(tmp_path):
    a = member()
    ssh_key_add(user=a, name="a", public_key=LAPTOP_KEY, actor=Actor(user=a))
    network = _network(a)
    _order(a, network, ["10.210.10.2"])
    bastion = bastion_of(network)
    assert bastion_files_write(
        bastion=bastion, directory=tmp_path, grants=bastion_grants(network=network)
    )
    assert not bastion_files_write(  # nothing changed: nothing to restart
        bastion=bastion, directory=tmp_path, grants=bastion_grants(network=network)
    )
    assert bastion_host_key(tmp_path).startswith("ssh-ed25519 ")
    assert "10.210.10.2:22" in (tmp_path / AUTHORIZED_KEYS).read_text()
    checked = subprocess.run(
        ["/usr/sbin/sshd", "-t", "-f", str(tmp_path / CONFIG)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    config = (tmp_path / CONFIG).read_text()
    for line in ("PermitTTY no", "AllowTcpForwarding local", "PasswordAuthentication no"):
        assert line in config.splitlines()


def test_the_bastion_host_key_a_runner_reports_is_a_public_key_or_refused():
    network = _network(member())
    network_bastion_key_set(network=network, host_key=f"{OTHER_KEY} with a comment")
    network.refresh_from_db()
    assert network.bastion_host_key == " ".join(OTHER_KEY.split()[:2])
    with pytest.raises(ValidationError):
        network_bastion_key_set(network=network, host_key="ssh-ed25519 AAAA\nPermitOpen any")
    network.refresh_from_db()
    assert network.bastion_host_key == " ".join(OTHER_KEY.split()[:2])
