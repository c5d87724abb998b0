"""The inventory change log. Every write to an inventory object goes through `inventory_save`,
`inventory_delete` or, for bulk work such as imports, `change_records_bulk`, so each create,
update and delete leaves who, when, from where, before and after."""

from __future__ import annotations

import datetime
import decimal
import hashlib
import ipaddress
from collections.abc import Iterable
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction

from fabric.models import ChangeRecord
from portal.services.audit import Actor

SECRET_FIELDS = {"password_encrypted"}


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal | datetime.date | datetime.datetime):
        return str(value)
    if isinstance(
        value,
        ipaddress.IPv4Address
        | ipaddress.IPv6Address
        | ipaddress.IPv4Network
        | ipaddress.IPv6Network,
    ):
        return str(value)
    if hasattr(value, "lower") and hasattr(value, "upper"):  # a range
        return [value.lower, value.upper]
    return str(value)


def snapshot(obj: models.Model) -> dict[str, Any]:
    """The object's concrete fields as JSON-safe values (foreign keys as ids)."""
    data = {}
    for field in obj._meta.concrete_fields:
        if field.name in ("created_at", "updated_at", "agent_token_digest"):
            continue
        if field.name in SECRET_FIELDS:  # a new value shows as changed; nothing of it is kept
            value = getattr(obj, field.attname)
            data[field.attname] = hashlib.sha256(value.encode()).hexdigest()[:12] if value else ""
            continue
        data[field.attname] = _json_value(getattr(obj, field.attname))
    return data


def _record(obj: models.Model, action: str, actor: Actor, before, after) -> ChangeRecord:
    return ChangeRecord(
        content_type=ContentType.objects.get_for_model(obj.__class__),
        object_id=obj.pk,
        object_repr=str(obj)[:200],
        action=action,
        actor=actor.user,
        via=actor.via,
        ip_address=actor.ip,
        before=before,
        after=after,
    )


@transaction.atomic
def inventory_save(*, obj: models.Model, actor: Actor) -> models.Model:
    """Validate and save `obj`, logging a create or an update with what changed."""
    before = None
    if obj.pk is not None:
        current = obj.__class__.objects.select_for_update().filter(pk=obj.pk).first()
        before = snapshot(current) if current is not None else None
    obj.full_clean()
    obj.save()
    after = snapshot(obj)
    if before != after:
        action = ChangeRecord.Action.UPDATE if before is not None else ChangeRecord.Action.CREATE
        _record(obj, action, actor, before, after).save()
    return obj


@transaction.atomic
def inventory_delete(*, obj: models.Model, actor: Actor) -> None:
    before = snapshot(obj)
    record = _record(obj, ChangeRecord.Action.DELETE, actor, before, None)
    obj.delete()
    record.save()


def change_records_bulk(
    *,
    actor: Actor,
    created: Iterable[models.Model] = (),
    updated: Iterable[tuple[dict, models.Model]] = (),
) -> int:
    """Log many creates and (before, object) updates at once, for imports and generators."""
    records = [
        _record(obj, ChangeRecord.Action.CREATE, actor, None, snapshot(obj)) for obj in created
    ]
    records += [
        _record(obj, ChangeRecord.Action.UPDATE, actor, before, snapshot(obj))
        for before, obj in updated
    ]
    ChangeRecord.objects.bulk_create(records, batch_size=2000)
    return len(records)


def change_history(obj: models.Model):
    return ChangeRecord.objects.filter(
        content_type=ContentType.objects.get_for_model(obj.__class__), object_id=obj.pk
    ).select_related("actor")
