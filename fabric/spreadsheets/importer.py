"""Import inventory sheets: check every row first and report every problem; only when there is
none, apply everything in one transaction, matching existing objects by natural key.

Objects are named by integer handles while rows are checked: an existing object's handle is its
primary key, a row that creates one gets a negative handle. References resolve to handles, so a
row may name an object that an earlier sheet of the same workbook creates or renames, and every
check (duplicates, conflicts with objects outside the file, a port cabled twice) compares
handles. An identifier of the hardware (a serial, GPU UUID, MAC or GUID) stays with the object
that holds it: a row may carry one only as the row of that object, so a pasted MAC never moves a
NIC to another node. Existing objects are loaded in one query per kind; writes are bulk, and the
change log is written with `change_records_bulk` (via "import")."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError, connection, models, transaction

from fabric import secrets
from fabric.models import CableEnd
from fabric.services.changes import change_records_bulk, snapshot
from fabric.spreadsheets.readers import Sheet
from fabric.spreadsheets.spec import KINDS, Column, Kind
from portal.services.audit import Actor

BATCH = 2000
VIA = "import"
_LOCK_ID = 0x1A7E_1A7E  # one import at a time: each one plans against what is committed


@dataclass(frozen=True)
class Problem:
    sheet: str
    row: int | None  # as numbered in the spreadsheet (the header is row 1)
    column: str
    reason: str

    def __str__(self) -> str:
        where = ", ".join(
            p for p in (self.sheet, f"row {self.row}" if self.row else "", self.column) if p
        )
        return f"{where}: {self.reason}"


@dataclass
class Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class ImportReport:
    dry_run: bool
    problems: list[Problem] = field(default_factory=list)
    tallies: dict[str, Tally] = field(default_factory=dict)
    applied: bool = False  # committed (never for a dry run)
    change_records: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        if self.problems:
            head = f"{len(self.problems)} problem(s); nothing was changed."
            return [head, *(str(p) for p in self.problems)]
        verb = "would be" if self.dry_run else "were"
        out = [f"{'Dry run: ' if self.dry_run else ''}no problems; these changes {verb} made."]
        for kind, t in self.tallies.items():
            out.append(f"{kind}: {t.created} created, {t.updated} updated, {t.unchanged} unchanged")
        return out


@dataclass
class _Row:
    sheet: str
    number: int
    values: dict[str, Any]  # column name -> parsed value; references hold handles
    handle: int = 0
    failed: set[str] = field(default_factory=set)  # columns already reported
    changes: dict[str, Any] = field(default_factory=dict)  # model field -> new value


class _Table:
    """One kind's existing objects by handle, its keys, and this file's rows."""

    def __init__(self, kind: Kind, existing: Iterable[models.Model]) -> None:
        self.kind = kind
        self.objs: dict[int, models.Model] = {o.pk: o for o in existing}
        self.attname = {
            c.name: kind.model._meta.get_field(c.model_field).attname
            for c in kind.columns
            if c.model_field
        }
        self.index = {key: self._index(key) for key in {*kind.keys, kind.ref_key}}
        self.final = dict(self.index[kind.ref_key])  # the reference key after the import
        self.rows: list[_Row] = []
        self.claimed: dict[int, _Row] = {}
        self.new: list[tuple[int, dict[str, Any]]] = []  # handles and values to create

    def _index(self, key: tuple[str, ...]) -> dict[tuple, int]:
        names = [self.attname[c] for c in key]
        out = {}
        for pk, obj in self.objs.items():
            value = tuple(getattr(obj, n) for n in names)
            if None not in value:
                out[value] = pk
        return out

    def add(self, values: dict[str, Any]) -> int:
        handle = -len(self.new) - 1
        self.new.append((handle, values))
        return handle

    def label(self, handle: int) -> str:
        return str(self.objs[handle])

    def owner(self, handle: int) -> str:
        """The existing object as a row names it: "gpu01 ibp0", "gpu01 GPU0", "gpu01"."""
        obj = self.objs[handle]
        return f"{obj.node.name} {obj.name}" if self.kind.name == "nics" else str(obj)

    def names(self, row: _Row, handle: int) -> bool:
        """The row names the existing object `handle`, which its identifiers matched. A kind
        named by one of its match keys (a node by its name) may be renamed by a row matched on
        an identifier; a NIC or a GPU is named by its node and its name or index, which an
        identifier never leaves: moving one would move the hardware to another object."""
        if self.kind.ref_key in self.kind.match:
            return True
        named = _row_key(row, self.kind.ref_key)
        if named is None:  # a name the row lacks or could not read: reported already
            return True
        obj = self.objs[handle]
        return named == tuple(getattr(obj, self.attname[c]) for c in self.kind.ref_key)


def _row_key(row: _Row, key: tuple[str, ...]) -> tuple | None:
    value = tuple(row.values.get(c) for c in key)
    return None if None in value else value


def _load() -> dict[str, _Table]:
    tables: dict[str, _Table] = {}
    for name, kind in KINDS.items():
        tables[name] = _Table(kind, kind.model.objects.order_by())
        # Prime the related objects that str() and the change log read, to spare a query each.
        for column in kind.columns:
            if column.ref and column.model_field and column.ref.kind in tables:
                related = tables[column.ref.kind].objs
                attname = tables[name].attname[column.name]
                for obj in tables[name].objs.values():
                    if (pk := getattr(obj, attname)) is not None:
                        setattr(obj, column.model_field, related[pk])
    return tables


class _Checker:
    def __init__(self, tables: dict[str, _Table]) -> None:
        self.tables = tables
        self.problems: list[Problem] = []

    def problem(self, sheet: str, row: int | None, column: str, reason: str) -> None:
        self.problems.append(Problem(sheet, row, column, reason))

    def fail(self, row: _Row, column: str, reason: str) -> None:
        row.failed.add(column)
        self.problem(row.sheet, row.number, column, reason)

    def headers(self, sheet: Sheet) -> list[Column | None]:
        kind = KINDS[sheet.kind]
        columns: list[Column | None] = []
        for header in sheet.headers:
            if header in kind.column and header not in [c and c.name for c in columns]:
                columns.append(kind.column[header])
            else:
                why = "appears twice" if header in kind.column else "is not a column of this sheet"
                self.problem(sheet.title, 1, header, f"column {header!r} {why}")
                columns.append(None)
        for c in kind.columns:
            if c.required and c.name not in sheet.headers:
                self.problem(sheet.title, 1, c.name, "required column is missing")
        return columns

    def parse(self, sheet: Sheet, columns: list[Column | None], number: int, cells: list[str]):
        kind = KINDS[sheet.kind]
        row = _Row(sheet.title, number, {})
        for i, column in enumerate(columns):
            if column is None:
                continue
            raw = cells[i] if i < len(cells) else ""
            if not raw and column.secret:
                continue  # write-only: an empty cell keeps what is stored
            if not raw:
                if column.required:
                    self.fail(row, column.name, "required")
                row.values[column.name] = _empty(kind, column)
                continue
            try:
                value = column.parse(raw)
            except ValueError as exc:
                self.fail(row, column.name, str(exc))
                continue
            if column.ref:
                value = self.resolve(row, column, value)
                if value is None:
                    continue
            row.values[column.name] = value
        return row

    def resolve(self, row: _Row, column: Column, value: Any) -> int | None:
        ref = column.ref
        assert ref is not None
        key: tuple = (value,)
        if ref.scope:
            scope = row.values.get(ref.scope)
            if scope is None:
                if ref.scope in row.values:  # empty, rather than unreadable (reported already)
                    self.fail(row, column.name, f"needs {ref.scope}")
                else:
                    row.failed.add(column.name)
                return None
            key = (scope, value)
        table = self.tables[ref.kind]
        if (handle := table.final.get(key)) is not None:
            return handle
        if ref.create:
            handle = table.add(dict(zip(table.kind.ref_key, key, strict=True)))
            table.final[key] = handle
            return handle
        where = f" on that {ref.scope.split('_')[-1]}" if ref.scope else ""
        self.fail(row, column.name, f"no {table.kind.singular} {value!r}{where}")
        return None

    def rows(self, kind: Kind, sheets: list[Sheet]) -> None:
        table = self.tables[kind.name]
        for sheet in sheets:
            columns = self.headers(sheet)
            for number, cells in sheet.rows:
                row = self.parse(sheet, columns, number, cells)
                self.check_row(kind, row)
                table.rows.append(row)
        self.match(table)
        if kind.name == "bmcs":
            for row in table.rows:
                secret = row.values.get("password") or row.values.get("password_ref")
                if row.handle < 0 and not secret and not {"password", "password_ref"} & row.failed:
                    self.fail(row, "password", "a new BMC needs a password or a password_ref")
        for row in table.rows:  # the names later sheets refer to
            if (k := _row_key(row, kind.ref_key)) is not None:
                table.final[k] = row.handle

    def check_row(self, kind: Kind, row: _Row) -> None:
        v = row.values
        if (
            "rack" in v
            and "rack_position" in v
            and (v["rack"] is None) is not (v["rack_position"] is None)
        ):
            missing = "rack" if v["rack"] is None else "rack_position"
            self.fail(row, missing, "rack and rack_position go together")
        if kind.name == "nics" and v.get("ib_guid") and v.get("kind") != "infiniband":
            self.fail(row, "ib_guid", "only infiniband interfaces have one")
        if kind.name == "cables":
            for side in "ab":
                self.check_end(row, side)
        if kind.name == "bmcs":
            if v.get("password") and v.get("password_ref"):
                self.fail(row, "password_ref", "give a password or a password_ref, not both")
            elif v.get("password_ref"):
                v["password"] = ""  # the reference replaces a stored password
            elif v.get("password"):
                v["password_ref"] = ""

    def check_end(self, row: _Row, side: str) -> None:
        names = [f"{side}_{p}" for p in ("node", "interface", "switch", "port")]
        given = [n for n in names if row.values.get(n) is not None]
        if row.failed & set(names):
            return  # already said why this end is unreadable
        if given == names[:2] or given == names[2:]:
            return
        if not given:
            reason = f"give {names[0]} and {names[1]}, or {names[2]} and {names[3]}"
        elif set(given) & set(names[:2]) and set(given) & set(names[2:]):
            reason = "an end is a node interface or a switch port, not both"
        else:
            pair = names[:2] if given[0] in names[:2] else names[2:]
            reason = f"{' and '.join(pair)} are needed together"
        self.fail(row, given[0] if given else names[0], reason)

    def match(self, table: _Table) -> None:
        kind = table.kind
        seen: dict[tuple[str, ...], dict[tuple, _Row]] = defaultdict(dict)
        for row in table.rows:
            for key in kind.keys:
                if (k := _row_key(row, key)) is None:
                    continue
                if (first := seen[key].get(k)) is not None:
                    where = f"row {first.number}" + (
                        f" of {first.sheet}" if first.sheet != row.sheet else ""
                    )
                    self.fail(row, key[-1], f"duplicate of {where}")
                else:
                    seen[key][k] = row
        # The first key wins over the others, so a fallback never takes an object that
        # another row names by its primary key.
        for key in kind.match:
            for row in table.rows:
                if row.handle or (k := _row_key(row, key)) is None:
                    continue
                handle = table.index[key].get(k)
                if handle is not None and handle not in table.claimed:
                    row.handle = handle
                    table.claimed[handle] = row
        for row in table.rows:
            for key in kind.keys:
                k = _row_key(row, key)
                owner = table.index[key].get(k) if k is not None else None
                if owner is not None and len(key) == 1 and key[0] in kind.identifiers:
                    moves = owner != row.handle or not table.names(row, owner)
                    if moves and key[0] not in row.failed:
                        self.fail(row, key[0], f"{k[0]} already belongs to {table.owner(owner)}")
                    continue
                if owner is None or owner == row.handle or owner in table.claimed:
                    continue
                if key[-1] not in row.failed:
                    self.fail(
                        row,
                        key[-1],
                        f"already used by {kind.singular} {table.label(owner)!r}, "
                        "which is not in this file",
                    )
            if not row.handle:
                row.handle = table.add(row.values)
            else:
                obj = table.objs[row.handle]
                row.changes = {
                    kind.column[c].model_field: v
                    for c, v in row.values.items()
                    if c in table.attname
                    and _differs(kind.column[c], getattr(obj, table.attname[c]), v)
                }

    def cables(self, ends: dict[int, dict[str, CableEnd]]) -> None:
        table = self.tables["cables"]
        owner: dict[tuple[str, int], int] = {}
        for end in (e for sides in ends.values() for e in sides.values()):
            thing = ("nics", end.interface_id) if end.interface_id else ("ports", end.port_id)
            owner[thing] = end.cable_id
        used: dict[tuple[str, int], _Row] = {}
        for row in table.rows:
            for column in ("a_interface", "a_port", "b_interface", "b_port"):
                if (handle := row.values.get(column)) is None:
                    continue
                thing = ("nics" if column.endswith("interface") else "ports", handle)
                what = "interface" if thing[0] == "nics" else "port"
                if (first := used.get(thing)) is not None:
                    where = "this row" if first is row else f"row {first.number}"
                    self.problem(row.sheet, row.number, column, f"{what} cabled twice ({where})")
                    continue
                used[thing] = row
                cable = owner.get(thing)
                if cable is not None and cable != row.handle and cable not in table.claimed:
                    label = table.label(cable)
                    self.problem(
                        row.sheet, row.number, column, f"{what} already cabled by {label!r}"
                    )
            if row.handle > 0:
                current = {s: (e.interface_id, e.port_id) for s, e in ends[row.handle].items()}
                wanted = {
                    s: (row.values.get(f"{s}_interface"), row.values.get(f"{s}_port")) for s in "ab"
                }
                if current != wanted:
                    row.changes.setdefault("ends", True)


def _differs(column: Column, stored: Any, value: Any) -> bool:
    if not column.secret:
        return stored != value
    if not stored or not value:
        return bool(stored) != bool(value)
    try:
        return secrets.decrypt(stored) != value
    except secrets.SecretUnreadable:
        return True


def _empty(kind: Kind, column: Column) -> Any:
    if column.default is not None or not column.model_field:
        return column.default
    return None if kind.model._meta.get_field(column.model_field).null else ""


def _tallies(tables: dict[str, _Table]) -> dict[str, Tally]:
    out = {}
    for name, table in tables.items():
        t = Tally(created=len(table.new))
        for row in table.rows:
            if row.handle > 0:
                if row.changes:
                    t.updated += 1
                else:
                    t.unchanged += 1
        if table.kind.sheet or t.created:
            out[name] = t
    return out


def _apply(tables: dict[str, _Table], ends: dict[int, dict[str, CableEnd]], actor: Actor) -> int:
    logged = 0
    for table in tables.values():
        kind = table.kind
        refs = {c.name: c.ref.kind for c in kind.columns if c.ref and c.model_field}

        def value(column: str, v: Any, refs=refs, kind=kind) -> Any:
            """A reference's handle becomes its object (saved by now: kinds go in order); a
            secret is stored encrypted."""
            if kind.column[column].secret:
                return secrets.encrypt(v) if v else ""
            return tables[refs[column]].objs[v] if column in refs and v is not None else v

        created = []
        for handle, values in table.new:
            obj = kind.model()
            for c, v in values.items():
                if (f := kind.column[c].model_field) is not None:
                    setattr(obj, f, value(c, v))
            table.objs[handle] = obj
            created.append(obj)
        kind.model.objects.bulk_create(created, batch_size=BATCH)

        updated, fields = [], set()
        for row in table.rows:
            changes = {f: v for f, v in row.changes.items() if f != "ends"}
            if not changes:
                continue
            obj = table.objs[row.handle]
            before = snapshot(obj)
            for c, v in row.values.items():
                if (f := kind.column[c].model_field) in changes or c in refs:
                    setattr(obj, f, value(c, v))
            fields.update(changes)
            updated.append((before, obj))
        if updated:
            kind.model.objects.bulk_update([o for _, o in updated], fields, batch_size=BATCH)
        logged += change_records_bulk(actor=actor, created=created, updated=updated)
    return logged + _apply_ends(tables, ends, actor)


def _apply_ends(tables, ends: dict[int, dict[str, CableEnd]], actor: Actor) -> int:
    cables, nics, ports = (tables[k] for k in ("cables", "nics", "ports"))
    created, updated = [], []
    for row in cables.rows:
        if row.handle > 0 and "ends" not in row.changes:
            continue
        cable = cables.objs[row.handle]
        for side in "ab":
            nic, port = row.values.get(f"{side}_interface"), row.values.get(f"{side}_port")
            wanted = (nics.objs[nic] if nic else None, ports.objs[port] if port else None)
            end = ends.get(row.handle, {}).get(side)
            if end is None:
                end = CableEnd(cable=cable, side=side, interface=wanted[0], port=wanted[1])
                created.append(end)
            elif (end.interface_id, end.port_id) != tuple(w and w.pk for w in wanted):
                before = snapshot(end)
                end.cable, end.interface, end.port = cable, *wanted
                updated.append((before, end))
    CableEnd.objects.bulk_create(created, batch_size=BATCH)
    if updated:
        objs = [e for _, e in updated]
        CableEnd.objects.bulk_update(objs, ["interface", "port"], batch_size=BATCH)
    return change_records_bulk(actor=actor, created=created, updated=updated)


class _DryRun(Exception):
    pass


def _database_problem(exc: DatabaseError) -> Problem:
    diag = getattr(exc.__cause__, "diag", None)
    table = getattr(diag, "table_name", None) or ""
    sheet = next((k.name for k in KINDS.values() if k.model._meta.db_table == table), table)
    detail = getattr(diag, "message_detail", None)
    reason = str(getattr(diag, "message_primary", None) or exc).strip()
    return Problem(
        sheet,
        None,
        getattr(diag, "constraint_name", None) or "",
        f"the database refused the import, so nothing was changed: {reason}"
        + (f" ({detail})" if detail else ""),
    )


def inventory_import(*, sheets: list[Sheet], actor: Actor, dry_run: bool = False) -> ImportReport:
    """Check every row of `sheets`; apply them all, or (with any problem) none."""
    report = ImportReport(dry_run=dry_run)
    actor = Actor(user=actor.user, via=VIA, ip=actor.ip, user_agent=actor.user_agent)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_ID])
            tables = _load()
            ends: dict[int, dict[str, CableEnd]] = defaultdict(dict)
            for end in CableEnd.objects.order_by():
                ends[end.cable_id][end.side] = end
            checker = _Checker(tables)
            by_kind: dict[str, list[Sheet]] = defaultdict(list)
            for sheet in sheets:
                if sheet.kind in KINDS and KINDS[sheet.kind].sheet:
                    by_kind[sheet.kind].append(sheet)
                else:
                    checker.problem(
                        sheet.title, None, "", "unknown sheet: name it after one of the kinds"
                    )
            for name, kind in KINDS.items():
                if kind.sheet:
                    checker.rows(kind, by_kind.get(name, []))
            checker.cables(ends)
            order = {s.title: i for i, s in enumerate(sheets)}
            report.problems = sorted(
                checker.problems, key=lambda p: (order.get(p.sheet, -1), p.row or 0)
            )
            report.tallies = _tallies(tables)
            if report.problems:
                return report
            report.change_records = _apply(tables, ends, actor)
            if dry_run:
                raise _DryRun
        report.applied = True
    except _DryRun:
        pass
    except DatabaseError as exc:
        report.problems.append(_database_problem(exc))
    return report
