"""The demo's settings plus the fault-injecting pipeline kinds, for a test worker."""

from example.settings import *  # noqa: F403
from example.settings import CELERY_IMPORTS

CELERY_IMPORTS = [*CELERY_IMPORTS, "tests.pipelines.kinds"]
