"""Where uploads, parts and reports live: Django's storage API, names we generate."""

from __future__ import annotations

import uuid

from django.core.files.storage import Storage, storages

from taskstream.conf import conf

ROOT = "taskstream"


def pipeline_storage() -> Storage:
    return storages[conf.PIPELINE_STORAGE]


def upload_name() -> str:
    """A fresh name for an upload; nothing the user sent becomes part of a path."""
    return f"{ROOT}/uploads/{uuid.uuid4().hex}.csv"


def work_dir(pipeline_id: object) -> str:
    return f"{ROOT}/pipelines/{pipeline_id}"


def part_name(pipeline_id: object, index: int) -> str:
    return f"{work_dir(pipeline_id)}/part-{index:05d}.json"


def aggregate_name(pipeline_id: object) -> str:
    return f"{work_dir(pipeline_id)}/aggregate.json"


def report_name(pipeline_id: object, ext: str) -> str:
    return f"{work_dir(pipeline_id)}/report.{ext}"


def delete_quietly(storage: Storage, names: list[str]) -> None:
    for name in names:
        if name and storage.exists(name):
            storage.delete(name)


def delete_work_files(pipeline_id: object, *, keep_reports: bool) -> None:
    """Remove a pipeline's intermediate files (and its reports unless ``keep_reports``)."""
    storage = pipeline_storage()
    try:
        _dirs, files = storage.listdir(work_dir(pipeline_id))
    except FileNotFoundError:
        return
    names = [f"{work_dir(pipeline_id)}/{f}" for f in files
             if not (keep_reports and f.startswith("report."))]
    delete_quietly(storage, names)
