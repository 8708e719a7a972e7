"""The demo site's own pages: home, login (with the demo hint), signup."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from example.signup_form import SignupForm
from taskstream.notifications.services import email_welcome_schedule

DEMO_USERNAME = "demo"


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "example/home.html")


class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        # The dev stack creates demo/demo only when DEBUG is on; say so only then.
        context["demo_user"] = settings.DEBUG and get_user_model().objects.filter(
            username=DEMO_USERNAME).exists()
        return context


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Create an account and sign in with it."""
    if request.user.is_authenticated:
        return redirect("home")
    form: UserCreationForm[Any] = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save()
            email_welcome_schedule(user=user)  # a job, sent once the account is committed
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})
