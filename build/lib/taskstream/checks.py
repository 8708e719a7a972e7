"""System checks ``taskstream.E001``…: every setting is validated at start-up.

The rules themselves are declared with the settings in ``conf.py`` (one entry per setting);
this module only applies them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import Error, Tags, register

from taskstream.conf import DEFAULTS, RELATIONS, SETTINGS


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    user = getattr(settings, "TASKSTREAM", {})
    if not isinstance(user, Mapping):
        return [Error("TASKSTREAM must be a dict.", id="taskstream.E000")]
    errors: list[Error] = []
    unknown = sorted(set(user) - set(SETTINGS))
    if unknown:
        errors.append(Error(f"Unknown TASKSTREAM settings: {', '.join(unknown)}.",
                            hint=f"Known: {', '.join(sorted(SETTINGS))}.", id="taskstream.E014"))
    values = {**DEFAULTS, **user}
    for name, setting in SETTINGS.items():
        if (problem := setting.problem(values[name])) is not None:
            errors.append(Error(problem, id=f"taskstream.{setting.check}"))
    for relation in RELATIONS:
        if not relation.holds(*(values[name] for name in relation.names)):
            errors.append(Error(relation.message, id=f"taskstream.{relation.check}"))
    return errors


@register(Tags.compatibility)
def check_base_app(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """A feature app without the base app runs, but half-broken: no ``client.js`` (a 404 in
    the page), no templates, no outbox table, no settings checks. Registered by every feature
    app's ``ready()`` and by ``python -m taskstream.server`` so that it runs exactly when
    ``taskstream`` itself is missing."""
    if apps.is_installed("taskstream"):
        return []
    features = sorted(c.name for c in apps.get_app_configs() if c.name.startswith("taskstream."))
    using = ", ".join(features) if features else "the hub (taskstream.server)"
    return [Error(
        f"'taskstream' is missing from INSTALLED_APPS, which {using} needs.",
        hint="Add 'taskstream' to INSTALLED_APPS before its feature apps: it holds the hub's "
             "static client (taskstream/client.js), the templates, the outbox table and the "
             "settings checks.",
        id="taskstream.E090")]
