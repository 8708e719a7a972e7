from __future__ import annotations

from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    name = "taskstream.pipelines"
    label = "taskstream_pipelines"
    verbose_name = "taskstream pipelines"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from taskstream import checks  # noqa: F401  (E090 runs even without 'taskstream')
        from taskstream.api import register_router
        from taskstream.bodylimit import body_allowance_register
        from taskstream.conf import conf
        from taskstream.housekeeping import register_purge
        from taskstream.pipelines import tasks  # noqa: F401  (registers the step tasks)
        from taskstream.pipelines.api import router
        from taskstream.pipelines.services import pipeline_purge_uploads
        from taskstream.pipelines.uploads import ENVELOPE_BYTES

        register_router(router)
        # The upload's body may be as large as the file limit (plus multipart framing).
        body_allowance_register("taskstream-api:pipeline_create",
                                lambda: conf.PIPELINE_MAX_UPLOAD_BYTES + ENVELOPE_BYTES)
        # Before the jobs purge: deleting a pipeline's job first would cascade to the
        # pipeline and leave its files behind.
        register_purge("uploads", pipeline_purge_uploads, order=10)
