"""Allocation from pools: IP addresses from a prefix, VLAN/VNI/PKey numbers from a pool. The
pool row is locked so concurrent allocations serialise; unique constraints back it up."""

import ipaddress

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from fabric.models import IPAddress, NumberAllocation, NumberPool, Prefix
from fabric.services.changes import inventory_save
from portal.models import Organization
from portal.services.audit import Actor


class PoolExhausted(ValidationError):
    pass


@transaction.atomic
def number_allocate(
    *,
    pool: NumberPool,
    actor: Actor,
    organization: Organization | None = None,
    purpose: str = "",
    value: int | None = None,
) -> NumberAllocation:
    """The lowest free value of `pool` (or `value`, if free and inside it)."""
    pool = NumberPool.objects.select_for_update().get(pk=pool.pk)
    first, stop = pool.values.lower, pool.values.upper
    if value is not None and not first <= value < stop:
        raise ValidationError({"value": f"{value} is outside {pool} ({first}-{stop - 1})."})
    if value is None:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT v FROM generate_series(%s, %s) AS v
                WHERE NOT EXISTS (
                    SELECT 1 FROM fabric_numberallocation a
                    WHERE a.site_id = %s AND a.kind = %s AND a.value = v
                )
                ORDER BY v LIMIT 1
                """,
                [first, stop - 1, pool.site_id, pool.kind],
            )
            row = cursor.fetchone()
        if row is None:
            raise PoolExhausted(f"{pool} has no free {pool.get_kind_display()} left.")
        value = row[0]
    elif NumberAllocation.objects.filter(site=pool.site_id, kind=pool.kind, value=value).exists():
        raise ValidationError({"value": f"{pool.kind} {value} is already allocated at this site."})
    allocation = NumberAllocation(
        pool=pool,
        site_id=pool.site_id,
        kind=pool.kind,
        value=value,
        organization=organization,
        purpose=purpose[:120],
    )
    return inventory_save(obj=allocation, actor=actor)


@transaction.atomic
def ip_allocate(
    *,
    prefix: Prefix,
    actor: Actor,
    organization: Organization | None = None,
    description: str = "",
) -> IPAddress:
    """The lowest free host address of `prefix`."""
    prefix = Prefix.objects.select_for_update().get(pk=prefix.pk)
    if not prefix.is_pool:
        raise ValidationError({"prefix": f"{prefix} is not a pool."})
    used = {ipaddress.ip_address(a) for a in prefix.addresses.values_list("address", flat=True)}
    for host in ipaddress.ip_network(prefix.prefix).hosts():
        if host not in used:
            address = IPAddress(
                prefix=prefix, address=host, organization=organization, description=description
            )
            return inventory_save(obj=address, actor=actor)
    raise PoolExhausted(f"{prefix} has no free address left.")
