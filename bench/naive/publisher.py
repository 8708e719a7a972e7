"""The naive publisher: what a Celery task does, ``async_to_sync(group_send)`` per event."""

from __future__ import annotations

import os
from typing import Any


def make_publisher() -> Any:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.naive.settings")
    import django

    django.setup()
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()

    def publish(user_id: int, payload: dict[str, Any]) -> None:
        async_to_sync(layer.group_send)(f"user_{user_id}", {"type": "notify", "payload": payload})

    return publish
