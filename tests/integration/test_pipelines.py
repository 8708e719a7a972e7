"""Pipelines end to end with the shared worker: upload → canvas → reports."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from taskstream.jobs.models import Job
from taskstream.pipelines.models import Chunk, Pipeline
from tests.pipelines.cleanup import remove_pipeline_files  # noqa: F401
from tests.pipelines.data import make_csv, recompute

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]

TERMINAL = {"succeeded", "failed", "cancelled"}


def api(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def upload(client: Client, content: bytes, name: str = "sales.csv", **fields: Any) -> Any:
    return client.post("/api/pipelines/", {"file": SimpleUploadedFile(name, content), **fields})


def until(condition: Any, what: str, timeout: float = 30.0) -> Any:
    """Wait for ``condition()`` to be truthy (polling), or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


def wait_done(pipeline_id: str, timeout: float = 60.0, states: set[str] = TERMINAL) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        job = Pipeline.objects.select_related("job").get(pk=pipeline_id).job
        # The render step finishes just after the pipeline it completed.
        if job.state in states and not Job.objects.filter(
                parent=job, state__in=["running", "retrying"]).exists():
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"pipeline still {job.state} ({job.progress_message})")
        time.sleep(0.05)


def test_100k_rows_report_matches_a_recomputation(make_user: Any) -> None:
    user = make_user()
    client = api(user)
    content = make_csv(100_000, bad_every=9973)
    response = upload(client, content)
    assert response.status_code == 202, response.content
    data = response.json()
    assert data["reused"] is False
    job = wait_done(data["id"])
    assert job.state == "succeeded", (job.error_type, job.error_message)
    assert job.progress_current == job.progress_total == 100_000

    expected = recompute(content)
    detail = client.get(f"/api/pipelines/{data['id']}/").json()
    assert [s["name"] for s in detail["steps"]] == ["validate", "split", "aggregate", "render"]
    assert all(s["job"]["state"] == "succeeded" for s in detail["steps"])
    assert len(detail["chunks"]) == 10
    assert all(c["job"]["state"] == "succeeded" for c in detail["chunks"])
    assert detail["summary"]["bad"] == len(expected["bad"])
    assert [line for line, _ in detail["summary"]["bad_rows"]] == expected["bad"][:20]

    report = client.get(detail["reports"]["csv"])
    assert report.status_code == 200
    assert report["Content-Disposition"].startswith("attachment")
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode())))
    header, body = rows[0], rows[1:]
    assert header[:2] == ["region", "rows"]
    got = {r[0]: (int(r[1]), float(r[header.index("qty sum")]), float(r[header.index("price sum")]))
           for r in body}
    want = {}
    for region, (count, qty, price) in expected["groups"].items():
        key = "'" + region if region[0] in "=+-@" else region
        want[key] = (count, qty, price)
    assert got.keys() == want.keys()
    for key, (count, qty, price) in want.items():
        assert got[key][0] == count
        assert got[key][1] == qty
        assert got[key][2] == pytest.approx(price, rel=1e-9)

    html = client.get(detail["reports"]["html"])
    assert html.status_code == 200
    page = b"".join(html.streaming_content).decode()
    assert "<svg" in page and "region-00" in page
    assert "column &#x27;qty&#x27;: &#x27;not-a-number&#x27; is not a number" in page
    assert "sandbox" in html["Content-Security-Policy"]

    # The same file again reuses the result, unless asked to process it again.
    again = upload(client, content, name="other-name.csv")
    assert again.status_code == 202 and again.json()["reused"] is True
    assert again.json()["id"] == data["id"]
    forced = upload(client, content, force="1")
    assert forced.json()["reused"] is False and forced.json()["id"] != data["id"]
    wait_done(forced.json()["id"])


def test_another_users_pipeline_and_report_are_404(make_user: Any) -> None:
    owner, other = make_user(), make_user()
    data = upload(api(owner), make_csv(50)).json()
    job = wait_done(data["id"])
    assert job.state == "succeeded"
    intruder = api(other)
    for path in ("", "report.csv", "report.html"):
        response = intruder.get(f"/api/pipelines/{data['id']}/{path}")
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"
    assert intruder.post(f"/api/pipelines/{data['id']}/cancel/").status_code == 404
    assert Client().get(f"/api/pipelines/{data['id']}/report.csv").status_code == 401


