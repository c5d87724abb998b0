"""Usage from the gateway, written in batches: each finished request is pushed to a Redis list
(no database on the request path); a task moves batches into the billing ledger, each request
once under its id (`request:<id>:input`, `request:<id>:output`)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal

from billing.services.ledger import usage_record
from catalog.gateway.limits import allowance_refresh, redis_client, usage_key
from portal.models import Organization

BATCH = 500
logger = logging.getLogger(__name__)


def usage_flush(*, limit: int = 20 * BATCH) -> int:
    """Move queued usage into the ledger; returns the records moved. A record is removed only
    after it is written (the ledger's idempotency keys make a replay harmless)."""
    redis = redis_client()
    moved = 0
    organizations: dict[int, Organization | None] = {}
    while moved < limit:
        raw = redis.lrange(usage_key(), 0, BATCH - 1)
        if not raw:
            break
        for item in raw:
            record = json.loads(item)
            org_id = record["organization"]
            if org_id not in organizations:
                organizations[org_id] = Organization.objects.filter(pk=org_id).first()
            if organizations[org_id] is None:  # deleted since: never block the queue on it
                logger.warning("gateway usage of unknown organization %s dropped", org_id)
                continue
            started = datetime.fromtimestamp(record["started"], UTC)
            ended = datetime.fromtimestamp(record["ended"], UTC)
            for meter, side in (("input_tokens", "input"), ("output_tokens", "output")):
                if record[side]:
                    usage_record(
                        organization=organizations[org_id],
                        idempotency_key=f"request:{record['id']}:{side}",
                        meter=meter,
                        item=record["model"],
                        quantity=Decimal(record[side]),
                        started_at=started,
                        ended_at=ended,
                        source=f"key:{record['key']}",
                    )
        redis.ltrim(usage_key(), len(raw), -1)
        moved += len(raw)
    for organization_id, organization in organizations.items():
        if organization is not None:
            allowance_refresh(organization_id=organization_id)
    return moved
