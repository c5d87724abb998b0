"""Export the inventory: an XLSX workbook, one kind as CSV, or every kind as a zip of CSVs."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from fabric.spreadsheets import SHEETS, exporter


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("output", type=Path, help="file to write ('-' for stdout, CSV only)")
        parser.add_argument("--format", choices=["xlsx", "csv"], default="xlsx")
        parser.add_argument("--kind", choices=SHEETS, help="one kind (CSV: else a zip of all)")

    def handle(self, *args, output: Path, format: str, kind: str | None, **options):
        if format == "xlsx":
            content = exporter.xlsx_bytes([kind] if kind else None)
        elif kind:
            content = exporter.csv_bytes(kind)
        else:
            content = exporter.csv_zip_bytes()
        if str(output) == "-":
            if format == "xlsx" or not kind:
                raise CommandError("only a single-kind CSV can go to stdout")
            self.stdout.write(content.decode(), ending="")
            return
        output.write_bytes(content)
        self.stderr.write(f"wrote {output} ({len(content)} bytes)")
