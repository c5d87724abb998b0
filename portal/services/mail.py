"""Outgoing mail leaves from a Celery worker, never from the request that causes it: a slow or
failing mail server then neither holds a page nor turns it into a 500 after its data is saved,
and the worker retries until the server takes the message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.db import transaction

from portal.celery import task


def mail_pieces(message: EmailMessage) -> dict[str, Any]:
    """What a worker needs to send `message` again, as JSON."""
    return {
        "subject": message.subject,
        "body": message.body,
        "from_email": message.from_email,
        "to": list(message.to),
        "cc": list(message.cc),
        "bcc": list(message.bcc),
        "reply_to": list(message.reply_to),
        "headers": dict(message.extra_headers),
        "content_subtype": message.content_subtype,
        "alternatives": [
            [content, mimetype] for content, mimetype in getattr(message, "alternatives", [])
        ],
    }


def mail_queue(*, message: EmailMessage) -> None:
    """Send `message` from a worker once the current transaction commits (at once outside one).
    Queueing is robust: a broker that is away is logged, never a 500 for work already saved."""
    pieces = mail_pieces(message)
    transaction.on_commit(lambda: task("portal.tasks.mail_send").delay(**pieces), robust=True)


def mail_deliver(
    *,
    subject: str,
    body: str,
    from_email: str | None,
    to: list[str],
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    reply_to: Sequence[str] = (),
    headers: dict[str, str] | None = None,
    content_subtype: str = "plain",
    alternatives: Sequence[Sequence[str]] = (),
) -> None:
    """Hand a queued message to EMAIL_BACKEND; its errors propagate, for the task to retry."""
    message = EmailMultiAlternatives(
        subject=subject,
        body=body,
        from_email=from_email,
        to=to,
        cc=list(cc),
        bcc=list(bcc),
        reply_to=list(reply_to),
        headers=headers,
    )
    message.content_subtype = content_subtype
    for content, mimetype in alternatives:
        message.attach_alternative(content, mimetype)
    message.send()
