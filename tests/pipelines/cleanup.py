"""Delete the files a test's uploads and pipelines left in storage (the rows go with the
test database's flush; the files would stay in var/media)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def remove_pipeline_files(transactional_db: Any) -> Iterator[None]:
    yield  # (before the database is flushed: it needs the rows to find the files)
    from taskstream.pipelines import storage as files
    from taskstream.pipelines.models import Pipeline, Upload

    storage = files.pipeline_storage()
    for pipeline_id in Pipeline.objects.values_list("pk", flat=True):
        files.delete_work_files(pipeline_id, keep_reports=False)
    files.delete_quietly(storage, list(Upload.objects.values_list("stored_name", flat=True)))
