"""Read the phone numbers of a CSV file to enrol in a sequence.

The header row names a ``wa_id`` or ``phone`` column; other columns are ignored (an
export of contacts will do). Each number is checked and normalised; a bad or repeated
one is an error of its line.

>>> parsed = parse_numbers_csv(b"name,phone\\nAnn,+1 650 555 1234\\nBob,x\\n", "US")
>>> parsed.rows
[(2, '16505551234')]
>>> [(error.line, error.message) for error in parsed.errors]
[(3, "phone: 'x' is not a valid phone number")]
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

from engine.contacts.csv_import import CsvFormatError, RowError, open_csv
from engine.phone import InvalidPhoneNumber, to_wa_id


@dataclass(slots=True)
class ParsedNumbers:
    rows: list[tuple[int, str]] = field(default_factory=list)
    """(line, wa_id) of each valid row."""
    errors: list[RowError] = field(default_factory=list)


def parse_numbers_csv(data: bytes, default_region: str) -> ParsedNumbers:
    reader, header = open_csv(data)
    column = "wa_id" if "wa_id" in header else "phone" if "phone" in header else None
    if column is None:
        raise CsvFormatError(1, "the header needs a wa_id or phone column")
    position = header.index(column)
    parsed = ParsedNumbers()
    first_line_of: dict[str, int] = {}
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return parsed
        except csv.Error as error:
            parsed.errors.append(RowError(reader.line_num, f"not valid CSV: {error}"))
            return parsed
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        raw = cells[position].strip() if position < len(cells) else ""
        try:
            wa_id = to_wa_id(raw, default_region)
        except InvalidPhoneNumber as error:
            parsed.errors.append(RowError(line, f"{column}: {error}"))
            continue
        if wa_id in first_line_of:
            parsed.errors.append(
                RowError(line, f"{column}: the same number as line {first_line_of[wa_id]}")
            )
            continue
        first_line_of[wa_id] = line
        parsed.rows.append((line, wa_id))
