"""Bare metal: N whole servers of a GPU model, optionally under one leaf, rail group or
InfiniBand island. Recipe: authorize -> allocate -> attach the tenant network -> Redfish power
on with a one-time PXE boot -> ready check -> handover (addresses, the ssh command and the host
keys the server reported; the customer's keys from the per-node metadata endpoint).

The ready check (settings.ORDER_BOOT_CHECK: by default the servers that boot from the portal):
each server's cloud-init phoned home its sshd host keys to its signed URL (catalog.metadata),
and SSH answers on the address the customer is given, through the network's bastion as the
customer goes (fabric.bastion), with one of those keys; within ORDER_BOOT_TIMEOUT_SECONDS of
power on, else the order fails. A server not checked is ready at power on with an address."""

from __future__ import annotations

import base64
import contextlib
import logging
import secrets
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import paramiko
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from catalog.access import order_bastion, ssh_line
from catalog.errors import StepFatal, StepTransient
from catalog.metadata import host_key_lines
from catalog.models import Order, OrderNode, OrderState
from catalog.offerings.base import AUTHORIZE, Advance, Offering, Report, Step, Wait
from catalog.pricing import gpu_hour_price
from fabric.bastion import Bastion, probe_connect, probe_open
from fabric.capacity.engine import SLICE_UNITS
from fabric.choices import AllocationShape, AllocationTopology, PowerState
from fabric.errors import PowerFatal, PowerTransient, PushFailed
from fabric.selectors import inventory as fabric_nodes
from fabric.selectors.capacity import queue_preview
from fabric.services.allocations import (
    allocation_release,
    allocation_request,
    gpus_per_node,
)
from fabric.services.networks import network_attach, network_create, network_delete
from fabric.services.power import node_power_off, node_power_on, node_power_state
from fabric.services.provisioning import provisioned_node_ids
from fabric.services.quotas import quota_check
from portal.services.audit import Actor

S = OrderState
logger = logging.getLogger(__name__)
MAX_NODES = 64
SSH_USER = "ubuntu"


def _actor(order: Order) -> Actor:
    return Actor.system("task")