def test_cancel_mid_way_stops_chunks_and_cleans_up(make_user: Any) -> None:
    from taskstream.pipelines import storage as files

    user = make_user()
    client = api(user)
    data = upload(client, make_csv(200_000, seed=7)).json()
    # Wait until chunks are being processed, then cancel.
    until(Chunk.objects.filter(pipeline_id=data["id"], job__state="running").exists,
          "a chunk to start")
    response = client.post(f"/api/pipelines/{data['id']}/cancel/")
    assert response.status_code == 200, response.content
    assert response.json()["job"]["state"] == "cancelled"
    # Every child ends: queued chunks cancelled without running, running ones at a checkpoint.
    until(lambda: not Job.objects.filter(parent_id=response.json()["job"]["id"],
                                         state__in=["queued", "running", "retrying"]).exists(),
          "every child to end")
    chunks = Chunk.objects.filter(pipeline_id=data["id"]).select_related("job")
    assert any(c.job.state == "cancelled" and c.job.started_at is None for c in chunks)
    pipeline = Pipeline.objects.get(pk=data["id"])
    assert pipeline.job.state == "cancelled"
    assert pipeline.report_csv == ""
    storage = files.pipeline_storage()

    def work_files() -> list[str]:
        try:
            return list(storage.listdir(files.work_dir(pipeline.pk))[1])
        except FileNotFoundError:
            return []

    # A chunk that was writing its part when it stopped removes it on its way out.
    until(lambda: work_files() == [], "the work files to be removed")


async def test_report_ready_event_and_notification(make_user: Any, session_cookie: Any,
                                                   connect: Any) -> None:
    from asgiref.sync import sync_to_async
    from django.db import connections

    from taskstream.notifications.models import Notification

    user = await sync_to_async(make_user)()
    client = await sync_to_async(api)(user)
    data = (await sync_to_async(upload)(client, make_csv(2000, seed=11))).json()
    hub = await connect(cookie=await sync_to_async(session_cookie)(user))
    # From the cursor the upload answered with: nothing published since is missed.
    await hub.subscribe(f"user:{user.pk}", since=data["cursors"]["user"])
    events = []
    while not events or events[-1]["event"] != "report.ready":
        events.append(await hub.expect("event", 30))
    ready = events[-1]["data"]
    assert ready["pipeline"] == data["id"] and ready["name"] == "sales.csv"
    assert ready["report_csv"].endswith("/report.csv") and ready["rows"] == 2000
    parent = data["job"]["id"]
    seen = [(e["event"], e["data"].get("id")) for e in events]
    assert ("job.started", parent) in seen and ("job.succeeded", parent) in seen
    # Children (steps, chunks) report on the same topic, pointing at their parent.
    assert any(e["data"].get("parent") == parent for e in events)
    note = await Notification.objects.aget(recipient=user, kind="report.ready")
    assert note.url == ready["report_html"] and "sales.csv" in note.title
    await sync_to_async(connections.close_all)()


def test_cancel_through_the_jobs_api_cancels_the_pipeline(make_user: Any) -> None:
    user = make_user()
    client = api(user)
    data = upload(client, make_csv(200_000, seed=8)).json()
    until(Chunk.objects.filter(pipeline_id=data["id"], job__state="running").exists,
          "a chunk to start")
    # The parent is a job like any other: cancelling it there cancels the pipeline.
    response = client.post(f"/api/jobs/{data['job']['id']}/cancel/")
    assert response.status_code == 200, response.content
    job = wait_done(data["id"])
    assert job.state == "cancelled"
    assert not Job.objects.filter(parent=job, state__in=["queued", "running", "retrying"]).exists()
    assert Pipeline.objects.get(pk=data["id"]).report_csv == ""


def test_planted_bad_values_are_bad_rows_and_a_text_column_says_why(make_user: Any) -> None:
    from tests.pipelines.data import planted

    client = api(make_user())
    content, bad_lines = planted()
    data = upload(client, content, name="planted.csv").json()
    assert wait_done(data["id"]).state == "succeeded"
    detail = client.get(f"/api/pipelines/{data['id']}/").json()
    # Five planted, five reported by line: "many" on line 3 did not make qty text.
    assert detail["summary"]["bad"] == 5
    assert [line for line, _ in detail["summary"]["bad_rows"]] == bad_lines
    assert [c["numeric"] for c in detail["columns"]] == [False, True, True, True]
    rows = list(csv.reader(io.StringIO(
        b"".join(client.get(detail["reports"]["csv"]).streaming_content).decode())))
    assert "qty sum" in rows[0] and "price sum" in rows[0]

    # A column that is mostly text is text, and the report says so with the line.
    mixed = b"name,code\r\n" + b"".join(
        (f"n{i},{i}\r\n" if i % 3 else f"n{i},X{i}\r\n").encode() for i in range(1, 31))
    data = upload(client, mixed, name="mixed.csv").json()
    assert wait_done(data["id"]).state == "succeeded"
    detail = client.get(f"/api/pipelines/{data['id']}/").json()
    note = ("Column 'code' was read as text, so it has no totals: 10 of 30 sampled values "
            "are not numbers, the first on line 4 ('X3').")
    assert detail["summary"]["notes"] == [note]
    page = b"".join(client.get(detail["reports"]["html"]).streaming_content).decode()
    assert "the first on line 4 (&#x27;X3&#x27;)" in page
