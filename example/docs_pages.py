"""The demo's shared documents: the list (with a form to start one) and a document.

Both pages are shells: the list, the document's members and its text come from the
collab HTTP API and the hub (``taskstream/collab.js``), which check who may read and
write; the pages only pass the document's id and the user's name along.
"""

from __future__ import annotations

from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def docs_page(request: HttpRequest) -> HttpResponse:
    return render(request, "example/docs.html")


@login_required
def doc_page(request: HttpRequest, doc_id: UUID) -> HttpResponse:
    return render(request, "example/doc.html", {
        "config": {"id": str(doc_id), "user": request.user.get_username(),
                   # CodeMirror adds its <style> with it under the page's CSP.
                   "nonce": getattr(request, "csp_nonce", None)},
    })
