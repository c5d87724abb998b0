"""Notebooks: JupyterLab on a GPU or a MIG slice, started through JupyterHub. Recipe:
authorize -> allocate (the capacity engine picks the GPU or slice) -> launch (the hub starts a
named server `o<order>`; its pre-spawn hook asks the portal, which answers with the GPU) ->
handover (the browser goes straight into JupyterLab). Ends on stop, idle culling, or a
spending limit; billed from ready to end like any order."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from catalog.errors import StepFatal, StepTransient
from catalog.models import Order, OrderState
from catalog.notebooks import hub
from catalog.offerings.base import AUTHORIZE, Advance, Offering, Report, Step, Wait
from catalog.pricing import gpu_hour_price
from fabric.capacity.engine import PROFILES, SLICE_UNITS
from fabric.selectors.capacity import allocation_gpu_uuids, reservation_held
from fabric.services.allocations import allocation_release, allocation_request
from fabric.services.quotas import quota_check
from fabric.services.reservations import reservation_claim
from portal.services.audit import Actor

S = OrderState
# Checks other apps add (courses: term, per-student quota, course budget). Each takes the
# order and returns why it may not run now, or "".
admission_checks: list = []
# How long a notebook may sit idle before it is stopped: the first answer (minutes) of these
# (courses set their own), else NOTEBOOK_IDLE_MINUTES.
idle_limits: list = []


def profiles() -> dict[str, dict]:
    return settings.NOTEBOOK_PROFILES


def _units(profile: dict) -> int:
    return PROFILES[profile["slice_profile"]] if profile["shape"] == "slice" else SLICE_UNITS


class Notebook(Offering):
    kind = "notebook"
    active_message = "Running. Open JupyterLab; stop it when you are done."
    steps = (
        AUTHORIZE,
        Step("allocate", "GPU allocated", (S.AUTHORIZED, S.QUEUED, S.ALLOCATING)),
        Step("launch", "JupyterLab starting", (S.LAUNCHING,)),
        Step("handover", "Ready", (S.READY,)),
    )
    recipe = {
        S.AUTHORIZED: "_allocate",
        S.QUEUED: "await_capacity",
        S.ALLOCATING: "_allocated",
        S.LAUNCHING: "_launch",
        S.READY: "hand_over",
    }

    def clean_spec(self, spec: dict) -> dict:
        key = str(spec.get("profile", ""))
        if key not in profiles():
            raise ValidationError({"profile": f"Choose one of {', '.join(profiles())}."})
        clean = {"profile": key, **{k: profiles()[key][k] for k in ("gpu_model", "shape")}}
        clean["slice_profile"] = profiles()[key].get("slice_profile", "")
        for key in ("course", "reservation"):  # a course's notebook; a lab session's held GPUs
            if spec.get(key):
                clean[key] = int(spec[key])
        return clean

    def admit(self, organization, spec: dict) -> None:
        now = timezone.now()
        quota_check(
            organization=organization,
            gpu_model=spec["gpu_model"],
            gpu_units=_units(spec),
            starts_at=now,
            ends_at=None,
            now=now,
        )

    def hourly_price(self, spec: dict) -> Decimal:
        price = gpu_hour_price(spec["gpu_model"], spec["shape"])
        return (price * _units(spec) / SLICE_UNITS).quantize(Decimal("0.01"))

    def _allocate(self, order: Order, report: Report) -> Advance:
        if order.allocation_id is None:
            spec, actor = order.spec, Actor.system("task")
            with transaction.atomic():
                held = reservation_held(
                    reservation_id=spec.get("reservation"), organization=order.organization
                )
                claimed = held and reservation_claim(
                    reservation=held,
                    shape=spec["shape"],
                    slice_profile=spec["slice_profile"],
                    actor=actor,
                )
                order.allocation = claimed or allocation_request(
                    organization=order.organization,
                    shape=spec["shape"],
                    gpu_model=spec["gpu_model"],
                    count=1,
                    slice_profile=spec["slice_profile"],
                    actor=actor,
                )
                order.save(update_fields=["allocation", "updated_at"])
        return Advance(S.QUEUED, f"allocation {order.allocation_id}")

    def _allocated(self, order: Order, report: Report) -> Advance:
        return Advance(S.LAUNCHING)  # no network or power step: the hub starts it

    def _launch(self, order: Order, report: Report) -> Advance | Wait:
        name, server = hub.hub_name(order.created_by_id), server_name(order)
        try:
            state = hub.server_state(name, server)
            if not state.exists:
                hub.user_ensure(name)
                hub.server_start(name, server, {"profile": order.spec["profile"]})
                state = hub.server_state(name, server)
        except hub.HubRefused as exc:
            raise StepFatal(str(exc)) from exc
        except hub.HubUnavailable as exc:
            raise StepTransient(str(exc)) from exc
        if state.ready:
            return Advance(S.READY, "JupyterLab is up")
        step = order.steps.get(key="launch")
        waited = timezone.now() - (step.started_at or timezone.now())
        if waited > timedelta(seconds=settings.NOTEBOOK_START_TIMEOUT_SECONDS):
            raise StepFatal(f"JupyterLab did not start within {waited.seconds} s.")
        report(key="launch", progress=50, detail="Starting JupyterLab on your GPU")
        return Wait(0.3, "starting")

    def refusal(self, order: Order) -> str:
        for check in admission_checks:
            if reason := check(order):
                return reason
        return ""

    def environment(self, order: Order) -> dict:
        uuids = allocation_gpu_uuids(allocation_id=order.allocation_id)
        env = {"CUDA_VISIBLE_DEVICES": ",".join(uuids)}
        if order.spec.get("slice_profile"):
            env["STOREFRONT_MIG_PROFILE"] = order.spec["slice_profile"]
        return env

    def teardown(self, order: Order) -> list[str]:
        try:
            hub.server_stop(hub.hub_name(order.created_by_id), server_name(order))
        except hub.HubUnavailable as exc:
            raise StepTransient(str(exc)) from exc
        except hub.HubRefused as exc:
            return [f"JupyterHub: {exc}"]
        if order.allocation_id:
            allocation_release(
                allocation=order.allocation, actor=Actor.system("task"), reason=f"{order} ended"
            )
        return []

    def handover(self, order: Order) -> dict:
        live = order.state in (S.READY, S.ACTIVE)
        url = hub.server_url(hub.hub_name(order.created_by_id), server_name(order))
        return {"url": url if live else "", "nodes": []}


def server_name(order: Order) -> str:
    return f"o{order.pk}"
