"""The committed editor bundle is the one js/package-lock.json describes (``make vendor-js``).

CI never runs npm: it serves the committed file. These checks catch a lock changed without
rebuilding, a bundle edited by hand, and a bundled package whose licence is not shipped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "js" / "package-lock.json"
PACKAGE = ROOT / "js" / "package.json"
VENDOR = ROOT / "src" / "taskstream" / "static" / "taskstream" / "vendor"
BUNDLE = VENDOR / "collab-editor.js"
LICENCES = VENDOR / "collab-editor.LICENSES.txt"


def bundled() -> dict[str, str]:
    """``name -> version`` from the bundle's header line ``* Bundled: a@1 @s/b@2 ...``."""
    head = BUNDLE.read_text(encoding="utf-8")[:2000]
    match = re.search(r"^ \* Bundled: (.+)$", head, re.MULTILINE)
    assert match, "the bundle has no 'Bundled:' header: rebuild it with `make vendor-js`"
    return dict(item.rsplit("@", 1) for item in match.group(1).split())


def test_the_bundle_header_names_the_locked_versions() -> None:
    lock = json.loads(LOCK.read_text())["packages"]
    names = bundled()
    # The packages the editor is made of, at least: the rest are their dependencies.
    assert {"yjs", "y-protocols", "lib0", "y-codemirror.next", "@codemirror/state",
            "@codemirror/view", "@codemirror/commands"} <= names.keys()
    wrong = {name: (version, lock.get(f"node_modules/{name}", {}).get("version"))
             for name, version in names.items()
             if lock.get(f"node_modules/{name}", {}).get("version") != version}
    assert not wrong, f"bundle vs package-lock.json (rebuild with `make vendor-js`): {wrong}"
    esbuild = lock["node_modules/esbuild"]["version"]
    assert f"esbuild {esbuild}" in BUNDLE.read_text(encoding="utf-8")[:2000]


def test_direct_dependencies_are_pinned_exactly() -> None:
    # `npm ci` reproduces the lock; exact ranges keep `npm install` from drifting too.
    manifest = json.loads(PACKAGE.read_text())
    specs = {**manifest["dependencies"], **manifest["devDependencies"]}
    loose = {name: spec for name, spec in specs.items() if not re.fullmatch(r"\d+\.\d+\.\d+", spec)}
    assert not loose, f"pin exact versions in js/package.json: {loose}"


def test_every_bundled_package_has_its_licence_beside_the_bundle() -> None:
    text = LICENCES.read_text(encoding="utf-8")
    missing = [f"{name}@{version}" for name, version in bundled().items()
               if f"\n{name}@{version} (" not in text]
    assert not missing, f"no licence text for {missing} in {LICENCES.name}"
    assert "Permission is hereby granted" in text  # the licence texts themselves, not names


def test_nothing_is_loaded_from_elsewhere() -> None:
    # No CDN: the bundle and the client import only each other, by relative URL.
    collab = (BUNDLE.parent.parent / "collab.js").read_text(encoding="utf-8")
    imports = re.findall(r'^\s*(?:import|} from)[^"\n]*"([^"]+)"', collab, re.MULTILINE)
    assert imports and all(i.startswith("./") for i in imports), imports
    bundle = BUNDLE.read_text(encoding="utf-8")
    assert not re.search(r'\bimport\s*\(|from\s*"(?:https?:)?//', bundle)
