"""Orders: place (gate, validate, quote), advance one step at a time (each step a Celery task
chained from the last), terminate, fail with compensation. Steps come from the order's
offering (catalog.offerings); this module owns the lifecycle, the progress rows, the live
events and the money (authorization before anything is built, billing from ready to end)."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.errors import PaymentError, PaymentUnavailable
from billing.services.purchases import purchase_authorize
from catalog import realtime
from catalog.errors import StepFatal, StepTransient
from catalog.models import Order, OrderEvent, OrderState, OrderStep, Product
from catalog.offerings import offering_for
from catalog.offerings.base import Advance, Report, Wait
from catalog.selectors.storefront import purchase_check
from catalog.states import (
    BEFORE_READY,
    TERMINAL,
    order_transition,
    step_transition,
    steps_transition,
)
from portal.celery import DEPENDENCY_ERRORS, QUEUE_ERRORS, dependency_down, task
from portal.models import Membership, Organization, User
from portal.services.audit import Actor, audit_record

S = OrderState
LOCK_CLASS = 0x4F52  # "OR": the advisory-lock namespace of orders
logger = logging.getLogger(__name__)


def _enqueue_on_commit(order_id: int, countdown: float = 0, *, or_raise: bool = False) -> None:
    """Queue the order's next run once the transaction commits. If the task queue cannot take
    it, the order is marked delayed and the resume sweep sends it again; with `or_raise` (the
    running task itself) the error goes on to the task, which waits and retries at once."""

    def send() -> None:
        try:
            task("catalog.tasks.order_advance").apply_async(
                (order_id,), countdown=countdown or None
            )
        except QUEUE_ERRORS as exc:
            if or_raise:
                raise
            order_delay_note(order_id=order_id, error=exc)

    transaction.on_commit(send)


def order_nudge(*, order_id: int) -> None:
    """Run the order's step as soon as the transaction commits: what it polls for has just
    been reported (the last server of a bare-metal order phoned home). A run already going
    answers busy; the polling chain goes on as before."""
    _enqueue_on_commit(order_id)


# --- placing --------------------------------------------------------------------------------


@transaction.atomic
def order_place(*, membership: Membership, product: Product, spec: dict, actor: Actor) -> Order:
    """Check the tenant may buy, validate and quote the spec, and start the recipe."""
    purchase_check(user=membership.user, membership=membership)
    return order_create(
        organization=membership.organization,
        user=membership.user,
        product=product,
        spec=spec,
        actor=actor,
    )


@transaction.atomic
def order_create(
    *, organization: Organization, user: User, product: Product, spec: dict, actor: Actor
) -> Order:
    """Validate, admit (quota) and quote `spec`, create the order and start its recipe. The
    caller has decided that `user` may order for `organization` (order_place: a member's
    role and the purchase gate; a course: its enrolment and rules)."""
    if not product.is_active:
        raise ValidationError({"product": f"{product.name} is not for sale."})
    offering = offering_for(product.kind)
    clean = offering.clean_spec(spec)
    offering.admit(organization, clean)
    order = Order.objects.create(
        organization=organization,
        created_by=user,
        product=product,
        offering=offering.kind,
        spec=clean,
        hourly_quote=offering.hourly_price(clean),
        message="Order placed.",
    )
    OrderStep.objects.bulk_create(
        OrderStep(order=order, key=step.key, label=step.label, position=index)
        for index, step in enumerate(offering.steps)
    )
    OrderEvent.objects.create(order=order, to_state=S.PLACED, actor=actor.label)
    audit_record(
        actor=actor,
        organization=organization,
        action="order.place",
        target=str(order),
        detail={"product": product.slug, **clean},
    )
    _publish_on_commit(order)
    _enqueue_on_commit(order.pk)
    return order


# --- progress -------------------------------------------------------------------------------


def _publish_on_commit(order: Order) -> None:
    transaction.on_commit(lambda: realtime.order_publish(order_id=order.pk))


def order_delay_note(*, order_id: int, error: BaseException) -> None:
    """The order waits on a platform service that is slow or away (`error` says which): the
    order page says "delayed, retrying" from when it started until a step goes through again
    (order_delay_clear). Best effort: when the database is the one away nothing can be written,
    and the page's rule on stale progress tells the tenant instead."""
    reason = f"{dependency_down(error)} is slow or not answering"
    logger.warning("order %s delayed: %s (%r)", order_id, reason, error)
    try:
        Order.objects.filter(pk=order_id, cleaned_up_at=None).update(
            delayed_since=Coalesce("delayed_since", timezone.now()), delay_reason=reason
        )
    except DEPENDENCY_ERRORS:
        logger.warning("order %s: delay not recorded", order_id, exc_info=True)
        return
    realtime.order_publish(order_id=order_id)


def order_delay_clear(*, order_id: int) -> bool:
    """A step went through: the order is no longer delayed. Returns whether it was."""
    cleared = Order.objects.filter(pk=order_id, delayed_since__isnull=False).update(
        delayed_since=None, delay_reason=""
    )
    if cleared:
        realtime.order_publish(order_id=order_id)
    return bool(cleared)


