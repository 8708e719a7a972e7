"""``{% nav_items %}``: the entries of :data:`example.nav.NAV` this user may see."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse

from example.nav import NAV

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_items(context: dict[str, Any]) -> list[dict[str, Any]]:
    request = context.get("request")
    user = getattr(request, "user", None)
    current = request.path if request is not None else ""
    items = []
    for item in NAV:
        if item.staff_only and not getattr(user, "is_staff", False):
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            # An entry may land before its page does; hide it rather than break every page.
            continue
        active = current == url if url == "/" else current.startswith(url)
        items.append({"label": item.label, "url": url, "active": active,
                      "description": item.description, "url_name": item.url_name})
    return items
