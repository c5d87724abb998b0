"""Bare metal: N whole servers of a GPU model, optionally under one leaf, rail group or
InfiniBand island. Recipe: authorize -> allocate -> attach the tenant network -> Redfish power
on with a one-time PXE boot -> ready check -> handover (addresses and the ssh command; keys
from the per-node metadata endpoint)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from catalog.models import Order, OrderNode, OrderState
from catalog.offerings.base import (
    AUTHORIZE,
    Advance,
    Offering,
    Step,
    StepFatal,
    StepTransient,
    Wait,
)
from catalog.pricing import gpu_hour_price
from fabric import selectors as fabric_nodes
from fabric.capacity.engine import SLICE_UNITS
from fabric.models import Allocation
from fabric.networks.push import PushFailed
from fabric.power.base import ON, PowerFatal, PowerTransient
from fabric.services.allocations import allocation_release, allocation_request, gpus_per_node
from fabric.services.networks import network_attach, network_create, network_delete
from fabric.services.power import node_power_off, node_power_on, node_power_state
from fabric.services.quotas import quota_check
from portal.services.audit import Actor

S = OrderState
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
        topology = str(spec.get("topology") or Allocation.Topology.ANY)
        if topology not in Allocation.Topology.values:
            errors["topology"] = f"Choose one of {', '.join(Allocation.Topology.values)}."
        if not gpu_model:
            errors["gpu_model"] = "Choose a GPU model."
        elif gpu_model not in fabric_nodes.bare_metal_models():
            errors["gpu_model"] = f"{gpu_model} servers are not offered as bare metal."
        else:
            try:
                gpus_per_node(gpu_model)
            except ValidationError as error:
                errors.update(error.message_dict)
        if errors:
            raise ValidationError(errors)
        return {"gpu_model": gpu_model, "nodes": nodes, "topology": topology}

    def admit(self, organization, spec: dict) -> None:
        units = spec["nodes"] * gpus_per_node(spec["gpu_model"]) * SLICE_UNITS
        now = timezone.now()
        quota_check(
            organization=organization, gpu_model=spec["gpu_model"], gpu_units=units,
            starts_at=now, ends_at=None, now=now,
        )  # fmt: skip

    def hourly_price(self, spec: dict) -> Decimal:
        gpus = gpus_per_node(spec["gpu_model"]) * spec["nodes"]
        return gpu_hour_price(spec["gpu_model"], "node") * gpus

    # --- the recipe ----------------------------------------------------------------------------

    def run(self, order: Order) -> Advance | Wait:
        return {
            S.AUTHORIZED: self._allocate,
            S.QUEUED: self.await_capacity,
            S.ALLOCATING: self._take_nodes,
            S.NETWORKING: self._network,
            S.POWERING: self._power,
            S.LAUNCHING: self._ready_check,
            S.READY: lambda o: Advance(S.ACTIVE, "handed over"),
        }[order.state](order)

    def _allocate(self, order: Order) -> Advance:
        if order.allocation_id is None:
            spec = order.spec
            with transaction.atomic():
                allocation = allocation_request(
                    organization=order.organization, shape=Allocation.Shape.NODE,
                    gpu_model=spec["gpu_model"], count=spec["nodes"], actor=_actor(order),
                    topology=spec["topology"],
                    topology_required=spec["topology"] != Allocation.Topology.ANY,
                )  # fmt: skip
                order.allocation = allocation
                order.save(update_fields=["allocation", "updated_at"])
        return Advance(S.QUEUED, f"allocation {order.allocation_id}")

    def _take_nodes(self, order: Order) -> Advance:
        nodes = fabric_nodes.allocation_nodes(allocation_id=order.allocation_id)
        for node in nodes:
            OrderNode.objects.get_or_create(
                order=order, node=node,
                defaults={"hostname": node.name, "metadata_nonce": _nonce()},
            )  # fmt: skip
        return Advance(S.NETWORKING, ", ".join(n.name for n in nodes))

    def _network(self, order: Order) -> Advance:
        from catalog.services.orders import order_step_progress

        actor = _actor(order)
        nodes = [n.node for n in order.nodes.select_related("node__site")]
        if order.network_id is None:
            with transaction.atomic():
                order.network = network_create(
                    organization=order.organization, site=nodes[0].site,
                    label=f"order {order.pk}", actor=actor,
                )  # fmt: skip
                order.save(update_fields=["network", "updated_at"])
        pending = fabric_nodes.unattached_interfaces(network=order.network, nodes=nodes)
        if pending:
            order_step_progress(
                order=order, key="network", progress=30,
                detail=f"Configuring {len(pending)} switch port(s)",
            )  # fmt: skip
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

    def _power(self, order: Order) -> Advance | Wait:
        from catalog.services.orders import order_step_progress

        now = timezone.now()
        timeout = timedelta(seconds=settings.ORDER_POWER_TIMEOUT_SECONDS)
        order_nodes = list(order.nodes.select_related("node"))
        for order_node in order_nodes:
            if order_node.power_requested_at is None:
                _bmc(node_power_on, node=order_node.node, pxe=True)
                order_node.power_requested_at = timezone.now()
                order_node.save(update_fields=["power_requested_at"])
        for order_node in order_nodes:
            if order_node.powered_on_at is not None:
                continue
            if _bmc(node_power_state, node=order_node.node) == ON:
                order_node.powered_on_at = timezone.now()
                order_node.save(update_fields=["powered_on_at"])
            elif now - order_node.power_requested_at > timeout:
                raise StepFatal(
                    f"{order_node.hostname} did not power on within {timeout.seconds} s."
                )
        on = sum(1 for n in order_nodes if n.powered_on_at)
        detail = f"{on} of {len(order_nodes)} server(s) powered on"
        order_step_progress(
            order=order, key="power", progress=int(100 * on / len(order_nodes)), detail=detail
        )
        if on < len(order_nodes):
            return Wait(settings.ORDER_POWER_POLL_SECONDS, detail)
        return Advance(S.LAUNCHING, detail)

    def _ready_check(self, order: Order) -> Advance:
        """A server is ready when its BMC still reports it on after the boot and it has its
        address on the tenant network (its OS fetches its keys from the metadata endpoint)."""
        for order_node in order.nodes.select_related("node"):
            if order_node.ready_at:
                continue
            if _bmc(node_power_state, node=order_node.node) != ON:
                raise StepFatal(f"{order_node.hostname} switched off while booting.")
            if order_node.address is None:
                raise StepFatal(f"{order_node.hostname} has no address on the tenant network.")
            order_node.ready_at = timezone.now()
            order_node.save(update_fields=["ready_at"])
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
            except PowerTransient:
                raise
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
        nodes = [
            {
                "hostname": n.hostname,
                "address": n.address,
                "ssh": f"ssh {SSH_USER}@{n.address}" if n.address else "",
                "state": "ready" if n.ready_at else ("on" if n.powered_on_at else "starting"),
            }
            for n in order.nodes.all()
        ]
        return {"user": SSH_USER, "nodes": nodes}


def _nonce() -> str:
    import secrets

    return secrets.token_hex(16)


def _bmc(call, **kwargs):
    """A BMC call: PowerTransient is retried by the task with backoff; PowerFatal ends the
    order with the BMC's reason."""
    try:
        return call(**kwargs)
    except PowerFatal as exc:
        raise StepFatal(str(exc)) from exc
    except PowerTransient as exc:
        raise StepTransient(str(exc)) from exc