def order_step_progress(*, order: Order, key: str, progress: int, detail: str) -> None:
    """A step reports how far it got (shown live on the order page)."""
    now = timezone.now()
    with transaction.atomic():
        step = OrderStep.objects.select_for_update().get(order=order, key=key)
        if step.state != OrderStep.State.RUNNING:
            step_transition(step=step, to=OrderStep.State.RUNNING)
        step.started_at = step.started_at or now
        step.progress = max(step.progress, min(int(progress), 99))
        step.detail = detail[:300]
        step.save(update_fields=["state", "started_at", "progress", "detail"])
        Order.objects.filter(pk=order.pk).update(message=detail[:300], updated_at=now)
        _publish_on_commit(order)


def _progress_reporter(order: Order) -> Report:
    """What an offering's steps report progress through (order_step_progress for `order`)."""
    return functools.partial(order_step_progress, order=order)


def _steps_move(order: Order, to: str, detail: str) -> None:
    """Mark the steps before the one `to` runs in done, and that one running."""
    offering = offering_for(order.offering)
    now = timezone.now()
    keys = [step.key for step in offering.steps]
    current = offering.step_for(to)
    upto = keys.index(current.key) if current else len(keys)
    for step in OrderStep.objects.select_for_update().filter(order=order):
        index = keys.index(step.key)
        if index < upto and step.state != OrderStep.State.DONE:
            step_transition(step=step, to=OrderStep.State.DONE)
            step.progress = 100
            step.started_at = step.started_at or now
            step.finished_at = now
            if index == upto - 1 and detail:
                step.detail = detail[:300]
            step.save()
        elif index == upto and step.state == OrderStep.State.PENDING:
            step_transition(step=step, to=OrderStep.State.RUNNING)
            step.started_at = now
            step.save(update_fields=["state", "started_at"])


# --- advancing ------------------------------------------------------------------------------


