"""What every offering provides (see docs/offerings.md): a spec it validates, a quote, the
steps of its recipe (a literal table: one method per working order state; the launching one is
the ready check) and a teardown; its usage is metered from its allocation (catalog.metering).
The order machinery in catalog.services.orders runs the recipe and passes in how to report
progress; an offering never changes an order's state itself, and never imports the machinery
that drives it. Its peers' errors (fabric's, billing's, the hub's) end at its edge as
StepTransient or StepFatal (catalog.errors)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Protocol

from django.conf import settings

from catalog.errors import StepFatal
from catalog.models import Order, OrderState
from fabric.choices import AllocationState
from fabric.selectors.capacity import allocation_get


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


class Report(Protocol):
    """How a step tells the tenant how far it got: the step's key, a percentage (below 100)
    and a line shown live on the order page. The order machinery passes one into `run`."""

    def __call__(self, *, key: str, progress: int, detail: str) -> None: ...


AUTHORIZE = Step("authorize", "Payment authorized", (OrderState.PLACED,))


class Offering(ABC):
    kind: str
    steps: tuple[Step, ...]
    # The recipe: for each working order state after authorization, the name of the method
    # that does its work, called as method(order, report) and returning Advance or Wait.
    recipe: ClassVar[dict[str, str]]
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

    def run(self, order: Order, report: Report) -> Advance | Wait:
        """Do the work of the step for `order.state` (after authorization), as the recipe says.
        Idempotent: it may run again after a crash, so it checks what an earlier run did."""
        return getattr(self, self.recipe[order.state])(order, report)

    @abstractmethod
    def teardown(self, order: Order) -> list[str]:
        """Give back everything the order holds; idempotent. Returns notes for the tenant."""

    @abstractmethod
    def handover(self, order: Order) -> dict:
        """What the tenant needs to use it (addresses, commands)."""

    def await_capacity(self, order: Order, report: Report) -> Advance | Wait:
        """The queued step every allocating offering shares: on once the allocation is active,
        fatal if it was cancelled, else wait (saying where in the queue it stands)."""
        allocation = allocation_get(allocation_id=order.allocation_id)
        if allocation.state == AllocationState.ACTIVE:
            return Advance(OrderState.ALLOCATING)
        if allocation.state in (AllocationState.CANCELLED, AllocationState.FAILED):
            raise StepFatal("The capacity request was cancelled before it could start.")
        detail = f"Waiting for capacity: position {allocation.queue_position or '?'} in the queue"
        if allocation.estimated_start:
            detail += f", expected from {allocation.estimated_start:%Y-%m-%d %H:%M} UTC"
        report(key="allocate", progress=10, detail=detail)
        return Wait(settings.ORDER_QUEUE_POLL_SECONDS, detail)

    def hand_over(self, order: Order, report: Report) -> Advance:
        """The ready step every offering shares: the tenant has what `handover` shows."""
        return Advance(OrderState.ACTIVE, "handed over")

    def step_for(self, state: str) -> Step | None:
        return next((step for step in self.steps if state in step.states), None)
