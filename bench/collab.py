"""``make bench-collab``: 20 editors typing into one shared document, 5 characters/s each.

One server process (``python -m taskstream.server``, pinned to one core) applies every
update with pycrdt, stores it under the document's lock, writes its outbox event and fans
it out; this process runs the 20 editors (``taskstream.collab.testing.Editor``: a pycrdt
Doc each, on a socket of its own, signed in as its own user) and Redis on the other core.
Each keystroke is one Yjs update (one in five a backspace), sent at 5/s per editor without
waiting for the previous answer, as a browser does.

Measured: update → other editor latency (send to arrival, same clock, every other editor),
server CPU per update (the process's CPU time over the typing ÷ updates applied, fan-out
to 20 sockets and background compaction included), and the stored bytes after 10,000
edits: what the update rows would hold without compaction (every applied update, as
stored) against what is stored with it (snapshot + rows), and after one final compaction.

    python -m bench.collab            # 10,000 edits: 100 s of typing
    python -m bench.collab --quick    # 1,000 edits
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from pycrdt import Text

from bench.harness import ROOT, Env, Server, raise_fd_limit
from bench.stats import percentiles
from taskstream.collab.testing import Editor, b64, http, wait_until

RESULTS = ROOT / "bench" / "results"


def _setup_document(base_url: str, cookies: list[str], usernames: list[str]) -> str:
    status, doc = http(base_url, cookies[0], "POST", "/api/collab/docs/", {"title": "bench"})
    assert status == 201, (status, doc)
    for name in usernames[1:]:
        status, answer = http(
            base_url,
            cookies[0],
            "POST",
            f"/api/collab/docs/{doc['id']}/members/",
            {"username": name, "role": "editor"},
        )
        assert status == 201, (status, answer)
    return str(doc["id"])


def _stored(env: Env, doc_id: str) -> dict[str, int]:
    db = sqlite3.connect(env.tmp / "db.sqlite3")
    try:
        snapshot, snapshot_version, version = db.execute(
            "SELECT length(snapshot), snapshot_version, version FROM taskstream_collab_document"
            " WHERE id = ?",
            (doc_id.replace("-", ""),),
        ).fetchone()
        rows, row_bytes = db.execute(
            "SELECT count(*), coalesce(sum(length(data)), 0) FROM taskstream_collab_documentupdate"
        ).fetchone()
    finally:
        db.close()
    return {
        "snapshot_bytes": snapshot or 0,
        "snapshot_version": snapshot_version,
        "version": version,
        "update_rows": rows,
        "update_row_bytes": row_bytes,
        "stored_bytes": (snapshot or 0) + row_bytes,
    }


def _compact(env: Env, doc_id: str) -> None:
    code = (
        "import django; django.setup()\n"
        "from taskstream.collab.services import document_compact\n"
        f"print(document_compact(document_id={doc_id!r}))\n"
    )
    subprocess.run(
        [sys.executable, "-c", code], env=env.hub_env, cwd=ROOT, check=True, capture_output=True
    )


async def _typist(
    editor: Editor,
    rng: random.Random,
    count: int,
    rate: float,
    sent_at: dict[str, float],
    answers: list[asyncio.Task[dict[str, Any]]],
    start: float,
) -> None:
    # Typing at a cursor of one's own (one key in five a backspace), which others' edits
    # before it shift a little, as people writing different paragraphs of one text.
    cursor = rng.randint(0, len(editor.value))
    for i in range(count):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        cursor = min(cursor, len(editor.value))
        if i % 5 == 4 and cursor > 0:
            update = editor.edit(cursor - 1, delete=1)
            cursor -= 1
        else:
            update = editor.edit(cursor, "x")
            cursor += 1
        sent_at[b64(update)] = time.time()
        answers.append(asyncio.ensure_future(editor.publish(update, timeout=120)))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    env = Env.create(client_cpu=args.client_cpu, n_users=args.editors)
    server = Server("hub", env, args.server_cpu, env.tmp)
    server.start()
    try:
        names = [f"bench{i}" for i in range(len(env.users))]
        cookies = [env.cookies[u] for u in env.users]
        base = f"http://127.0.0.1:{server.port}"
        doc_id = await asyncio.to_thread(_setup_document, base, cookies, names)
        where = SimpleNamespace(http_url=base, ws_url=f"ws://127.0.0.1:{server.port}/ws/")
        editors = [Editor(where, cookie, doc_id, f"e{i}") for i, cookie in enumerate(cookies)]
        for editor in editors:
            await editor.connect()
        per_editor = args.edits // len(editors)
        sent_at: dict[str, float] = {}
        answers: list[asyncio.Task[dict[str, Any]]] = []
        cpu_before = server.cpu_s()
        began = time.monotonic()
        await asyncio.gather(
            *(
                _typist(
                    e,
                    random.Random(i),
                    per_editor,
                    args.rate,
                    sent_at,
                    answers,
                    began + i * (1 / args.rate) / len(editors),
                )
                for i, e in enumerate(editors)
            )
        )
        sent_s = time.monotonic() - began
        replies = await asyncio.gather(*answers, return_exceptions=True)
        typing_s = time.monotonic() - began
        # An error frame, or no answer at all (the server fell behind, the socket closed).
        refused = [r for r in replies if not isinstance(r, dict) or r.get("type") != "published"]
        # Everyone has everything once every editor received every other editor's updates.
        expected = len(sent_at) * (len(editors) - 1)
        with contextlib.suppress(AssertionError):  # counted below either way
            await wait_until(lambda: sum(len(e.arrivals) for e in editors) >= expected, 60)
        cpu_s = server.cpu_s() - cpu_before
        latencies = [
            (at - sent_at[update]) * 1000
            for e in editors
            for update, at in e.arrivals.items()
            if update in sent_at
        ]
        converged = len({e.value for e in editors}) == 1
        for editor in editors:
            await editor.disconnect()
        applied = len(replies) - len(refused)
        await asyncio.sleep(2)  # a compaction the last updates started may still be running
        live = _stored(env, doc_id)
        await asyncio.to_thread(_compact, env, doc_id)
        compacted = _stored(env, doc_id)
        return {
            "editors": len(editors),
            "chars_per_s_each": args.rate,
            "updates": applied,
            "refused": len(refused),
            "typing_s": round(sent_s, 1),
            "last_answer_s": round(typing_s, 1),
            "updates_per_s": round(applied / max(typing_s, 1e-9), 1),
            "deliveries": len(latencies),
            "expected_deliveries": expected,
            "converged": converged,
            "text_chars": len(editors[0].value),
            "latency_ms": percentiles(latencies),
            "server_cpu_s": round(cpu_s, 2),
            "server_cpu_ms_per_update": round(cpu_s * 1000 / max(applied, 1), 3),
            "stored": {
                "without_compaction_bytes": sum(len(base64.b64decode(u)) for u in sent_at),
                "with_background_compaction": live,
                "after_final_compaction": compacted,
            },
        }
    finally:
        server.stop()
        env.close()


def storage(edits: int, editors: int, compact_every: int, seed: int = 0) -> dict[str, Any]:
    """Stored bytes after ``edits`` keystrokes by ``editors`` people, with the server's own
    pycrdt code and without a database: every update is applied as ``update_apply`` does
    (``ydoc.apply_checked``) and stored as a row; every ``compact_every`` rows the snapshot
    is rebuilt as ``document_compact`` does (snapshot + rows → ``get_update()``)."""
    from taskstream.collab import ydoc

    rng = random.Random(seed)
    people = [ydoc.new_doc() for _ in range(editors)]
    # Each transaction's own update, as a browser's doc.on("update") hands it over.
    last: list[bytes] = []
    observers = [d.observe(lambda event: last.append(event.update)) for d in people]
    server = ydoc.new_doc()
    snapshot, rows, sent = b"", [], 0
    checkpoints: dict[int, dict[str, int]] = {}
    cursors = [0] * editors
    for i in range(edits):
        k = i % editors
        doc = people[k]
        text = doc.get(ydoc.TEXT, type=Text)
        if i < editors:  # each starts somewhere in the text there is
            cursors[k] = rng.randint(0, len(text))
        cursors[k] = min(cursors[k], len(text))
        last.clear()
        if (i // editors) % 5 == 4 and cursors[k] > 0:
            del text[cursors[k] - 1]
            cursors[k] -= 1
        else:
            text.insert(cursors[k], "x")
            cursors[k] += 1
        update = last[0]
        for other in people:  # a live session: everyone has everything at once
            if other is not doc:
                other.apply_update(update)
        ydoc.apply_checked(server, update)
        rows.append(update)
        sent += len(update)
        if len(rows) >= compact_every:
            merged = ydoc.new_doc()
            for part in ([snapshot] if snapshot else []) + rows:
                merged.apply_update(part)
            snapshot, rows = merged.get_update(), []
        if (i + 1) in (1_000, 2_500, 5_000, 10_000, edits):
            checkpoints[i + 1] = {
                "without_compaction_bytes": sent,
                "stored_bytes": len(snapshot) + sum(map(len, rows)),
                "compacted_now_bytes": len(server.get_update()),
                "text_chars": len(text),
            }
    del observers
    return {"edits": edits, "editors": editors, "compact_every": compact_every, "at": checkpoints}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.collab",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="1,000 edits")
    parser.add_argument("--editors", type=int, default=20)
    parser.add_argument("--rate", type=float, default=5.0, help="characters/s per editor")
    parser.add_argument("--edits", type=int, default=None, help="total (default 10,000)")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument(
        "--storage-edits",
        type=int,
        default=10_000,
        help="edits of the storage part (pycrdt only, no server)",
    )
    args = parser.parse_args(argv)
    if args.edits is None:
        args.edits = 1_000 if args.quick else 10_000
    raise_fd_limit()
    load_before = os.getloadavg()
    began = time.monotonic()
    measured = asyncio.run(run(args))
    measured["storage_model"] = storage(args.storage_edits, args.editors, 500)
    result = {
        "bench": "collab",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_avg_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "cores": os.cpu_count(),
        "wall_s": round(time.monotonic() - began, 1),
        **measured,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = "-quick" if args.quick else ""
    for name in (f"collab-{stamp}{suffix}.json", f"collab-latest{suffix}.json"):
        (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    lat = result["latency_ms"]
    stored = result["stored"]
    print(
        f"{result['editors']} editors × {args.rate:g} chars/s: {result['updates']} updates in "
        f"{result['typing_s']} s (last answered after {result['last_answer_s']} s), "
        f"converged: {result['converged']}\n"
        f"update → other editor: p50 {lat['50']} ms, p99 {lat['99']} ms "
        f"({result['deliveries']}/{result['expected_deliveries']} deliveries)\n"
        f"server CPU per update: {result['server_cpu_ms_per_update']} ms\n"
        f"stored: {stored['without_compaction_bytes']} B without compaction, "
        f"{stored['with_background_compaction']['stored_bytes']} B with background "
        f"compaction, {stored['after_final_compaction']['stored_bytes']} B after a final one"
    )
    for edits, at in result["storage_model"]["at"].items():
        print(
            f"storage after {edits} edits (pycrdt model): {at['without_compaction_bytes']} B "
            f"without compaction, {at['stored_bytes']} B stored with compaction every 500, "
            f"{at['compacted_now_bytes']} B fully compacted ({at['text_chars']} chars)"
        )
    print(f"wrote bench/results/collab-latest{suffix}.json")


if __name__ == "__main__":
    main()
