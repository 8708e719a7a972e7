"""Upload limits over HTTP: size while streaming, type from content, names, dedupe."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

from taskstream.pipelines import storage as files
from taskstream.pipelines.models import Pipeline, Upload
from tests.pipelines.cleanup import remove_pipeline_files  # noqa: F401
from tests.pipelines.data import make_csv

pytestmark = pytest.mark.django_db(transaction=True)


def api(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(client: Client, content: bytes, name: str = "data.csv") -> Any:
    return client.post("/api/pipelines/", {"file": SimpleUploadedFile(name, content)})


def limited(limit: int) -> Any:
    return override_settings(TASKSTREAM={**settings.TASKSTREAM,
                                         "PIPELINE_MAX_UPLOAD_BYTES": limit})


def uploads_dir() -> set[str]:
    try:
        return set(files.pipeline_storage().listdir(f"{files.ROOT}/uploads")[1])
    except FileNotFoundError:
        return set()


def test_oversize_is_refused_while_streaming_and_nothing_is_stored(make_user: Any) -> None:
    client = api(make_user())
    before = uploads_dir()
    with limited(2000):
        # Declares less than limit + envelope, so only the streaming count can stop it.
        response = post(client, make_csv(200))
        assert len(make_csv(200)) > 2000
        assert response.status_code == 413, response.content
        assert response.json()["code"] == "too_large"
        # Announced far above the limit: refused before the body is read.
        response = post(client, make_csv(5000))
        assert response.status_code == 413
    assert Upload.objects.count() == 0 and uploads_dir() == before


def _zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("data.csv", b"0" * 50_000_000)
    return out.getvalue()


@pytest.mark.parametrize(("content", "why"), [
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "PNG"),
    (_zip_bomb(), "zip archive"),
    (gzip.compress(b"a,b\n" * 100_000), "gzip"),
    (b"a,b\n1,\x002\n", "binary"),
    (b"\xff\xfe\xfd not utf-8 \xc3\x28,x\n", "UTF-8"),
    (b"", "empty"),
])
def test_wrong_type_is_judged_by_content_not_name(make_user: Any, content: bytes,
                                                  why: str) -> None:
    response = post(api(make_user()), content, name="looks-fine.csv")
    assert response.status_code == 415, response.content
    assert response.json()["code"] == "unsupported_type"
    assert why in response.json()["detail"]
    assert Upload.objects.count() == 0


def test_path_in_the_name_never_touches_the_filesystem(make_user: Any) -> None:
    client = api(make_user())
    media = Path(settings.MEDIA_ROOT)
    response = post(client, b"name,qty\r\na,1\r\n", name="../../../../tmp/evil\x00.csv")
    assert response.status_code == 202, response.content
    upload = Upload.objects.get()
    assert upload.original_name == "evil.csv"
    assert upload.stored_name.startswith(f"{files.ROOT}/uploads/")
    assert ".." not in upload.stored_name
    assert (media / upload.stored_name).resolve().is_relative_to(media.resolve())
    assert not (media.parent / "tmp" / "evil.csv").exists()
    Pipeline.objects.all().delete()


def test_missing_file_and_auth_and_csrf(make_user: Any) -> None:
    user = make_user()
    response = api(user).post("/api/pipelines/", {"nothing": "here"})
    assert response.status_code == 400 and response.json()["code"] == "no_file"
    assert post(Client(), b"a\n1\n").status_code == 401
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    response = post(strict, b"a\n1\n")
    assert response.status_code == 403 and response.json()["code"] == "csrf_failed"
    assert Upload.objects.count() == 0
