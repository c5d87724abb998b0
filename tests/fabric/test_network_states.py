"""The tenant network lifecycle: active until deleted, and a deleted one is never active again."""

import pytest

from fabric.models import TenantNetwork
from fabric.services.networks import network_delete
from fabric.states import NETWORK_TRANSITIONS, TransitionError, network_transition
from portal.services.audit import Actor
from tests.fabric.factories import SiteFactory
from tests.portal.factories import member, organization_of

pytestmark = pytest.mark.django_db
S = TenantNetwork.State
SYSTEM = Actor.system("test")


def _network(state: str = S.ACTIVE) -> TenantNetwork:
    return TenantNetwork.objects.create(
        organization=organization_of(member()), site=SiteFactory(), label="lab", state=state
    )


def test_every_network_state_has_a_row():
    assert set(NETWORK_TRANSITIONS) == set(S.values)


def test_given_a_deleted_network_when_made_active_again_then_the_transition_is_refused():
    network = _network(S.DELETED)
    with pytest.raises(TransitionError):
        network_transition(network=network, to=S.ACTIVE, actor="test")
    network.refresh_from_db()
    assert network.state == S.DELETED


def test_given_a_network_with_nothing_attached_when_deleted_twice_then_it_stays_deleted():
    network = _network()
    assert network_delete(network=network, actor=SYSTEM).state == S.DELETED
    assert network_delete(network=network, actor=SYSTEM).state == S.DELETED
