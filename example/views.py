"""The demo site's own pages: home, login (with the demo hint), signup."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from example.auth import DEMO_USERNAME
from example.signup_form import SignupForm
from taskstream.notifications.services import email_welcome_schedule
from taskstream.throttle import signup_slot_take


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "example/home.html")


class ThrottledAuthenticationForm(AuthenticationForm):
    """Says "try again in N s" when taskstream.throttle.ThrottleBackend refused the attempt."""

    def get_invalid_login_error(self) -> ValidationError:
        wait = getattr(self.request, "throttle_wait", 0)
        if wait:
            return ValidationError(f"Too many sign-in attempts; try again in {wait:.0f} s.",
                                   code="throttled")
        return super().get_invalid_login_error()


class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True
    form_class = ThrottledAuthenticationForm

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        if getattr(self.request, "throttle_wait", 0):
            response.status_code = 429
        return response

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
    if request.method == "POST" and (wait := signup_slot_take(request)):
        messages.error(request, f"Too many sign-ups from your address; try again in "
                                f"{wait:.0f} s.")
        return render(request, "registration/signup.html", {"form": SignupForm()}, status=429)
    form: UserCreationForm[Any] = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save()
            email_welcome_schedule(user=user)  # a job, sent once the account is committed
        login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})
