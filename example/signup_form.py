"""The demo's sign-up form: Django's, plus the e-mail address the welcome e-mail goes to."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import UserCreationForm

# One answer for a taken name, whatever the reason: never "a user with that username
# already exists". (Full secrecy needs an out-of-band step, e-mail verification; here the
# sign-up throttle bounds how fast names can be probed.)
UNAVAILABLE = "This username is not available; pick another."


class SignupForm(UserCreationForm):  # type: ignore[type-arg]
    email = forms.EmailField(required=False, help_text="Optional: we send a welcome e-mail.")

    def clean_username(self) -> Any:
        username = self.cleaned_data.get("username")
        model = self._meta.model
        if username and model.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(UNAVAILABLE, code="unavailable")
        return username

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")

    def save(self, commit: bool = True) -> Any:
        user = super().save(commit=False)
        user.email = self.cleaned_data.get("email", "")
        if commit:
            user.save()
        return user
