"""Export the inventory in the import's own format, rows sorted by natural key, so an export
imported into an empty database exports again to the same bytes (CSV) or cell values (XLSX).
Text cells are inert (portal.spreadsheets): a description never runs as a formula. Write-only
columns (BMC passwords) are exported empty, which the import reads as "keep what is stored"."""

from __future__ import annotations

import decimal
import io
import zipfile
from typing import Any

from fabric.models import CableEnd
from fabric.spreadsheets.spec import KINDS, SHEETS, Kind
from portal.spreadsheets import csv_writer, xlsx_row

_ZIP_TIME = (2000, 1, 1, 0, 0, 0)  # fixed, so equal content zips to equal bytes


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, decimal.Decimal):
        return f"{value:.2f}"
    return str(value)


def _lookup(kind: Kind, name: str) -> str:
    column = kind.column[name]
    if column.export:
        return column.export
    if column.ref:
        return f"{column.model_field}__{KINDS[column.ref.kind].ref_key[-1]}"
    return name


def rows(kind_name: str) -> list[list[str]]:
    """The kind's rows as text cells in header order, sorted by the natural key."""
    kind = KINDS[kind_name]
    fields = [c.name for c in kind.columns if c.model_field and not c.secret]  # write-only
    lookups = [_lookup(kind, n) for n in fields]
    records = [dict(zip(fields, r, strict=True)) for r in kind.model.objects.values_list(*lookups)]
    if kind_name == "cables":
        ends: dict[str, dict[str, Any]] = {}
        for label, side, node, nic, switch, port in CableEnd.objects.values_list(
            "cable__label",
            "side",
            "interface__node__name",
            "interface__name",
            "port__switch__name",
            "port__name",
        ):
            ends.setdefault(label, {}).update(
                {f"{side}_node": node, f"{side}_interface": nic}
                | {f"{side}_switch": switch, f"{side}_port": port}
            )
        for record in records:
            record.update(ends.get(record["label"], {}))
    out = [[_text(r.get(c.name)) for c in kind.columns] for r in records]
    key = [kind.headers.index(c) for c in kind.match[0]]
    return sorted(out, key=lambda row: [row[i] for i in key])


def csv_bytes(kind_name: str) -> bytes:
    buffer = io.StringIO()
    writer = csv_writer(buffer, lineterminator="\n")
    writer.writerow(KINDS[kind_name].headers)
    writer.writerows(rows(kind_name))
    return buffer.getvalue().encode()


def csv_zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in SHEETS:
            archive.writestr(zipfile.ZipInfo(f"{name}.csv", _ZIP_TIME), csv_bytes(name))
    return buffer.getvalue()


def _workbook(data: dict[str, list[list[str]]], about: bool) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    for name, body in data.items():
        kind = KINDS[name]
        sheet = book.create_sheet(name)
        sheet.append(xlsx_row(sheet, kind.headers))
        numeric = [c.numeric for c in kind.columns]  # XLSX gets numbers as numbers
        for row in body:
            values = [int(v) if n and v else v or None for v, n in zip(row, numeric, strict=True)]
            sheet.append(xlsx_row(sheet, values))
    if about:
        sheet = book.create_sheet("about")
        lines = [["sheet", "column", "required", "help"]]
        for name in SHEETS:
            for c in KINDS[name].columns:
                lines.append([name, c.name, "yes" if c.required else "", c.help])
        lines.append([])
        lines.append(["Sheets are read in the order above; a row may name rows of earlier sheets."])
        lines.append(["Rows are matched by their first column; a second import changes nothing."])
        for line in lines:
            sheet.append(xlsx_row(sheet, line))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def xlsx_bytes(kinds: list[str] | None = None) -> bytes:
    return _workbook({name: rows(name) for name in kinds or SHEETS}, about=True)


def template_bytes() -> bytes:
    """Headers only (one sheet per kind) and an "about" sheet with each column's meaning."""
    return _workbook({name: [] for name in SHEETS}, about=True)
