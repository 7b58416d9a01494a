"""Times in JSON answers look the same everywhere: pydantic's form, UTC as ``Z``."""

from __future__ import annotations

from datetime import datetime

from pydantic import TypeAdapter

_DATETIME = TypeAdapter(datetime)


def json_time(moment: datetime | None) -> str | None:
    """
    >>> from datetime import UTC
    >>> json_time(datetime(2026, 3, 3, 9, 0, tzinfo=UTC))
    '2026-03-03T09:00:00Z'
    """
    return None if moment is None else str(_DATETIME.dump_python(moment, mode="json"))