class BareMetal(Offering):
    kind = "bare_metal"
    active_message = "Running. Connect with the ssh commands below."
    steps = (
        AUTHORIZE,
        Step("allocate", "Servers allocated", (S.AUTHORIZED, S.QUEUED, S.ALLOCATING)),
        Step("network", "Tenant network attached", (S.NETWORKING,)),
        Step("power", "Powered on, booting over PXE", (S.POWERING,)),
        Step("ready", "Ready check", (S.LAUNCHING,)),
        Step("handover", "Handed over", (S.READY,)),
    )
    recipe = {
        S.AUTHORIZED: "_allocate",
        S.QUEUED: "await_capacity",
        S.ALLOCATING: "_take_nodes",
        S.NETWORKING: "_network",
        S.POWERING: "_power",
        S.LAUNCHING: "_ready_check",
        S.READY: "hand_over",
    }

    # --- ordering ------------------------------------------------------------------------------

    def clean_spec(self, spec: dict) -> dict:
        errors = {}
        gpu_model = str(spec.get("gpu_model", "")).strip()
        try:
            nodes = int(spec.get("nodes", 1))
        except (TypeError, ValueError):
            nodes = 0
        if not 1 <= nodes <= MAX_NODES:
            errors["nodes"] = f"Order 1 to {MAX_NODES} servers."
        topology = str(spec.get("topology") or AllocationTopology.ANY)
        if topology not in AllocationTopology.values:
            errors["topology"] = f"Choose one of {', '.join(AllocationTopology.values)}."
        if not gpu_model:
            errors["gpu_model"] = "Choose a GPU model."
        elif gpu_model not in fabric_nodes.bare_metal_models():
            errors["gpu_model"] = f"{gpu_model} servers are not offered as bare metal."
        else:
            try:
                gpus_per_node(gpu_model)
            except ValidationError as error:
                errors.update(error.message_dict)
        site = str(spec.get("site") or "").strip()
        if "gpu_model" not in errors and "nodes" not in errors:
            errors.update(_fleet_errors(gpu_model, nodes, site))
        keys = spec.get("ssh_keys")
        if keys is not None and (
            not isinstance(keys, list | tuple)
            or not keys
            or not all(isinstance(k, str) and k.startswith("SHA256:") for k in keys)
        ):
            errors["ssh_keys"] = "Choose at least one of your SSH keys (SHA256 fingerprints)."
        if errors:
            raise ValidationError(errors)
        clean = {"gpu_model": gpu_model, "nodes": nodes, "topology": topology}
        if site:
            clean["site"] = site
        if keys is not None:
            clean["ssh_keys"] = sorted(set(keys))
        return clean

    def admit(self, organization, spec: dict) -> None:
        units = spec["nodes"] * gpus_per_node(spec["gpu_model"]) * SLICE_UNITS
        now = timezone.now()
        quota_check(
            organization=organization,
            gpu_model=spec["gpu_model"],
            gpu_units=units,
            starts_at=now,
            ends_at=None,
            now=now,
        )

    def standing(self, spec: dict) -> dict:
        """Whether `spec` (cleaned) would start now or wait, and where it would stand in the
        queue (fabric.selectors.capacity.queue_preview); nothing is requested. At a chosen
        site it waits for servers there."""
        units = spec["nodes"] * gpus_per_node(spec["gpu_model"]) * SLICE_UNITS
        return queue_preview(
            gpu_model=spec["gpu_model"],
            nodes=spec["nodes"],
            units=units,
            site=spec.get("site", ""),
            needs_bmc=True,
        )

    def hourly_price(self, spec: dict) -> Decimal:
        gpus = gpus_per_node(spec["gpu_model"]) * spec["nodes"]
        return gpu_hour_price(spec["gpu_model"], "node") * gpus

    # --- the recipe ----------------------------------------------------------------------------

    def _allocate(self, order: Order, report: Report) -> Advance:
        if order.allocation_id is None:
            spec = order.spec
            with transaction.atomic():
                allocation = allocation_request(
                    organization=order.organization,
                    shape=AllocationShape.NODE,
                    gpu_model=spec["gpu_model"],
                    count=spec["nodes"],
                    actor=_actor(order),
                    topology=spec["topology"],
                    topology_required=spec["topology"] != AllocationTopology.ANY,
                    site=spec.get("site", ""),
                    needs_bmc=True,  # only servers whose power and boot the platform drives
                )
                order.allocation = allocation
                order.save(update_fields=["allocation", "updated_at"])
        return Advance(S.QUEUED, f"allocation {order.allocation_id}")

    def _take_nodes(self, order: Order, report: Report) -> Advance:
        nodes = fabric_nodes.allocation_nodes(allocation_id=order.allocation_id)
        for node in nodes:
            OrderNode.objects.get_or_create(
                order=order,
                node=node,
                defaults={"hostname": node.name, "metadata_nonce": _nonce()},
            )
        return Advance(S.NETWORKING, ", ".join(n.name for n in nodes))

    def _network(self, order: Order, report: Report) -> Advance:
        actor = _actor(order)
        nodes = [n.node for n in order.nodes.select_related("node__site")]
        if order.network_id is None:
            with transaction.atomic():
                order.network = network_create(
                    organization=order.organization,
                    site=nodes[0].site,
                    label=f"order {order.pk}",
                    actor=actor,
                )
                order.save(update_fields=["network", "updated_at"])
        pending = fabric_nodes.unattached_interfaces(network=order.network, nodes=nodes)
        if pending:
            report(key="network", progress=30, detail=f"Configuring {len(pending)} switch port(s)")
            try:
                network_attach(network=order.network, interfaces=pending, actor=actor)
            except PushFailed as exc:
                raise StepFatal(f"A switch refused the network configuration. {exc}") from exc
            except ValidationError as exc:
                raise StepFatal(" ".join(exc.messages)) from exc
        addresses = fabric_nodes.node_addresses(network=order.network)
        for order_node in order.nodes.all():
            order_node.address = addresses.get(order_node.node_id)
            order_node.save(update_fields=["address"])
        return Advance(S.POWERING, f"network {order.network.device_name}")

    def _power(self, order: Order, report: Report) -> Advance | Wait:
        now = timezone.now()
        timeout = timedelta(seconds=settings.ORDER_POWER_TIMEOUT_SECONDS)
        order_nodes = list(order.nodes.select_related("node").filter(powered_off_at=None))
        for order_node in order_nodes:
            if order_node.power_requested_at is None:
                with _bmc_errors():
                    node_power_on(node=order_node.node, pxe=True)
                order_node.power_requested_at = timezone.now()
                order_node.save(update_fields=["power_requested_at"])
        for order_node in order_nodes:
            if order_node.powered_on_at is not None:
                continue
            with _bmc_errors():
                state = node_power_state(node=order_node.node)
            if state == PowerState.ON:
                order_node.powered_on_at = timezone.now()
                order_node.save(update_fields=["powered_on_at"])
            elif now - order_node.power_requested_at > timeout:
                raise StepFatal(
                    f"{order_node.hostname} did not power on within {timeout.seconds} s."
                )
        on = sum(1 for n in order_nodes if n.powered_on_at)
        detail = f"{on} of {len(order_nodes)} server(s) powered on"
        report(key="power", progress=int(100 * on / len(order_nodes)), detail=detail)
        if on < len(order_nodes):
            return Wait(settings.ORDER_POWER_POLL_SECONDS, detail)
        return Advance(S.LAUNCHING, detail)

    def _ready_check(self, order: Order, report: Report) -> Advance | Wait:
        """A server is ready when its BMC still reports it on after the boot, it has its
        address on the tenant network, and (if its boot is checked: ORDER_BOOT_CHECK) it
        phoned home its host keys and SSH answers on that address with one of them, through
        the bastion; the servers are checked in parallel."""
        timeout = timedelta(seconds=settings.ORDER_BOOT_TIMEOUT_SECONDS)
        order_nodes = list(order.nodes.select_related("node").filter(powered_off_at=None))
        checked = _boot_checked({n.node_id for n in order_nodes})
        pending = [n for n in order_nodes if not n.ready_at]
        for order_node in pending:
            with _bmc_errors():
                state = node_power_state(node=order_node.node)
            if state != PowerState.ON:
                raise StepFatal(f"{order_node.hostname} switched off while booting.")
            if order_node.address is None:
                raise StepFatal(f"{order_node.hostname} has no address on the tenant network.")
        booted = [n for n in pending if n.node_id in checked and n.phoned_home_at]
        answers = ssh_host_key_checks(
            [(n.address, n.host_keys) for n in booted], bastion=order_bastion(order)
        )
        reasons = {n.pk: reason for n, reason in zip(booted, answers, strict=True)}
        waiting = []
        for order_node in pending:
            if order_node.node_id in checked:
                reason = reasons.get(order_node.pk, "its phone-home has not arrived")
                if reason:
                    since = order_node.powered_on_at or order_node.power_requested_at
                    if since and timezone.now() - since > timeout:
                        raise StepFatal(
                            f"{order_node.hostname} did not boot within "
                            f"{int(timeout.total_seconds())} s: {reason}."
                        )
                    waiting.append(f"{order_node.hostname}: {reason}")
                    continue
            order_node.ready_at = timezone.now()
            order_node.save(update_fields=["ready_at"])
        ready = len(order_nodes) - len(waiting)
        detail = f"{ready} of {len(order_nodes)} server(s) booted and answering SSH"
        if waiting:
            report(
                key="ready",
                progress=int(100 * ready / len(order_nodes)),
                detail=f"{detail}; {waiting[0]}",
            )
            return Wait(settings.ORDER_POWER_POLL_SECONDS, f"{detail}; {waiting[0]}")
        return Advance(S.READY, "all servers ready")

    # --- the end -------------------------------------------------------------------------------

    def teardown(self, order: Order) -> list[str]:
        notes = []
        actor = _actor(order)
        for order_node in order.nodes.select_related("node").filter(
            power_requested_at__isnull=False, powered_off_at=None
        ):
            try:
                node_power_off(node=order_node.node)
            except PowerTransient as exc:
                raise StepTransient(str(exc)) from exc
            except PowerFatal as exc:
                notes.append(f"{order_node.hostname}: {exc} The operator was told.")
            order_node.powered_off_at = timezone.now()
            order_node.save(update_fields=["powered_off_at"])
        if order.network_id and order.network.state == order.network.State.ACTIVE:
            try:
                network_delete(network=order.network, actor=actor)
            except PushFailed as exc:
                raise StepTransient(f"Detaching the network failed: {exc}") from exc
        if order.allocation_id:
            allocation_release(allocation=order.allocation, actor=actor, reason=f"{order} ended")
        return notes

    def handover(self, order: Order) -> dict:
        bastion = order_bastion(order)
        nodes = [
            {
                "hostname": n.hostname,
                "address": n.address,
                "ssh": "" if n.powered_off_at else ssh_line(n, user=SSH_USER, bastion=bastion),
                "state": _node_state(n),
                "host_keys": host_key_lines(n, n.address),
            }
            for n in order.nodes.all()
        ]
        jump_key = order.network.bastion_host_key if bastion else ""
        return {
            "user": SSH_USER,
            "jump": bastion.jump if bastion else "",
            # known_hosts for the bastion itself, once its runner said which key it has
            "jump_known_hosts": f"{bastion.public.ip} {jump_key}" if jump_key else "",
            "nodes": nodes,
        }


