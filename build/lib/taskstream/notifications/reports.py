"""Tell a pipeline's owner that its report is ready: listens to pipelines' ``report_ready``."""

from __future__ import annotations

from typing import Any

from taskstream.notifications.services import notification_create

REPORT_READY = "report.ready"


def notify_report_ready(sender: Any = None, *, pipeline: Any, payload: dict[str, Any],
                        **extra: Any) -> None:
    notification_create(recipient=pipeline.owner, kind=REPORT_READY,
                        title=f"Report ready: {payload['name']}"[:200],
                        body=f"{payload.get('rows') or 0} rows, {payload.get('bad') or 0} bad.",
                        url=payload["report_html"], data=payload,
                        key=f"report:{pipeline.pk}")


def connect() -> None:
    from taskstream.pipelines.signals import report_ready

    report_ready.connect(notify_report_ready, weak=False,
                         dispatch_uid="taskstream.notifications.report_ready")
