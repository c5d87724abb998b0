"""What every offering provides (see docs/offerings.md): a spec it validates, a quote, the
steps of its recipe (one per working order state), a ready check, a teardown and its usage.
The order machinery in catalog.services.orders runs them; an offering never changes an order's
state itself."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from catalog.models import Order, OrderState


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    states: tuple[str, ...]  # the order states during which this step runs


@dataclass(frozen=True)
class Advance:
    """The step is done: move the order to `to`."""

    to: str
    detail: str = ""


@dataclass(frozen=True)
class Wait:
    """Not done yet: look again in `seconds` (a BMC powering on, a queue moving)."""

    seconds: float
    detail: str = ""


class StepTransient(Exception):
    """Try the step again later (with backoff); after too many tries it becomes fatal."""


class StepFatal(Exception):
    """The order cannot go on. The message tells the tenant what happened."""


AUTHORIZE = Step("authorize", "Payment authorized", (OrderState.PLACED,))


class Offering(ABC):
    kind: str
    steps: tuple[Step, ...]
    active_message: str = "Running."

    @abstractmethod
    def clean_spec(self, spec: dict) -> dict:
        """The validated spec (ValidationError naming each bad field)."""

    @abstractmethod
    def admit(self, organization, spec: dict) -> None:
        """Refuse (ValidationError) what the organization may not hold now, such as over quota."""

    @abstractmethod
    def hourly_price(self, spec: dict) -> Decimal:
        """What the order costs per hour once ready."""

    @abstractmethod
    def run(self, order: Order) -> Advance | Wait:
        """Do the work of the step for `order.state` (after authorization). Idempotent: it may
        run again after a crash, so it checks what an earlier run did."""

    @abstractmethod
    def teardown(self, order: Order) -> list[str]:
        """Give back everything the order holds; idempotent. Returns notes for the tenant."""

    @abstractmethod
    def handover(self, order: Order) -> dict:
        """What the tenant needs to use it (addresses, commands)."""

    def await_capacity(self, order: Order) -> Advance | Wait:
        """The queued step every allocating offering shares: on once the allocation is active,
        fatal if it was cancelled, else wait (saying where in the queue it stands)."""
        from catalog.services.orders import order_step_progress
        from fabric.models import Allocation, AllocationState

        allocation = Allocation.objects.get(pk=order.allocation_id)
        if allocation.state == AllocationState.ACTIVE:
            return Advance(OrderState.ALLOCATING)
        if allocation.state in (AllocationState.CANCELLED, AllocationState.FAILED):
            raise StepFatal("The capacity request was cancelled before it could start.")
        detail = f"Waiting for capacity: position {allocation.queue_position or '?'} in the queue"
        if allocation.estimated_start:
            detail += f", expected from {allocation.estimated_start:%Y-%m-%d %H:%M} UTC"
        order_step_progress(order=order, key="allocate", progress=10, detail=detail)
        return Wait(settings.ORDER_QUEUE_POLL_SECONDS, detail)

    def step_for(self, state: str) -> Step | None:
        return next((step for step in self.steps if state in step.states), None)
