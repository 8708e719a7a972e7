"""Why a document refused a request; each maps to an HTTP status and a WebSocket error code."""

from __future__ import annotations

from taskstream.exceptions import Refusal
from taskstream.hub.protocol import BAD_UPDATE


class CollabError(Refusal):
    """Base of the collab app's refusals; ``code`` is the wire code, ``status`` the HTTP one."""


class DocumentNotFound(CollabError):
    """No such document, or one the user may not read (never confirms it exists)."""

    code = "not_found"
    status = 404


class DocumentForbidden(CollabError):
    """The user may read the document but not do this (a viewer editing, a member sharing)."""

    code = "forbidden"
    status = 403


class BadUpdate(CollabError):
    """The bytes are not a Yjs v1 update the document can apply (malformed, or missing
    changes it builds on)."""

    code = BAD_UPDATE
    status = 400


class UpdateTooLarge(CollabError):
    """The update is over ``COLLAB_MAX_UPDATE_BYTES``, or would make the document larger
    than ``COLLAB_MAX_DOCUMENT_BYTES``."""

    code = "too_large"
    status = 413


class InvalidInput(CollabError):
    """A field is missing or malformed (not base64, an unknown role, no such user)."""

    code = "invalid"
    status = 422
