"""The demo's settings plus tests/jobs/worker_kinds.py, for a test worker."""

from example.settings import *  # noqa: F403
from example.settings import CELERY_IMPORTS

CELERY_IMPORTS = [*CELERY_IMPORTS, "tests.jobs.worker_kinds"]