def _fleet_errors(gpu_model: str, nodes: int, site: str) -> dict:
    """More servers than exist (with a BMC, of the model, at the site or anywhere) is refused
    with how many do; a site without such servers is not one to choose."""
    by_site = {
        row["site_name"]: row["servers"]
        for row in fabric_nodes.bare_metal_sites()
        if row["gpu_model"] == gpu_model
    }
    if site and site not in by_site:
        return {"site": f"{site} has no {gpu_model} servers sold as bare metal."}
    exist = by_site[site] if site else sum(by_site.values())
    if nodes > exist:
        where = f" at {site}" if site else ""
        return {"nodes": f"Only {exist} {gpu_model} server(s) exist{where}; order at most {exist}."}
    return {}


def _node_state(order_node: OrderNode) -> str:
    if order_node.powered_off_at:
        return "ended"
    if order_node.ready_at:
        return "ready"
    if order_node.phoned_home_at:
        return "booted"
    return "on" if order_node.powered_on_at else "starting"


def _nonce() -> str:
    return secrets.token_hex(16)


def _boot_checked(node_ids: set[int]) -> set[int]:
    """The servers the ready check watches boot (settings.ORDER_BOOT_CHECK)."""
    if settings.ORDER_BOOT_CHECK == "all":
        return node_ids
    if settings.ORDER_BOOT_CHECK == "none":
        return set()
    return provisioned_node_ids(node_ids=node_ids)