@contextlib.contextmanager
def _runner(order_id: int) -> Iterator[bool]:
    """One runner per order at a time, across workers: a session advisory lock, which
    PostgreSQL frees by itself if the worker dies mid-step."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_CLASS, order_id])
        got = cursor.fetchone()[0]
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_CLASS, order_id])


MESSAGES = {
    S.AUTHORIZED: "Payment authorized; asking for capacity.",
    S.QUEUED: "Capacity requested.",
    S.ALLOCATING: "Capacity allocated.",
    S.NETWORKING: "Building your private network on the switches.",
    S.POWERING: "Powering on the servers through their BMCs.",
    S.LAUNCHING: "Starting up.",
    S.READY: "Ready: handing over.",
}


def order_advance_run(*, order_id: int) -> str:
    """Run the step for the order's state once. Returns what happened. Transient errors
    propagate (the task retries them); StepFatal fails the order and compensates."""
    with _runner(order_id) as mine:
        if not mine:
            return "busy"  # another worker runs this order now and will chain the next step
        order = Order.objects.select_related("organization", "allocation", "network").get(
            pk=order_id
        )
        if order.state in (S.STOPPING, *TERMINAL):
            return _cleanup(order) if order.cleaned_up_at is None else "done"
        if order.state == S.ACTIVE:
            return "active"
        Order.objects.filter(pk=order.pk).update(updated_at=timezone.now())
        offering = offering_for(order.offering)
        try:
            if order.state == S.PLACED:
                result = _authorize(order)
            else:
                result = offering.run(order, _progress_reporter(order))
        except StepFatal as exc:
            order_fail(order_id=order.pk, message=str(exc))
            return "failed"
        return _apply(order, result)


def _authorize(order: Order) -> Advance:
    try:
        how = purchase_authorize(
            organization=order.organization, amount=order.hourly_quote, key=f"order-{order.pk}"
        )
    except PaymentError as exc:
        raise StepFatal(f"Payment was not authorized: {exc}") from exc
    except PaymentUnavailable as exc:
        raise StepTransient(str(exc)) from exc
    return Advance(S.AUTHORIZED, how)


def _apply(order: Order, result: Advance | Wait) -> str:
    if isinstance(result, Wait):
        _enqueue_on_commit(order.pk, result.seconds, or_raise=True)  # no transaction: sent now
        return "waiting"
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.state != order.state:
            _enqueue_on_commit(order.pk, or_raise=True)  # stopped or failed: compensate next
            return "superseded"
        order_transition(
            order=locked, to=result.to, actor="task:order_advance", detail=result.detail
        )
        offering = offering_for(locked.offering)
        locked.message = offering.active_message if result.to == S.ACTIVE else MESSAGES[result.to]
        if result.to == S.READY:
            locked.ready_at = timezone.now()  # billing starts here
        locked.save(update_fields=["message", "ready_at", "updated_at"])
        _steps_move(locked, result.to, result.detail)
        _publish_on_commit(locked)
        if result.to != S.ACTIVE:
            _enqueue_on_commit(locked.pk, or_raise=True)
    return result.to


# --- ending ---------------------------------------------------------------------------------


@transaction.atomic
def order_terminate(*, order: Order, actor: Actor, reason: str = "") -> Order:
    """End the order (the tenant, a course's staff, idle culling, a spending limit): before it
    is ready that is a cancellation (nothing charged); after, a stop (billing ends now).
    Compensation runs in the background. `reason` tells the tenant why, if not their doing."""
    order = Order.objects.select_for_update().get(pk=order.pk)
    if order.state in (S.STOPPING, *TERMINAL):
        return order
    now = timezone.now()
    why = f"{reason} " if reason else ""
    if order.state in BEFORE_READY:
        order_transition(order=order, to=S.CANCELLED, actor=actor.label, detail=reason or "cancel")
        order.message = f"{why}Cancelled; releasing what was set up. Nothing is charged."
    else:
        order_transition(order=order, to=S.STOPPING, actor=actor.label, detail=reason or "stop")
        order.ended_at = now
        order.message = f"{why}Stopping and releasing everything it held."
    order.save(update_fields=["message", "ended_at", "updated_at"])
    audit_record(
        actor=actor, organization=order.organization, action="order.terminate", target=str(order)
    )
    _publish_on_commit(order)
    _enqueue_on_commit(order.pk)
    return order


@transaction.atomic
def order_fail(*, order_id: int, message: str) -> Order:
    """End the order as failed with a message for the tenant; compensation follows."""
    order = Order.objects.select_for_update().get(pk=order_id)
    if order.state in TERMINAL:
        if order.cleaned_up_at is None:
            order.message = f"{order.message} Cleanup: {message}"[:300]
            order.save(update_fields=["message", "updated_at"])
        return order
    failed_step = offering_for(order.offering).step_for(order.state)
    order_transition(order=order, to=S.FAILED, actor="task:order_advance", detail=message)
    order.message = message[:300]
    if order.ready_at and not order.ended_at:
        order.ended_at = timezone.now()
    order.save(update_fields=["message", "ended_at", "updated_at"])
    if failed_step:
        steps_transition(
            steps=OrderStep.objects.filter(order=order, key=failed_step.key),
            to=OrderStep.State.FAILED,
            detail=message[:300],
            finished_at=timezone.now(),
        )
    steps_transition(
        steps=OrderStep.objects.filter(order=order, state=OrderStep.State.PENDING),
        to=OrderStep.State.SKIPPED,
    )
    _publish_on_commit(order)
    _enqueue_on_commit(order.pk)
    return order


def _cleanup(order: Order) -> str:
    """Give back power, network and capacity; record the final usage. Runs again after a
    crash until it completes (each part checks what is already done)."""
    from catalog.metering import meter_allocation

    notes = offering_for(order.offering).teardown(order)
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        locked.cleaned_up_at = timezone.now()
        fields = ["cleaned_up_at", "updated_at"]
        if locked.state == S.STOPPING:
            why = locked.events.filter(to_state=S.STOPPING).values_list("detail", flat=True).last()
            order_transition(order=locked, to=S.TERMINATED, actor="task:order_advance")
            reason = f"({why}) " if why and why != "stop" else ""
            locked.message = f"Terminated {reason}".strip() + ". " + " ".join(notes)
            fields.append("message")
            steps_transition(
                steps=OrderStep.objects.filter(order=locked), to=OrderStep.State.SKIPPED
            )
        elif notes:
            locked.message = f"{locked.message} {' '.join(notes)}"[:300]
            fields.append("message")
        locked.save(update_fields=fields)
        _publish_on_commit(locked)
    if order.allocation_id:
        meter_allocation(allocation_id=order.allocation_id)
    return "cleaned up"


def orders_resume(*, stalled_seconds: float, delayed_seconds: float) -> int:
    """Re-kick orders whose chain broke (a lost message, a worker gone past its retries):
    working orders untouched for `stalled_seconds`, and ended ones not yet cleaned up; sooner,
    after `delayed_seconds`, delayed ones no run has touched (their next step could not be
    queued, or the worker waiting on them gave up)."""
    now = timezone.now()
    since = now - timezone.timedelta(seconds=stalled_seconds)
    working = Order.objects.exclude(state__in=(S.ACTIVE, *TERMINAL, S.STOPPING))
    ended = Order.objects.filter(state__in=(S.STOPPING, *TERMINAL), cleaned_up_at=None)
    delayed = Q(
        delayed_since__isnull=False,
        updated_at__lt=now - timezone.timedelta(seconds=delayed_seconds),
    )
    due = (working | ended).filter(Q(updated_at__lt=since) | delayed)
    ids = list(due.values_list("pk", flat=True)[:500])
    advance = task("catalog.tasks.order_advance")
    for order_id in ids:
        advance.delay(order_id)
    return len(ids)
