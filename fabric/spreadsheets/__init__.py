"""Inventory spreadsheets (the operators' source of truth): the column spec, readers for CSV and
XLSX, the all-or-nothing importer and the exporter."""

from fabric.spreadsheets.importer import ImportReport, Problem, Tally, inventory_import
from fabric.spreadsheets.readers import Sheet, SpreadsheetError, read_csv, read_upload, read_xlsx
from fabric.spreadsheets.spec import KINDS, SHEETS

__all__ = [
    "KINDS",
    "SHEETS",
    "ImportReport",
    "Problem",
    "Sheet",
    "SpreadsheetError",
    "Tally",
    "inventory_import",
    "read_csv",
    "read_upload",
    "read_xlsx",
]
