"""Bulk import (CSV / JSON lines rows -> MemberIn-shaped dicts, and the per-row report) and the audit log."""
from __future__ import annotations

import csv
import io
import json
import re

from marshmallow import Schema, ValidationError, fields, pre_dump

from shared.web.pages import PageQuery

from intake.schemas.common import Str
from intake.schemas.people import MemberIn


# --- imports and audit -------------------------------------------------------------------------

class ImportRowOut(Schema):
    row = fields.Int(metadata={"description": "1-based data row (CSV: not counting the header)"})
    external_id = Str(allow_none=True)
    outcome = Str(metadata={"description": "created, updated, unchanged or rejected"})
    member_id = Str(allow_none=True)
    errors = fields.Dict(keys=Str(), values=fields.List(Str()), allow_none=True)
    existing = fields.Dict(allow_none=True)


class ImportOut(Schema):
    id = Str(attribute="_id")
    organization_id = Str()
    site_id = Str()
    format = Str()
    created_at = fields.DateTime()
    counts = fields.Dict(keys=Str(), values=fields.Int())
    rows = fields.List(fields.Nested(ImportRowOut))


class AuditQuery(PageQuery):
    resource_id = Str()
    resource_type = Str()
    action = Str()


class AuditOut(Schema):
    at = fields.DateTime()
    actor = Str()
    actor_role = Str()
    action = Str()
    resource_type = Str()
    resource_id = Str(allow_none=True, metadata={
        "description": "the record, for an entry about one (`*` for a list read); null for several records read "
                       "in one lookup by ids (see `resource_ids`)"})
    resource_ids = fields.List(Str(), metadata={
        "description": "every record the entry is about: one, or the several a lookup by ids answered"})
    details = fields.Dict()

    @pre_dump
    def _records(self, entry: dict, **_) -> dict:
        """A lookup by ids is one entry naming every record it answered (its ``resource_id`` is stored as
        the list, so the same index finds it by any of them)."""
        about = entry.get("resource_id")
        several = isinstance(about, list)
        return {**entry, "resource_id": None if several else about,
                "resource_ids": list(about) if several else ([] if about in (None, "*") else [about])}


# --- bulk import: CSV / JSON lines rows -> MemberIn-shaped dicts ----------------------------------

CSV_LIST_COLUMNS = ("languages", "contact_channels", "substances", "pathways", "lived_experience_topics")


CSV_COLUMNS = ("external_id", "first_name", "last_name", "preferred_name", "pronouns", "email", "phone",
               "date_of_birth", "languages", "preferred_language", "time_zone", "availability", "contact_channels",
               "substances", "pathways", "co_occurring_mental_health", "lived_experience_topics",
               "leader_gender_preference", "meeting_mode", "consents")


DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


WINDOW_RE = re.compile(r"^\s*(\w+)\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$")


IMPORT_FORMATS = {"text/csv": "csv", "application/csv": "csv", "application/x-ndjson": "jsonl",
                  "application/jsonl": "jsonl", "application/x-jsonlines": "jsonl", "application/json-lines": "jsonl"}


# The upload's request body as documented: a CSV names first_name in its header row (the only column it
# must have; a row's problems are reported per row in the answer, never refused as a whole).
CSV_HEADER_PATTERN = r'^\ufeff?([^\r\n",\x00]*,)*("first_name"|first_name)(,[^\r\n",\x00]*)*(\r?\n|$)'


IMPORT_REQUEST_BODY = {"required": True, "content": {
    "text/csv": {"schema": {"type": "string", "pattern": CSV_HEADER_PATTERN,
                            "description": "a header row naming first_name, then a member a row"}},
    "application/x-ndjson": {"schema": {"type": "string", "description": "a member object a line"}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}},
}}


class RowError(ValueError):
    def __init__(self, errors: dict):
        super().__init__(str(errors))
        self.errors = errors


def _key(name: str) -> str:
    """A column or field name as a row's error key: the report is stored, and a stored key holds no NUL."""
    return name.replace("\x00", "\\x00")


def _split(cell: str) -> list[str]:
    return [part.strip() for part in re.split(r"[;|]", cell) if part.strip()]


def _windows(cell: str) -> list[dict]:
    """'mon 18:00-20:00; 2 09:00-11:00' -> availability windows."""
    out = []
    for part in _split(cell):
        match = WINDOW_RE.match(part)
        if not match:
            raise RowError({"availability": [f"{part!r} is not 'day HH:MM-HH:MM' (day: mon..sun or 0..6)."]})
        day_raw, start, end = match.groups()
        day = DAYS.get(day_raw[:3].lower()) if not day_raw.isdigit() else int(day_raw)
        if day is None:
            raise RowError({"availability": [f"{day_raw!r} is not a day (mon..sun or 0..6)."]})
        out.append({"day": day, "start": start.zfill(5), "end": end.zfill(5)})
    return out


def csv_row_to_member(row: dict) -> dict:
    """One CSV row (header names = MemberIn fields; lists separated by ';') -> a MemberIn-shaped dict."""
    unknown = sorted(k for k in row if k is not None and k not in CSV_COLUMNS)
    if None in row:
        raise RowError({"_row": ["The row has more cells than the header."]})
    if unknown:
        raise RowError({_key(k): ["Unknown column."] for k in unknown})
    out: dict = {}
    for name, cell in row.items():
        cell = (cell or "").strip()
        if not cell:
            continue
        if name in CSV_LIST_COLUMNS:
            out[name] = _split(cell)
        elif name == "availability":
            out[name] = _windows(cell)
        elif name == "consents":
            out[name] = [{"purpose": p} for p in _split(cell)]
        else:
            out[name] = cell
    return out


def parse_import(body: bytes, fmt: str) -> list[tuple[int, dict | None, dict | None]]:
    """The upload -> [(row number, member-shaped dict or None, errors or None)]. A row that cannot be
    read is reported, never fatal to the others."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RowError({"file": ["The upload is not UTF-8 text."]}) from None
    rows: list[tuple[int, dict | None, dict | None]] = []
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            raise RowError({"file": ["The CSV has no header row."]})
        missing = {"first_name"} - set(reader.fieldnames)
        if missing:
            raise RowError({"file": [f"The CSV header lacks: {', '.join(sorted(missing))}."]})
        for number, raw in enumerate(reader, start=1):
            try:
                rows.append((number, csv_row_to_member(raw), None))
            except RowError as exc:
                rows.append((number, None, exc.errors))
    else:
        number = 0
        for line in text.splitlines():
            if not line.strip():
                continue
            number += 1
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                rows.append((number, None, {"_row": [f"Not JSON: {exc.msg}."]}))
                continue
            if not isinstance(value, dict):
                rows.append((number, None, {"_row": ["Each line must be a JSON object."]}))
                continue
            rows.append((number, value, None))
    return rows


def load_import_row(data: dict, site_id: str) -> dict:
    """Shape-check an import row as a registration at ``site_id`` (raises RowError naming fields)."""
    if "site_id" in data and data["site_id"] != site_id:
        raise RowError({"site_id": ["Rows are imported into the site of the upload; leave site_id out."]})
    try:
        return MemberIn().load({**data, "site_id": site_id})
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_row": exc.messages}
        raise RowError({_key(k): (v if isinstance(v, list) else [json.dumps(v)]) for k, v in messages.items()}) from None
