"""Uploaded CSV files (contacts, sequence enrolments): read with a size limit, and the
answer to one that cannot be read at all."""

from __future__ import annotations

from aiohttp import web

from engine.contacts.csv_import import CsvFormatError
from engine.web.error_answers import ApiError

IMPORT_LIMIT_BYTES = 64 * 1024 * 1024


def invalid_csv(error: CsvFormatError) -> ApiError:
    """A CSV file that cannot be read at all: 422 with the line."""
    return ApiError(
        422,
        "invalid_csv",
        f"line {error.line}: {error.message}",
        errors=[{"line": error.line, "message": error.message}],
    )


async def read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "body_too_large", f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
