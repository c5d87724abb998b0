"""Cells for every spreadsheet the storefront writes, made inert (OWASP "CSV injection").

A spreadsheet program reads a cell that starts with "=", "+", "-" or "@" as a formula, and some
trim a leading tab or carriage return first. Text that people typed (an inventory description,
a student's email, a product name) must never run as a formula on the machine of whoever opens
the file, nor send other cells to another site with HYPERLINK or WEBSERVICE. So:

- CSV: such text gets a leading single quote, as OWASP advises; spreadsheet programs show it
  as text. `csv_unescape` takes the quote off again for our own importers, so an export imports
  back to the same text.
- XLSX: a string is always a string cell (type "s"), never a formula. openpyxl would otherwise
  store text that starts with "=" as a formula; the string cell reads back as the original text
  in Excel, LibreOffice and openpyxl, without a quote to strip. Live text also gets the cell
  style's quotePrefix, as Excel itself stores text typed as '=…, so editing it keeps it text.

Numbers stay numbers: an int or a Decimal is written as it is, and so is text that is only a
number ("-3.50"), which no program runs as a formula.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _live(text: str) -> bool:
    """A spreadsheet program could run it. Leading quotes are looked through, so that text
    which already starts with a quote is escaped too and `csv_unescape` undoes exactly one."""
    return text.lstrip("'").startswith(TRIGGERS) and not _NUMBER.fullmatch(text)


def csv_cell(value: Any) -> Any:
    """The value to hand to a CSV writer: live text behind a single quote, the rest as is."""
    if isinstance(value, str) and _live(value):
        return "'" + value
    return value


def csv_unescape(text: str) -> str:
    """The text `csv_cell` was given (for importers reading the files we write)."""
    if text.startswith("'") and _live(text[1:]):
        return text[1:]
    return text


class InertCsvWriter:
    """`csv.writer` whose every cell goes through `csv_cell`."""

    def __init__(self, file: Any, **options: Any) -> None:
        self._writer = csv.writer(file, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([csv_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(file: Any, **options: Any) -> InertCsvWriter:
    """Use it wherever `csv.writer` would be used to write a file someone downloads."""
    return InertCsvWriter(file, **options)


def xlsx_cell(sheet: Any, value: Any) -> Any:
    """An openpyxl cell for `sheet` (a write-only or an ordinary worksheet; append a row of
    them) in which text is always text."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str):
        cell.data_type = "s"  # not "f" (formula) nor "e" (an error such as "#N/A")
        if _live(value):
            cell.quotePrefix = True  # what Excel stores for '=…: it stays text when edited
    return cell


def xlsx_row(sheet: Any, values: Iterable[Any]) -> list[Any]:
    return [xlsx_cell(sheet, v) for v in values]
