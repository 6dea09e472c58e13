"""The head of a multipart form body: the fields that come before the first file.

When a no-JS submission is refused for its declared size, the source's typed message is given
back from here: the submit form puts the message before the files, so it is in the first
megabyte or so of the body, and nothing after it is read (docs/SPEC.md §7 does not apply: no
file byte is read, so nothing is spooled).
"""

from __future__ import annotations

from typing import Protocol

from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData


class Readable(Protocol):
    """A stream of the body: a WSGI input or werkzeug's LimitedStream over one."""

    def read(self, size: int = -1, /) -> bytes: ...


READ = 64 * 1024


def leading_fields(stream: Readable, boundary: str, limit: int) -> dict[str, str]:
    """The text fields before the first file part, reading at most ``limit`` bytes; a field
    cut off by the limit is left out. Never raises on malformed input: returns what it has.
    """
    decoder = MultipartDecoder(boundary.encode("latin-1"), max_form_memory_size=limit)
    fields: dict[str, str] = {}
    name: str | None = None
    parts: list[bytes] = []
    read = 0
    try:
        while read < limit:
            chunk = stream.read(min(READ, limit - read))
            read += len(chunk)
            decoder.receive_data(chunk or None)
            event = decoder.next_event()
            while not isinstance(event, NeedData):
                if isinstance(event, File | Epilogue):
                    return fields
                if isinstance(event, Field):
                    name, parts = event.name, []
                elif isinstance(event, Data) and name is not None:
                    parts.append(event.data)
                    if not event.more_data:
                        fields[name] = b"".join(parts).decode("utf-8", "replace")
                        name = None
                event = decoder.next_event()
            if not chunk:
                break
    except (ValueError, OSError):
        pass  # a malformed or interrupted body: keep what was whole
    return fields
