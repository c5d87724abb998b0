"""Read CSV files, zips of CSV files and XLSX workbooks into sheets of text cells, with the row
numbers the operator sees in the spreadsheet (the header is row 1)."""

from __future__ import annotations

import csv
import datetime
import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePath

from fabric.spreadsheets.spec import KINDS, SHEETS
from portal.spreadsheets import csv_unescape

IGNORED_SHEETS = {"about"}
_SINGULAR = {k: KINDS[k].singular for k in SHEETS}


@dataclass
class Sheet:
    title: str  # the sheet or file name, as the operator knows it
    kind: str | None  # None when it could not be told
    headers: list[str]
    rows: list[tuple[int, list[str]]] = field(default_factory=list)


class SpreadsheetError(ValueError):
    """The file is not a spreadsheet this reader understands."""


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return str(value).strip()


def _kind_from_name(name: str) -> str | None:
    words = set(re.split(r"[^a-z]+", PurePath(name).stem.lower()))
    found = [k for k in SHEETS if k in words or _SINGULAR[k] in words]
    return found[0] if len(found) == 1 else None


def _kind_from_headers(headers: list[str]) -> str | None:
    """The kind whose required columns are all there and which explains the most headers."""
    best, score = None, 0
    for name in SHEETS:
        kind = KINDS[name]
        if not all(c.name in headers for c in kind.columns if c.required):
            continue
        hits = len(set(headers) & set(kind.headers))
        if hits > score:
            best, score = name, hits
    return best


def _sheet(title: str, rows, kind: str | None, *, infer: bool = True) -> Sheet:
    rows = iter(rows)
    headers = [_cell(h).lower() for h in next(rows, [])]
    while headers and not headers[-1]:
        headers.pop()
    body = []
    for number, row in enumerate(rows, start=2):
        cells = [_cell(v) for v in row]
        if any(cells):
            body.append((number, cells))
    if kind is None and infer:
        kind = _kind_from_name(title) or _kind_from_headers(headers)
    return Sheet(title=title, kind=kind, headers=headers, rows=body)


def read_csv(data: bytes | str, *, filename: str = "upload.csv", kind: str | None = None) -> Sheet:
    """One kind per file: `kind`, else told from the file name, else from the headers."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SpreadsheetError(f"{filename} is not UTF-8 text") from None
    rows = csv.reader(io.StringIO(data, newline=""))
    unescaped = ([csv_unescape(cell) for cell in row] for row in rows)  # our exports' quotes
    return _sheet(PurePath(filename).name, unescaped, kind)


def read_xlsx(
    data: bytes, *, filename: str = "upload.xlsx", kind: str | None = None
) -> list[Sheet]:
    """A sheet per kind, named after it; a workbook of one sheet may be named anything."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise SpreadsheetError(f"{filename} is not an XLSX workbook ({exc})") from None
    try:
        worksheets = [ws for ws in book.worksheets if ws.title.lower() not in IGNORED_SHEETS]
        single = len(worksheets) == 1
        sheets = []
        for ws in worksheets:
            named = ws.title.strip().lower()
            guess = named if named in SHEETS else None
            if guess is None and single:
                guess = kind or _kind_from_name(filename)
            rows = ws.iter_rows(values_only=True)
            sheets.append(_sheet(ws.title, rows, guess, infer=single))
        return sheets
    finally:
        book.close()


def read_upload(data: bytes, *, filename: str, kind: str | None = None) -> list[Sheet]:
    """Dispatch on the file name: .xlsx, .csv, or a .zip of CSV files."""
    suffix = PurePath(filename).suffix.lower()
    if suffix == ".xlsx":
        return read_xlsx(data, filename=filename, kind=kind)
    if suffix == ".csv":
        return [read_csv(data, filename=filename, kind=kind)]
    if suffix == ".zip":
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile:
            raise SpreadsheetError(f"{filename} is not a zip file") from None
        with archive:
            return [
                read_csv(archive.read(n), filename=n)
                for n in sorted(archive.namelist())
                if n.lower().endswith(".csv")
            ]
    raise SpreadsheetError(f"{filename}: expected a .xlsx, .csv or .zip file")
