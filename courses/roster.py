"""Reading a roster: a CSV upload (an `email` column, optionally `role`) or pasted addresses
(one per line, or separated by commas or semicolons). Every bad row is reported with its row
number; the caller imports nothing unless all rows are good."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from courses.models import Enrollment

MAX_ROWS = 2000


@dataclass(frozen=True)
class RosterRow:
    line: int
    email: str
    role: str


class RosterError(ValidationError):
    """The rows that are wrong, each as 'row N: why'."""


def _check(rows: list[tuple[int, str, str]]) -> list[RosterRow]:
    errors, seen, good = [], set(), []
    for line, email, role in rows:
        email, role = email.strip(), (role.strip().lower() or Enrollment.Role.STUDENT)
        try:
            validate_email(email)
        except ValidationError:
            errors.append(f"row {line}: {email!r} is not an email address")
            continue
        if role not in Enrollment.Role.values:
            errors.append(f"row {line}: role {role!r} is not one of {', '.join(Enrollment.Role)}")
            continue
        if email.lower() in seen:
            errors.append(f"row {line}: {email} appears twice")
            continue
        seen.add(email.lower())
        good.append(RosterRow(line, email, role))
    if len(good) + len(errors) > MAX_ROWS:
        errors.insert(0, f"A roster holds at most {MAX_ROWS} rows.")
    if errors:
        raise RosterError(errors)
    if not good:
        raise RosterError(["The roster is empty."])
    return good


def roster_parse_text(text: str) -> list[RosterRow]:
    parts = [p for p in re.split(r"[\n,;]+", text) if p.strip()]
    return _check([(n, part, "") for n, part in enumerate(parts, start=1)])


def roster_parse_csv(data: bytes) -> list[RosterRow]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RosterError(["The file is not UTF-8 text (save it as CSV UTF-8)."]) from None
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "email" not in fields:
        raise RosterError(["row 1: the header needs an 'email' column"])
    reader.fieldnames = fields
    rows = [
        (n, row.get("email") or "", row.get("role") or "") for n, row in enumerate(reader, start=2)
    ]
    return _check(rows)
