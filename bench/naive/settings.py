"""Minimal Django settings for the naive Channels project (all defaults of the guides)."""

from __future__ import annotations

import os

SECRET_KEY = "naive-bench-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "channels"]
DATABASES: dict[str, dict[str, str]] = {}
ROOT_URLCONF = "bench.naive.urls"
ASGI_APPLICATION = "bench.naive.asgi.application"
USE_TZ = True

# The guides' channel layer: RedisChannelLayer with its defaults (capacity 100, expiry 60 s).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ.get("NAIVE_REDIS_URL", "redis://127.0.0.1:6379/0")]},
    },
}
