"""Per-step retries and a chunk that keeps failing, on a worker with faulty pipeline kinds."""

from __future__ import annotations

import io
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.files.base import ContentFile

from taskstream.jobs.models import Job
from taskstream.pipelines import services
from taskstream.pipelines import storage as files
from taskstream.pipelines.models import Chunk, Pipeline
from tests.pipelines.cleanup import remove_pipeline_files  # noqa: F401
from tests.pipelines.data import make_csv
from tests.pipelines.kinds import fixed_marker

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE = f"tspipes{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def faulty_worker(start_worker: Callable[..., Any]) -> Iterator[Any]:
    worker = start_worker(concurrency=2, DJANGO_SETTINGS_MODULE="tests.pipelines.worker_settings",
                          CELERY_TASK_DEFAULT_QUEUE=QUEUE,
                          taskstream={"PIPELINE_CHUNK_ROWS": 1000,
                                      "PIPELINE_RETRY_BACKOFF": 0.2})
    yield worker
    worker.stop()


def start(user: Any, kind: str, rows: int = 3000) -> Pipeline:
    import tests.pipelines.kinds  # noqa: F401  (this process must know the kinds too)

    upload, _ = services.upload_create(owner=user, file=io.BytesIO(make_csv(rows, seed=rows)),
                                       original_name="faulty.csv")
    pipeline, _ = services.pipeline_start(upload=upload, owner=user, kind=kind, queue=QUEUE,
                                          force=True)
    return pipeline


def settle(pipeline: Pipeline, timeout: float = 30.0) -> Job:
    """The parent job once it and every child stopped moving."""
    deadline = time.monotonic() + timeout
    live = ["queued", "running", "retrying"]
    while True:
        job = Job.objects.get(pk=pipeline.job_id)
        if job.state not in live and not Job.objects.filter(
                parent=job, state__in=["running", "retrying"]).exists():
            return job
        assert time.monotonic() < deadline, f"pipeline still {job.state}"
        time.sleep(0.05)


def attempts(pipeline: Pipeline) -> list[int]:
    return [c.job.attempt for c in Chunk.objects.filter(pipeline=pipeline).select_related("job")]


def test_a_chunk_that_fails_twice_then_succeeds(make_user: Any, faulty_worker: Any) -> None:
    pipeline = start(make_user(), "test-flaky")
    job = settle(pipeline)
    assert job.state == "succeeded", job.error_message
    assert attempts(pipeline) == [1, 3, 1]
    chunk = Chunk.objects.select_related("job").get(pipeline=pipeline, index=1)
    assert chunk.job.state == "succeeded" and chunk.job.error_message == ""
    pipeline.refresh_from_db()
    assert pipeline.summary["rows"] == 3000


def test_a_permanently_bad_chunk_fails_the_pipeline_and_retry_keeps_the_rest(
        make_user: Any, faulty_worker: Any) -> None:
    pipeline = start(make_user(), "test-broken")
    job = settle(pipeline)
    assert job.state == "failed"
    # A clear error: which chunk, which lines, how many attempts, and why.
    assert job.error_message.startswith("chunk 2 (lines 1002–2001) after 4 attempts failed")
    assert job.progress_message == "failed"  # not the step it was at
    assert "reference data for this chunk is unreachable" in job.error_message
    chunks = {c.index: c.job for c in Chunk.objects.filter(pipeline=pipeline).select_related("job")}
    assert chunks[1].state == "failed" and chunks[1].attempt == 4
    assert chunks[0].state == chunks[2].state == "succeeded"
    steps = {j.kind: j.state for j in Job.objects.filter(parent_id=job.pk, pipeline_chunk=None)}
    assert steps[services.AGGREGATE] == steps[services.RENDER] == "cancelled"

    marker = files.pipeline_storage().save(fixed_marker(pipeline.pk), ContentFile(b"fixed"))
    services.pipeline_retry(pipeline=pipeline, actor=pipeline.owner)
    job = settle(pipeline)
    files.pipeline_storage().delete(marker)
    assert job.state == "succeeded", job.error_message
    # Chunks already done were not redone: one attempt each; the bad one ran once more.
    assert attempts(pipeline) == [1, 5, 1]
    pipeline.refresh_from_db()
    assert pipeline.summary["rows"] == 3000 and pipeline.report_csv


