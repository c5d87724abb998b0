"""Allocation from pools never overlaps; every inventory write is in the change log."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.backends.postgresql.psycopg_any import NumericRange

from fabric.models import ChangeRecord, NumberPool, Prefix, Site
from fabric.services.changes import change_history, inventory_delete, inventory_save
from fabric.services.ipam import PoolExhausted, ip_allocate, number_allocate
from portal.services.audit import Actor
from tests.portal.factories import UserFactory

ACTOR = Actor.system("task")


@pytest.mark.django_db
def test_given_a_pool_then_values_come_lowest_first_and_run_out_clearly():
    site = Site.objects.create(name="dc7")
    pool = NumberPool.objects.create(site=site, kind="vlan", name="v", values=NumericRange(10, 13))
    values = [number_allocate(pool=pool, actor=ACTOR).value for _ in range(3)]
    assert values == [10, 11, 12]
    with pytest.raises(PoolExhausted, match="no free VLAN left"):
        number_allocate(pool=pool, actor=ACTOR)
    with pytest.raises(ValidationError, match="outside"):
        number_allocate(pool=pool, actor=ACTOR, value=99)


@pytest.mark.django_db
def test_given_a_prefix_then_host_addresses_are_handed_out_once():
    prefix = Prefix.objects.create(vrf="t", prefix="192.0.2.0/30", role="tenant")
    first, second = (str(ip_allocate(prefix=prefix, actor=ACTOR).address) for _ in range(2))
    assert (first, second) == ("192.0.2.1", "192.0.2.2")
    with pytest.raises(PoolExhausted):
        ip_allocate(prefix=prefix, actor=ACTOR)


@pytest.mark.django_db(transaction=True)
def test_given_concurrent_allocations_then_no_value_is_handed_out_twice():
    site = Site.objects.create(name="dc8")
    pool = NumberPool.objects.create(site=site, kind="vni", name="v", values=NumericRange(1, 1000))
    results, errors = [], []

    def allocate():
        try:
            for _ in range(10):
                results.append(number_allocate(pool=pool, actor=ACTOR).value)
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=allocate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == list(range(1, 41))


@pytest.mark.django_db
def test_given_create_update_delete_then_each_is_logged_with_before_and_after():
    operator = UserFactory(is_staff=True)
    actor = Actor(user=operator, via="api", ip="192.0.2.9")
    site = inventory_save(obj=Site(name="dc5", region="eu"), actor=actor)
    site.region = "us"
    inventory_save(obj=site, actor=actor)
    inventory_save(obj=site, actor=actor)  # nothing changed: nothing logged
    site_id = site.pk
    inventory_delete(obj=site, actor=actor)
    records = list(ChangeRecord.objects.filter(object_id=site_id).order_by("pk"))
    assert [r.action for r in records] == ["create", "update", "delete"]
    assert records[1].before["region"] == "eu" and records[1].after["region"] == "us"
    assert records[1].changed_fields == ["region"]
    assert all((r.actor, r.via, r.ip_address) == (operator, "api", "192.0.2.9") for r in records)
    assert records[2].after is None


@pytest.mark.django_db
def test_given_an_invalid_object_then_nothing_is_saved_or_logged():
    with pytest.raises(ValidationError):
        inventory_save(obj=Site(name=""), actor=ACTOR)
    assert not ChangeRecord.objects.exists()
    assert change_history(Site(pk=1)).count() == 0
