"""The reservation lifecycle: confirmed until cancelled, and a cancelled one stays cancelled."""

from datetime import UTC, datetime, timedelta

import pytest

from fabric.models import Reservation
from fabric.services.reservations import reservation_cancel
from fabric.states import RESERVATION_TRANSITIONS, TransitionError, reservation_transition
from portal.services.audit import Actor
from tests.portal.factories import member, organization_of

pytestmark = pytest.mark.django_db
S = Reservation.State
SYSTEM = Actor.system("test")
START = datetime(2026, 11, 2, 10, tzinfo=UTC)


def _reservation(state: str = S.CONFIRMED) -> Reservation:
    return Reservation.objects.create(
        organization=organization_of(member()),
        gpu_model="NVIDIA H100 80GB HBM3",
        count=1,
        starts_at=START,
        ends_at=START + timedelta(hours=2),
        state=state,
    )


def test_every_reservation_state_has_a_row():
    assert set(RESERVATION_TRANSITIONS) == set(S.values)


def test_given_a_cancelled_reservation_when_confirmed_again_then_the_transition_is_refused():
    reservation = _reservation(S.CANCELLED)
    with pytest.raises(TransitionError):
        reservation_transition(reservation=reservation, to=S.CONFIRMED, actor="test")
    reservation.refresh_from_db()
    assert reservation.state == S.CANCELLED


def test_given_a_reservation_when_cancelled_twice_then_it_is_cancelled_and_no_error_is_raised():
    reservation = _reservation()
    reservation_cancel(reservation=reservation, actor=SYSTEM, now=START - timedelta(hours=1))
    assert reservation.state == S.CANCELLED
    reservation_cancel(reservation=reservation, actor=SYSTEM, now=START - timedelta(hours=1))
    reservation.refresh_from_db()
    assert reservation.state == S.CANCELLED
