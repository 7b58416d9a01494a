"""Parse a contacts CSV into valid rows and per-line errors.

Columns (header row, any order, case-insensitive): ``wa_id`` or ``phone``, and
``user_id`` (Meta's business-scoped user id; a row needs a number or a user id, or
both, which then name one person), ``name``, ``marketing_opt_in``
(yes/no/true/false/1/0; blank keeps the current value, or the default for a new
contact), ``tags`` (separated by ``;``, ``|`` or ``,``).

>>> data = b"phone,name,marketing_opt_in\\n+16505551234,Ann,no\\nx,Bob,\\n"
>>> parsed = parse_contacts_csv(data, "US")
>>> [(row.wa_id, row.marketing_opt_in) for row in parsed.rows]
[('16505551234', False)]
>>> [(error.line, error.message) for error in parsed.errors]
[(3, "phone: 'x' is not a valid phone number")]
>>> parsed = parse_contacts_csv(b"phone,user_id\\n,US.1349\\n+16505551234,US.77\\n,US 1\\n", "US")
>>> [(row.wa_id, row.user_id) for row in parsed.users]
[(None, 'US.1349'), ('16505551234', 'US.77')]
>>> [(error.line, error.message) for error in parsed.errors]  # doctest: +ELLIPSIS
[(4, "user_id: 'US 1' is not a user id (...)")]
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.identity import USER_ID_SHAPE, is_user_id
from engine.phone import InvalidPhoneNumber, to_wa_id
from engine.store.contacts import ImportedContact

if TYPE_CHECKING:
    from _csv import Reader

_TRUE = {"yes", "true", "1", "y"}
_FALSE = {"no", "false", "0", "n"}
_TAG_SEPARATOR = re.compile(r"[;|,]")
_KNOWN = {"wa_id", "phone", "user_id", "name", "marketing_opt_in", "tags"}
_EXPORTED_ONLY = {"id", "created_at", "updated_at"}
"""Columns of the contacts export that an import reads past, so an export imports."""
MAX_TAG_LENGTH = 64


class CsvFormatError(ValueError):
    """The file as a whole cannot be read (no header, no number column, bad encoding)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    message: str


@dataclass(frozen=True, slots=True)
class ImportedUser:
    """A row naming a customer by user id (with their number, or without one)."""

    user_id: str
    wa_id: str | None
    name: str | None
    marketing_opt_in: bool | None
    tags: Sequence[str]


@dataclass(slots=True)
class ParsedImport:
    rows: list[ImportedContact] = field(default_factory=list)
    """Rows with a phone number only: imported in bulk."""
    users: list[ImportedUser] = field(default_factory=list)
    """Rows with a user id: imported one by one, as a webhook naming both would be."""
    errors: list[RowError] = field(default_factory=list)


def parse_opt_in(text: str) -> bool | None:
    value = text.strip().lower()
    if not value:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"marketing_opt_in: {text!r} is not one of yes/no/true/false/1/0")


def open_csv(data: bytes) -> tuple[Reader, list[str]]:
    """A reader of a UTF-8 CSV file past its header row, and the header's column names
    (trimmed, lower-case); CsvFormatError when there is no header to read."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CsvFormatError(1, f"the file is not UTF-8 text: {error}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [column.strip().lower() for column in next(reader)]
    except StopIteration:
        raise CsvFormatError(1, "the file is empty; expected a header row") from None
    except csv.Error as error:
        raise CsvFormatError(1, f"the header row is not valid CSV: {error}") from None
    return reader, header


def parse_contacts_csv(data: bytes, default_region: str) -> ParsedImport:
    reader, header = open_csv(data)
    unknown = [column for column in header if column and column not in _KNOWN | _EXPORTED_ONLY]
    if unknown:
        raise CsvFormatError(
            1, f"unknown column(s) {', '.join(unknown)}; expected {', '.join(sorted(_KNOWN))}"
        )
    number_column = "wa_id" if "wa_id" in header else "phone" if "phone" in header else None
    if number_column is None and "user_id" not in header:
        raise CsvFormatError(1, "the header needs a wa_id, phone or user_id column")
    position = {column: index for index, column in enumerate(header)}

    parsed = ParsedImport()
    first_line_of: dict[str, int] = {}
    line = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            parsed.errors.append(RowError(reader.line_num, f"not valid CSV: {error}"))
            break
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(header):
            parsed.errors.append(
                RowError(line, f"{len(cells)} cells, but the header has {len(header)} columns")
            )
            continue

        def cell(column: str, cells: list[str] = cells) -> str:
            index = position.get(column)
            return cells[index].strip() if index is not None and index < len(cells) else ""

        number = cell(number_column) if number_column else ""
        user_id = cell("user_id") or None
        if not number and user_id is None:
            what = f"{number_column} or user_id" if number_column else "user_id"
            parsed.errors.append(RowError(line, f"{what}: a row needs a number or a user id"))
            continue
        try:
            wa_id = to_wa_id(number, default_region) if number else None
        except InvalidPhoneNumber as error:
            parsed.errors.append(RowError(line, f"{number_column}: {error}"))
            continue
        if user_id is not None and not is_user_id(user_id):
            parsed.errors.append(
                RowError(line, f"user_id: {user_id!r} is not a user id ({USER_ID_SHAPE})")
            )
            continue
        try:
            opt_in = parse_opt_in(cell("marketing_opt_in"))
        except ValueError as error:
            parsed.errors.append(RowError(line, str(error)))
            continue
        tags = sorted({tag.strip() for tag in _TAG_SEPARATOR.split(cell("tags")) if tag.strip()})
        long_tags = [tag for tag in tags if len(tag) > MAX_TAG_LENGTH]
        if long_tags:
            parsed.errors.append(
                RowError(line, f"tags: {long_tags[0]!r} is longer than {MAX_TAG_LENGTH}")
            )
            continue
        repeated = [
            (f"{column}: the same {what}", address)
            for column, what, address in (
                (number_column, "number", wa_id),
                ("user_id", "user id", user_id),
            )
            if address is not None and address in first_line_of
        ]
        if repeated:
            same, address = repeated[0]
            parsed.errors.append(RowError(line, f"{same} as line {first_line_of[address]}"))
            continue
        for given in (wa_id, user_id):
            if given is not None:
                first_line_of[given] = line
        name = cell("name") or None
        if user_id is not None:
            parsed.users.append(ImportedUser(user_id, wa_id, name, opt_in, tags))
        else:
            assert wa_id is not None
            parsed.rows.append(
                ImportedContact(wa_id=wa_id, name=name, marketing_opt_in=opt_in, tags=tags)
            )
    return parsed
