"""A disk cache of media files with a size cap: the least recently used go first.

Each entry is two files named after a hash of the media id: the bytes, and a small JSON
with the MIME type and file name. A file's modification time is its last use, so the
order survives a restart; the index of sizes is rebuilt from the directory at start.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class CachedMedia:
    path: Path
    mime_type: str
    filename: str | None
    size: int


class MediaCache:
    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        # entry key -> bytes, the least recently used first
        self._sizes: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()  # puts run in worker threads
        directory.mkdir(parents=True, exist_ok=True)
        found = [
            (data.stat().st_mtime, data.stem, data.stat().st_size)
            for data in directory.glob("*.bin")
        ]
        for _, key, size in sorted(found):
            self._sizes[key] = size

    @property
    def total_bytes(self) -> int:
        return sum(self._sizes.values())

    def _key(self, media_id: str) -> str:
        return hashlib.sha256(media_id.encode()).hexdigest()[:40]

    def get(self, media_id: str) -> CachedMedia | None:
        key = self._key(media_id)
        data, meta = self.directory / f"{key}.bin", self.directory / f"{key}.json"
        try:
            about = json.loads(meta.read_text())
            size = data.stat().st_size
        except (OSError, ValueError):
            return None
        now = time.time()
        with self._lock:
            with contextlib.suppress(OSError):  # evicted meanwhile: the answer finds no file
                os.utime(data, (now, now))  # a use: last to be evicted, after a restart too
            self._sizes[key] = size
            self._sizes.move_to_end(key)
        return CachedMedia(data, about["mime_type"], about.get("filename"), size)

    def put(
        self, media_id: str, content: bytes, *, mime_type: str, filename: str | None
    ) -> CachedMedia:
        key = self._key(media_id)
        data, meta = self.directory / f"{key}.bin", self.directory / f"{key}.json"
        # Written aside then renamed, so a reader never sees half a file.
        partial = data.with_suffix(".part")
        partial.write_bytes(content)
        meta.write_text(
            json.dumps({"media_id": media_id, "mime_type": mime_type, "filename": filename})
        )
        partial.replace(data)
        with self._lock:
            self._sizes[key] = len(content)
            self._sizes.move_to_end(key)
            self._evict(keep=key)
        return CachedMedia(data, mime_type, filename, len(content))

    def _evict(self, *, keep: str) -> None:
        for key in list(self._sizes):
            if self.total_bytes <= self.max_bytes:
                break
            if key == keep:
                continue
            for suffix in (".bin", ".json"):
                (self.directory / f"{key}{suffix}").unlink(missing_ok=True)
            del self._sizes[key]
