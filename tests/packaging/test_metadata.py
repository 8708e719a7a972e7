"""The package metadata says what is true: its ranges are the ones the matrix tests, the lock
sits inside them, and the README works on a package index page."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LIBRARY = [Requirement(r) for r in PROJECT["dependencies"]]


def pins(path: Path) -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9._-]+)==([^\s;]+)", path.read_text(), re.MULTILINE)
    return {canonicalize_name(name): version for name, version in found}


def lower_bound(req: Requirement) -> str:
    (bound,) = [s.version for s in req.specifier if s.operator == ">="]
    return bound


def test_every_library_dependency_is_a_range_not_a_pin() -> None:
    for req in LIBRARY:
        operators = {s.operator for s in req.specifier}
        assert operators == {">=", "<"}, f"{req}: want a tested range >=low,<high"


def test_the_oldest_pins_are_the_declared_lower_bounds() -> None:
    """requirements/oldest.txt (what the matrix's oldest sessions install) is regenerated
    whenever a lower bound moves (``make lock``)."""
    oldest = pins(ROOT / "requirements" / "oldest.txt")
    for req in LIBRARY:
        name = canonicalize_name(req.name)
        assert oldest[name].split("+")[0] in {lower_bound(req), lower_bound(req) + ".0"}, (
            f"{req}: oldest.txt has {name}=={oldest[name]}; run `make lock`")


def test_the_lock_is_inside_the_ranges() -> None:
    locked = pins(ROOT / "requirements" / "dev.txt")
    for req in LIBRARY:
        version = locked[canonicalize_name(req.name)]
        assert req.specifier.contains(version), f"lock has {req.name}=={version}, outside {req}"


def test_the_python_classifiers_match_the_matrix() -> None:
    classifiers = set(PROJECT["classifiers"])
    for minor in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {minor}" in classifiers
    assert PROJECT["requires-python"] == ">=3.11"


def test_readme_links_work_on_a_package_index_page() -> None:
    """PyPI renders the README away from the repository: a relative link there is dead."""
    links = re.findall(r"\]\(([^)\s]+)\)", (ROOT / "README.md").read_text())
    relative = [u for u in links if not re.match(r"(https?:|mailto:|#)", u)]
    assert not relative, f"relative links in README.md: {relative}"
