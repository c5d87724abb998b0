"""Import an inventory spreadsheet (XLSX, CSV or a zip of CSVs); exit 1 when it has problems."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from fabric.spreadsheets import SHEETS, SpreadsheetError, inventory_import, read_upload
from portal.services.audit import Actor


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="check and report only")
        parser.add_argument("--kind", choices=SHEETS, help="the kind of a CSV or one-sheet file")

    def handle(self, *args, path: Path, dry_run: bool, kind: str | None, **options):
        try:
            sheets = read_upload(path.read_bytes(), filename=path.name, kind=kind)
        except (OSError, SpreadsheetError) as exc:
            raise CommandError(str(exc)) from exc
        report = inventory_import(sheets=sheets, actor=Actor.system(via="import"), dry_run=dry_run)
        for line in report.lines():
            self.stdout.write(line)
        if not report.ok:
            raise CommandError(f"{len(report.problems)} problem(s); nothing was changed.")
