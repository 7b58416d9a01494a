"""A disk cache of media files with a size cap: the least recently used go first.

Each entry is two files named after a hash of the media id: the bytes, and a small JSON
with the MIME type and file name. A file's modification time is its last use, so the
order survives a restart; the index of sizes is rebuilt from the directory at start.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
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
        self._sizes: dict[str, int] = {}  # entry key -> bytes
        directory.mkdir(parents=True, exist_ok=True)
        for data in directory.glob("*.bin"):
            self._sizes[data.stem] = data.stat().st_size

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
        os.utime(data, (now, now))  # a use: last to be evicted
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
        self._sizes[key] = len(content)
        self._evict(keep=key)
        return CachedMedia(data, mime_type, filename, len(content))

    def _evict(self, *, keep: str) -> None:
        if self.total_bytes <= self.max_bytes:
            return
        used = []
        for key in self._sizes:
            try:
                used.append(((self.directory / f"{key}.bin").stat().st_mtime, key))
            except OSError:
                used.append((0.0, key))
        for _, key in sorted(used):
            if self.total_bytes <= self.max_bytes:
                break
            if key == keep:
                continue
            for suffix in (".bin", ".json"):
                (self.directory / f"{key}{suffix}").unlink(missing_ok=True)
            del self._sizes[key]
