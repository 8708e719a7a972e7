"""Receiving an upload: the size limit holds while the body streams in, not after.

Django's default handlers buffer a whole file before the view runs; this handler counts
bytes as they arrive and stops reading the request once the limit is passed.
"""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import TemporaryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopUpload
from django.http import HttpRequest

from taskstream.conf import conf

FIELD = "file"
# Multipart framing and small form fields around the file.
ENVELOPE_BYTES = 16 * 1024


class LimitedUploadHandler(FileUploadHandler):
    """Streams the ``file`` field into a temporary file, at most ``limit`` bytes of it."""

    def __init__(self, request: HttpRequest | None = None, *, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.received = 0
        self.too_large = False
        self.seen_file = False
        self.file: TemporaryUploadedFile | None = None

    def new_file(self, field_name: str, file_name: str, content_type: str,
                 content_length: int | None, charset: str | None = None,
                 content_type_extra: dict[str, Any] | None = None) -> None:
        if field_name != FIELD or self.seen_file:
            raise SkipFile()  # one file, in one field; anything else is not read into a file
        self.seen_file = True
        super().new_file(field_name, file_name, content_type, content_length, charset,
                         content_type_extra)
        # The name is kept for display only; the temp file's own name is generated.
        self.file = TemporaryUploadedFile("upload.csv", "application/octet-stream", 0, None)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if self.file is None:
            return raw_data
        self.received += len(raw_data)
        if self.received > self.limit:
            self.too_large = True
            self.file.close()  # Django closes it again on StopUpload; the temp file is gone
            raise StopUpload(connection_reset=True)
        self.file.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> TemporaryUploadedFile | None:
        if self.file is None or self.too_large:
            return None
        self.file.seek(0)
        self.file.size = file_size
        self.file.original_name = self.file_name or ""  # type: ignore[attr-defined]
        return self.file


def install_handler(request: HttpRequest) -> LimitedUploadHandler:
    """Replace the request's upload handlers; call before touching POST or FILES."""
    handler = LimitedUploadHandler(request, limit=conf.PIPELINE_MAX_UPLOAD_BYTES)
    request.upload_handlers = [handler]
    return handler


def declared_too_large(request: HttpRequest) -> bool:
    """A body that announces more than the limit is refused before a byte is read."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return length > conf.PIPELINE_MAX_UPLOAD_BYTES + ENVELOPE_BYTES
