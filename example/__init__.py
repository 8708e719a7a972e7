"""The taskstream demo site: every app wired together, configured from the environment."""

from example.celery import app as celery_app

__all__ = ["celery_app"]
