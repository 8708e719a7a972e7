"""The TASKSTREAM settings: declared once in conf.py, every check id triggered, docs generated."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from taskstream.checks import check_settings
from taskstream.conf import RELATIONS, SETTINGS, conf, render_docs

ROOT = Path(__file__).resolve().parent.parent


def ids(**values: Any) -> set[str]:
    with override_settings(TASKSTREAM={**settings.TASKSTREAM, **values}):
        return {error.id for error in check_settings()}


def test_the_defaults_pass_the_checks() -> None:
    assert ids() == set()


@pytest.mark.parametrize("name", list(SETTINGS))
def test_each_setting_refuses_a_bad_value(name: str) -> None:
    setting = SETTINGS[name]
    assert setting.problem(setting.default if name != "REDIS_URL" else "redis://x") is None
    assert f"taskstream.{setting.check}" in ids(**{name: setting.invalid})


def test_a_missing_redis_url_is_refused() -> None:
    assert "taskstream.E001" in ids(REDIS_URL=None)
    with (override_settings(TASKSTREAM={}),
          pytest.raises(ImproperlyConfigured, match="REDIS_URL")):
        _ = conf.REDIS_URL


def test_relations_are_checked() -> None:
    assert "taskstream.E025" in ids(JOB_HEARTBEAT_INTERVAL=10, JOB_HEARTBEAT_TIMEOUT=20)
    assert "taskstream.E025" not in ids(JOB_HEARTBEAT_INTERVAL=10, JOB_HEARTBEAT_TIMEOUT=21)
    # A collab update, base64-encoded, must fit a frame and an event.
    assert "taskstream.E144" in ids(COLLAB_MAX_UPDATE_BYTES=60_000)
    assert "taskstream.E144" not in ids(COLLAB_MAX_UPDATE_BYTES=40_000)


def test_unknown_names_and_a_non_dict_are_refused() -> None:
    assert "taskstream.E014" in ids(NOT_A_SETTING=1)
    with override_settings(TASKSTREAM=["REDIS_URL"]):
        assert [e.id for e in check_settings()] == ["taskstream.E000"]


# The ids the tests above trigger: each declared check, the relations, E000 and E014; E100
# (the base app missing) in tests/packaging/test_base_app_check.py.
TRIGGERED = ({f"taskstream.{s.check}" for s in SETTINGS.values()}
             | {f"taskstream.{r.check}" for r in RELATIONS}
             | {"taskstream.E000", "taskstream.E014", "taskstream.E100"})


def test_every_check_id_in_the_code_is_triggered_by_a_test() -> None:
    found = set()
    for path in (ROOT / "src" / "taskstream").rglob("*.py"):
        text = path.read_text()
        found |= {f"taskstream.{m}" for m in re.findall(r'check="(E\d{3})"', text)}
        found |= set(re.findall(r"taskstream\.[EW]\d{3}", text))
    assert found - TRIGGERED == set()
    owners: dict[str, list[str]] = {}
    for name, setting in SETTINGS.items():
        owners.setdefault(setting.check, []).append(name)
    for relation in RELATIONS:
        owners.setdefault(relation.check, []).append(" & ".join(relation.names))
    twice = {check: names for check, names in owners.items() if len(names) > 1}
    assert twice == {}, "one check id each (see the ranges at the top of conf.py)"


def test_values_are_read_typed_and_live() -> None:
    with override_settings(TASKSTREAM={**settings.TASKSTREAM, "HEARTBEAT": 5,
                                       "ALLOWED_ORIGINS": ("https://a.example",)}):
        assert conf.HEARTBEAT == 5.0 and isinstance(conf.HEARTBEAT, float)
        assert conf.ALLOWED_ORIGINS == ["https://a.example"]
    assert SETTINGS["HEARTBEAT"].default == conf.HEARTBEAT


def test_the_docs_tables_are_the_declared_settings() -> None:
    """Regenerate with ``make docs-settings`` when this fails."""
    docs = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
    stale = [p.name for p in docs if render_docs(p.read_text()) != p.read_text()]
    assert stale == [], "run `make docs-settings`"
    assert "<!-- settings-table: all -->" in (ROOT / "docs" / "operations.md").read_text()
