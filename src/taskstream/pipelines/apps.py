from __future__ import annotations

from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    name = "taskstream.pipelines"
    label = "taskstream_pipelines"
    verbose_name = "taskstream pipelines"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from taskstream.bodylimit import body_allowance_register
        from taskstream.conf import conf
        from taskstream.pipelines import tasks  # noqa: F401  (registers the step tasks)
        from taskstream.pipelines.uploads import ENVELOPE_BYTES

        # The upload's body may be as large as the file limit (plus multipart framing).
        body_allowance_register("taskstream-api:pipeline_create",
                                lambda: conf.PIPELINE_MAX_UPLOAD_BYTES + ENVELOPE_BYTES)
