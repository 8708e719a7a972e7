"""Signals of the pipelines app, for apps that react to it (pipelines imports none of them)."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent once per pipeline when its report is stored and its job has succeeded, before
#: ``report.ready`` is published (so what a listener stores is in place when browsers hear
#: it). Arguments: ``pipeline`` (the Pipeline), ``payload`` (the ``report.ready`` data:
#: job, pipeline, name, rows, bad, groups, report_csv, report_html).
report_ready = Signal()