def ssh_host_key_checks(
    targets: list[tuple[str, dict]], *, bastion: Bastion | None = None, timeout: float = 5
) -> list[str]:
    """For each (address, host keys): '' when an SSH server answers on the address's port 22
    with one of the host keys (type -> "type base64", what the server phoned home), else why
    not. Through `bastion` (the customer's way in, with the portal's probe key: one connection,
    a channel per server) when given; the servers in parallel. Only the key exchange runs (no
    login): the client asks for the reported key types only and compares the key offered."""
    client = None
    if bastion is not None and targets:
        try:
            client = probe_connect(bastion, timeout=timeout)
        except (OSError, paramiko.SSHException) as exc:
            logger.warning("ready check: the bastion %s: %s", bastion.public.ip, exc)
            return [f"the bastion {bastion.public.ip} does not answer yet"] * len(targets)
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(targets)))) as pool:
            return list(
                pool.map(lambda t: _host_key_check(*t, client=client, timeout=timeout), targets)
            )
    finally:
        if client is not None:
            client.close()


def ssh_host_key_check(
    address: str, host_keys: dict, *, bastion: Bastion | None = None, timeout: float = 5
) -> str:
    return ssh_host_key_checks([(address, host_keys)], bastion=bastion, timeout=timeout)[0]


def _host_key_check(address: str, host_keys: dict, *, client, timeout: float) -> str:
    wanted = {key_type: public_key.split()[1] for key_type, public_key in host_keys.items()}
    if not wanted:
        return "no host key was reported"
    try:
        if client is None:
            sock = socket.create_connection((address, 22), timeout=timeout)
        else:
            sock = probe_open(client, address, timeout=timeout)
    except (OSError, paramiko.SSHException) as exc:
        via = " through the bastion" if client else ""
        return f"SSH does not answer on {address}{via}: {getattr(exc, 'strerror', None) or exc}"
    transport = paramiko.Transport(sock)
    try:
        options = transport.get_security_options()
        offered = [t for t in options.key_types if t in wanted or _rsa_sha2(t, wanted)]
        if not offered:
            return f"no reported host key type is one paramiko speaks ({', '.join(wanted)})"
        options.key_types = offered
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
        if wanted.get(key.get_name()) != base64.b64encode(key.asbytes()).decode():
            return f"SSH on {address} answered with a host key the server did not report"
        return ""
    except (paramiko.SSHException, OSError, EOFError) as exc:
        return f"SSH on {address} did not complete its key exchange: {exc}"
    finally:
        transport.close()


def _rsa_sha2(key_type: str, wanted: dict) -> bool:
    """An RSA host key is offered under the rsa-sha2-* signature names too."""
    return key_type.startswith("rsa-sha2-") and "ssh-rsa" in wanted


@contextlib.contextmanager
def _bmc_errors() -> Iterator[None]:
    """fabric's power errors as the order's: a BMC that may answer later is retried by the task
    with backoff (StepTransient); one that refused ends the order with its reason (StepFatal)."""
    try:
        yield
    except PowerFatal as exc:
        raise StepFatal(str(exc)) from exc
    except PowerTransient as exc:
        raise StepTransient(str(exc)) from exc
