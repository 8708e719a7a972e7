"""Queue depth read from the broker (Redis with `make test`, RabbitMQ with `make
test-services`): what waits with no worker to take it."""

from __future__ import annotations

import secrets

import pytest
from celery import current_app
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from taskstream.jobs import job_start
from taskstream.ops.queues import queue_depths

pytestmark = pytest.mark.django_db(transaction=True)  # the enqueue happens on commit


def test_queue_depth_counts_waiting_messages(make_user):
    queue = f"depth{secrets.token_hex(4)}"
    user = make_user()
    staff = Client()
    staff.force_login(make_user(is_staff=True))
    try:
        for _ in range(3):
            job_start(kind="demo.noop", owner=user, queue=queue)  # no worker reads `queue`
        assert queue_depths([queue]) == {queue: 3}
        text = staff.get("/metrics").content.decode()
        depths = {s.labels["queue"]: s.value for f in text_string_to_metric_families(text)
                  for s in f.samples if s.name == "taskstream_queue_depth"}
        assert depths[queue] == 3
    finally:
        with current_app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)


def test_a_queue_the_broker_does_not_know_is_empty():
    missing = f"missing{secrets.token_hex(4)}"
    assert queue_depths([missing, missing + "b"]) == {missing: 0, missing + "b": 0}
