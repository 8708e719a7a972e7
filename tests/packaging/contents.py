"""Check that a built wheel and sdist ship everything the package needs at run time.

``python -m tests.packaging.contents dist`` (``make build``): every file under src/taskstream
(the static client, templates, migrations, Lua scripts, py.typed: the data files as well as the
modules) is in the wheel and in the sdist, and so is LICENSE. Exits 1 naming what is missing.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "taskstream"
SKIP_DIRS = {"__pycache__"}


def source_files() -> set[str]:
    """The package's files as paths from src/ (``taskstream/static/taskstream/client.js``)."""
    return {
        p.relative_to(PACKAGE.parent).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file() and not SKIP_DIRS & set(p.parts) and p.suffix != ".pyc"
    }


def missing_from_wheel(wheel: Path) -> list[str]:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(source_files() - names)
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        missing.append("*.dist-info/licenses/LICENSE")
    return missing


def missing_from_sdist(sdist: Path) -> list[str]:
    with tarfile.open(sdist) as tar:
        # Strip the top folder (django_taskstream-0.1.0/).
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    wanted = {f"src/{f}" for f in source_files()} | {"LICENSE", "README.md", "pyproject.toml"}
    return sorted(wanted - names)


def main(dist: Path) -> int:
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        print(f"expected one wheel and one sdist in {dist}, found {wheels + sdists}")
        return 1
    problems = [f"{wheels[0].name}: missing {m}" for m in missing_from_wheel(wheels[0])]
    problems += [f"{sdists[0].name}: missing {m}" for m in missing_from_sdist(sdists[0])]
    print("\n".join(problems) or (
        f"{wheels[0].name} and {sdists[0].name}: all {len(source_files())} package files "
        "(modules, static client, templates, migrations, py.typed) and LICENSE are in both"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "dist")))