def test_cancel_stops_running_chunks_at_a_checkpoint(make_user: Any, faulty_worker: Any) -> None:
    pipeline = start(make_user(), "test-slow", rows=6000)
    deadline = time.monotonic() + 30
    while Chunk.objects.filter(pipeline=pipeline, job__state="running",
                               done_rows__gt=0).count() < 2:
        assert time.monotonic() < deadline, "chunks did not start"
        time.sleep(0.05)
    services.pipeline_cancel(pipeline=pipeline, actor=pipeline.owner)
    job = settle(pipeline)
    assert job.state == "cancelled"
    chunks = list(Chunk.objects.filter(pipeline=pipeline).select_related("job"))
    stopped = [c for c in chunks if c.job.started_at is not None]
    never = [c for c in chunks if c.job.started_at is None]
    # The two running chunks stopped part-way; the four queued ones never started.
    assert len(stopped) == 2 and len(never) == 4
    assert all(c.job.state == "cancelled" and 0 < c.done_rows < c.rows for c in stopped)
    assert all(c.job.state == "cancelled" for c in never)
    try:
        leftovers = files.pipeline_storage().listdir(files.work_dir(pipeline.pk))[1]
    except FileNotFoundError:
        leftovers = []
    assert leftovers == []


def test_retry_after_cancel_redoes_the_chunks_whose_parts_cancel_deleted(
        make_user: Any, faulty_worker: Any) -> None:
    pipeline = start(make_user(), "test-slow", rows=4000)
    deadline = time.monotonic() + 30
    while not Chunk.objects.filter(pipeline=pipeline, job__state="succeeded").exists():
        assert time.monotonic() < deadline, "no chunk finished"
        time.sleep(0.05)
    services.pipeline_cancel(pipeline=pipeline, actor=pipeline.owner)
    assert settle(pipeline).state == "cancelled"
    done = [c.index for c in Chunk.objects.filter(pipeline=pipeline, job__state="succeeded")]
    assert done  # their parts went with the cancel

    services.pipeline_retry(pipeline=pipeline, actor=pipeline.owner)
    job = settle(pipeline, timeout=60)
    assert job.state == "succeeded", job.error_message
    pipeline.refresh_from_db()
    assert pipeline.summary["rows"] == 4000 and pipeline.summary["bad"] == 0
    # The chunks that had finished before the cancel ran again: their parts were gone.
    chunks = {c.index: c.job for c in Chunk.objects.filter(pipeline=pipeline)
              .select_related("job")}
    assert all(chunks[i].attempt == 2 for i in done)


def test_a_missing_file_fails_at_once_without_showing_server_paths(
        make_user: Any, faulty_worker: Any) -> None:
    from django.conf import settings

    pipeline = start(make_user(), "test-broken")
    assert settle(pipeline).state == "failed"
    storage = files.pipeline_storage()
    # A finished chunk's part vanished (a cleanup, a disk swap): that chunk is not done.
    storage.delete(files.part_name(pipeline.pk, 0))
    marker = storage.save(fixed_marker(pipeline.pk), ContentFile(b"fixed"))
    try:
        services.pipeline_retry(pipeline=pipeline, actor=pipeline.owner)
        job = settle(pipeline)
    finally:
        storage.delete(marker)
    assert job.state == "succeeded", job.error_message
    assert attempts(pipeline) == [2, 5, 1]

    # The upload itself is gone: retrying cannot help, so the step fails on its first try.
    pipeline = start(make_user(), "test-broken")
    assert settle(pipeline).state == "failed"
    storage.delete(pipeline.upload.stored_name)
    marker = storage.save(fixed_marker(pipeline.pk), ContentFile(b"fixed"))
    try:
        services.pipeline_retry(pipeline=pipeline, actor=pipeline.owner)
        job = settle(pipeline)
    finally:
        storage.delete(marker)
    assert job.state == "failed"
    assert attempts(pipeline) == [1, 5, 1]  # one more attempt, not four
    chunk = Chunk.objects.select_related("job").get(pipeline=pipeline, index=1)
    for message in (job.error_message, chunk.job.error_message):
        assert "the uploaded file is gone" in message
        assert str(settings.MEDIA_ROOT) not in message and files.ROOT not in message
