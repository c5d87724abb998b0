"""Usage from the gateway, written in batches: each finished request is pushed to a Redis list
(no database on the request path); a task moves batches into the billing ledger, each request
once under its id (`request:<id>:input`, `request:<id>:output`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings

from billing.ledger import usage_record
from portal.models import Organization

BATCH = 500


def usage_key() -> str:
    return f"{settings.QUEUE_PREFIX}:gw:usage"


def usage_flush(*, limit: int = 20 * BATCH) -> int:
    """Move queued usage into the ledger; returns the records moved. A record is removed only
    after it is written (the ledger's idempotency keys make a replay harmless)."""
    from catalog.gateway.limits import _redis, allowance_refresh

    redis = _redis()
    moved = 0
    organizations: dict[int, Organization] = {}
    while moved < limit:
        raw = redis.lrange(usage_key(), 0, BATCH - 1)
        if not raw:
            break
        for item in raw:
            record = json.loads(item)
            org_id = record["organization"]
            if org_id not in organizations:
                organizations[org_id] = Organization.objects.get(pk=org_id)
            started = datetime.fromtimestamp(record["started"], UTC)
            ended = datetime.fromtimestamp(record["ended"], UTC)
            for meter, side in (("input_tokens", "input"), ("output_tokens", "output")):
                if record[side]:
                    usage_record(
                        organization=organizations[org_id],
                        idempotency_key=f"request:{record['id']}:{side}", meter=meter,
                        item=record["model"], quantity=Decimal(record[side]), started_at=started,
                        ended_at=ended, source=f"key:{record['key']}",
                    )  # fmt: skip
        redis.ltrim(usage_key(), len(raw), -1)
        moved += len(raw)
    for organization_id in organizations:
        allowance_refresh(organization_id=organization_id)
    return moved
