"""The JSON log formatter: one object per line, extras kept, tracebacks included."""

from __future__ import annotations

import json
import logging
import uuid

from taskstream.ops.jsonlog import JsonFormatter


def record(**extra: object) -> logging.LogRecord:
    logger = logging.getLogger("taskstream.jobs")
    made = logger.makeRecord("taskstream.jobs", logging.INFO, __file__, 1,
                             "job %s: %s", ("abc", "running"), None, extra=extra)
    return made


def test_a_line_has_the_message_and_the_extras():
    job = uuid.uuid4()
    line = JsonFormatter().format(record(job_id=job, user_id=7))
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "job abc: running" and data["level"] == "INFO"
    assert data["logger"] == "taskstream.jobs" and data["ts"].endswith("+00:00")
    assert data["job_id"] == str(job) and data["user_id"] == 7  # str() what JSON cannot hold
    assert "args" not in data and "msg" not in data


def test_an_exception_comes_with_its_traceback():
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        made = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "failed",
                                                 (), __import__("sys").exc_info())
    data = json.loads(JsonFormatter().format(made))
    assert "ValueError: boom" in data["exc"] and "Traceback" in data["exc"]
