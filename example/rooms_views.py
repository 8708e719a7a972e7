"""The demo's chat pages: the room list (with a form to open a room) and a room."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from taskstream.conf import conf
from taskstream.rooms import selectors, services
from taskstream.rooms.exceptions import RoomError
from taskstream.rooms.models import Room

LOBBY = "lobby"


@login_required
@require_http_methods(["GET", "POST"])
def rooms_page(request: HttpRequest) -> HttpResponse:
    """Rooms you may read; POST opens a new one (you become its first member)."""
    if not Room.objects.filter(slug=LOBBY).exists():
        # The demo always has a public room to try things in.
        services.room_create(slug=LOBBY, name="Lobby", creator=request.user)
    if request.method == "POST":
        try:
            room = services.room_create(
                slug=request.POST.get("slug", "").strip().lower(),
                name=request.POST.get("name", ""), creator=request.user,
                is_private=request.POST.get("private") == "on")
        except RoomError as exc:
            messages.error(request, f"Could not open the room: {exc.detail}")
        else:
            return redirect("room", slug=room.slug)
    return render(request, "example/rooms.html",
                  {"rooms": selectors.room_list(user=request.user)})


def _readable(request: HttpRequest, slug: str) -> Room:
    room = Room.objects.filter(slug=slug).first()
    # A private room is a 404 to non-members too: its name cannot be probed.
    if room is None or not selectors.room_may_read(room=room, user=request.user):
        raise Http404("no such room")
    return room


@login_required
def room_page(request: HttpRequest, slug: str) -> HttpResponse:
    """History (first page rendered here, older pages on scroll), live messages, presence."""
    room = _readable(request, slug)
    cursor = selectors.topic_cursor(room.topic)  # before the rows: see messages_list
    rows, next_before = selectors.message_page(room=room, before=None,
                                               limit=conf.ROOM_HISTORY_PAGE)
    return render(request, "example/room.html", {
        "room": room,
        "messages_page": rows,
        "members": room.members.order_by("username") if room.is_private else None,
        "may_add": room.is_private and (request.user.is_staff
                                        or room.created_by_id == request.user.pk),
        "config": {
            "slug": room.slug, "topic": room.topic, "cursor": cursor,
            "nextBefore": next_before, "me": request.user.pk,
            "staff": request.user.is_staff,  # staff may delete anyone's message
            "maxLength": conf.ROOM_MESSAGE_MAX_LENGTH,
            "typingInterval": conf.ROOM_TYPING_INTERVAL,
        },
    })


@login_required
@require_POST
def room_member_add(request: HttpRequest, slug: str) -> HttpResponse:
    room = _readable(request, slug)
    try:
        user = services.room_member_add(room=room, by=request.user,
                                        username=request.POST.get("username", "").strip())
    except RoomError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"{user.get_username()} can now read and post here.")
    return redirect("room", slug=room.slug)
