"""Benchmarks: taskstream's hub beside the naive Celery + Channels pattern (``make bench-hub``)."""
