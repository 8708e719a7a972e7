"""The ``TASKSTREAM`` settings, each declared once, in :class:`TaskstreamSettings` below.

Adding a setting is ONE entry in that class::

    MY_SETTING = Setting(int, 10, "what it does, in one line", app="jobs", check="E0NN", gt=0)

From that entry alone:

* ``conf.MY_SETTING`` reads it (typed by ``kind``; read on every access, so
  ``override_settings(TASKSTREAM=...)`` works in tests);
* ``checks.py`` validates it at start-up: a wrong type or a value outside the bounds
  (``gt``/``ge``/``le``) is the system check ``taskstream.<check>``; a rule bounds cannot say
  goes in ``valid`` (with its words in ``rule`` and a refused example in ``invalid``);
* the settings tables in docs/ are generated from it (``make docs-settings``; a test fails
  while they differ), and tests/test_settings.py triggers its check with a refused value.

Check ids are ranged by app: hub E001-E019 (then E110-E119), jobs E020-E029, rooms E050-E055
(then E045-E049), notifications E056-E059, pipelines E060-E069, periodic E070-E079 (and
outbox E080-E089), accounts (taskstream.throttle) E090-E099, installation E100 (the base app
missing), ops E120-E139, collab E140-E149.
A rule over several settings is a :class:`Relation` in ``RELATIONS``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, overload
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

T = TypeVar("T")

_UNSET: Any = object()

#: Apps in the order their settings are listed in docs/operations.md.
APPS = ("hub", "jobs", "rooms", "notifications", "pipelines", "periodic", "accounts", "ops",
        "collab")


def _user() -> Mapping[str, Any]:
    user = getattr(settings, "TASKSTREAM", {}) or {}
    return user if isinstance(user, Mapping) else {}


class Setting(Generic[T]):
    """One ``TASKSTREAM`` key: its type, default, bounds, check id and documentation."""

    name: str

    def __init__(self, kind: type[T], default: Any, doc: str, *, app: str, check: str,
                 gt: float | None = None, ge: float | None = None, le: float | None = None,
                 rule: str | None = None, valid: Callable[[Any], bool] | None = None,
                 invalid: Any = _UNSET, shown: str | None = None,
                 required: bool = False) -> None:
        assert app in APPS, app
        self.kind, self.default, self.doc, self.app, self.check = kind, default, doc, app, check
        self.gt, self.ge, self.le = gt, ge, le
        self.valid, self.required, self.shown = valid, required, shown
        self.rule = rule or self._rule()
        self.invalid = self._invalid() if invalid is _UNSET else invalid

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Setting[T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...
    def __get__(self, obj: object | None, owner: type) -> Setting[T] | T:
        if obj is None:
            return self
        value = _user().get(self.name, self.default)
        if self.required and not value:
            raise ImproperlyConfigured(f'TASKSTREAM["{self.name}"] is required ({self.rule}).')
        return self.kind(value)  # type: ignore[call-arg]

    def _rule(self) -> str:
        noun = {int: "integer", float: "number", str: "string", list: "list"}[self.kind]
        if self.gt == 0 and self.ge is None and self.le is None:
            return f"a positive {noun}"
        if self.ge is not None and self.le is not None:
            return f"an {noun} from {self.ge:g} to {self.le:g}"
        assert self.gt is None and self.ge is None and self.le is None, "say it in rule="
        return f"a {noun}"

    def _invalid(self) -> Any:
        if self.gt is not None:
            return self.kind(self.gt)  # type: ignore[call-arg]
        if self.le is not None:
            return self.kind(self.le + 1)  # type: ignore[call-arg]
        return 1.5 if self.kind is not float else "many"

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is refused, or None."""
        kinds: dict[type, tuple[type, ...]] = {int: (int,), float: (int, float), str: (str,),
                                               list: (list, tuple)}
        message = f'TASKSTREAM["{self.name}"] must be {self.rule}.'
        if not isinstance(value, kinds[self.kind]) or isinstance(value, bool):
            return message
        number: Any = value
        if ((self.gt is not None and not number > self.gt)
                or (self.ge is not None and not number >= self.ge)
                or (self.le is not None and not number <= self.le)):
            return message
        if self.valid is not None and not self.valid(value):
            return message
        return None

    def default_text(self) -> str:
        if self.shown is not None:
            return self.shown
        if self.default is None:
            return "required"
        if isinstance(self.default, str):
            return f'`"{self.default}"`'
        if isinstance(self.default, float):
            return f"`{self.default:g}`"
        return f"`{self.default!r}`"


@dataclass(frozen=True)
class Relation:
    """A rule over several settings, checked at start-up as ``taskstream.<check>``."""

    check: str
    names: tuple[str, ...]
    holds: Callable[..., bool]
    message: str


def _redis_url(value: str) -> bool:
    return urlsplit(value).scheme in ("redis", "rediss", "unix", "redis+cluster",
                                      "rediss+cluster")


def _origins(value: list[Any]) -> bool:
    return all(isinstance(o, str) and (o == "*" or urlsplit(o).scheme in ("http", "https"))
               for o in value)


def _storage(value: str) -> bool:
    return value in getattr(settings, "STORAGES", {})


class TaskstreamSettings:
    """Attribute access to ``settings.TASKSTREAM``; every setting is declared here, once."""

    # -- hub --------------------------------------------------------------------------------
    REDIS_URL = Setting(str, None, "Redis that holds the hub's event log and carries live "
                        "fan-out; `redis+cluster://host:port` (or `rediss+cluster://`) for a "
                        "Redis Cluster, any node as the seed", app="hub", check="E001",
                        required=True, rule="a redis://, rediss://, unix://, redis+cluster:// "
                        "or rediss+cluster:// URL", valid=_redis_url, invalid="http://x")
    KEY_PREFIX = Setting(str, "ts:", "prefix of every Redis key and channel (share a Redis "
                         "between sites safely)", app="hub", check="E015",
                         rule="a string without braces (topics are the keys' hash tags)",
                         valid=lambda v: "{" not in v and "}" not in v, invalid="ts{1}:")
    ALLOWED_ORIGINS = Setting(list, [], "origins allowed to open `/ws/` besides the page's own "
                              '(`"https://app.example.com"`, or `"*"`)', app="hub",
                              check="E002", rule='a list of "scheme://host[:port]"',
                              valid=_origins, invalid="https://x")
    LOG_MAXLEN = Setting(int, 1000, "events kept per topic", app="hub", check="E003", gt=0)
    LOG_MAX_AGE = Setting(int, 86400, "seconds events are kept per topic", app="hub",
                          check="E004", gt=0)
    HEARTBEAT = Setting(float, 20, "seconds between pings; a peer silent for two is closed",
                        app="hub", check="E012", gt=0)
    MAX_FRAME_BYTES = Setting(int, 65536, "largest client frame (bytes); a bigger one closes "
                              "the socket with 1009", app="hub", check="E005", gt=0)
    MAX_EVENT_BYTES = Setting(int, 65536, "largest serialized `data` of a published event "
                              "(bytes)", app="hub", check="E006", gt=0)
    MAX_SUBSCRIPTIONS = Setting(int, 100, "topics one socket may hold at once", app="hub",
                                check="E007", gt=0)
    RATE_PER_SECOND = Setting(float, 20.0, "token bucket over client frames per socket: "
                              "refill per second", app="hub", check="E013", gt=0)
    RATE_BURST = Setting(int, 60, "token bucket over client frames per socket: burst size",
                         app="hub", check="E008", gt=0)
    RATE_STRIKES = Setting(int, 20, "`rate_limited` answers a socket may collect before it "
                           "is closed with 4429", app="hub", check="E009", gt=0)
    OUTBOUND_QUEUE_BYTES = Setting(int, 1_048_576, "bytes a slow socket may have waiting "
                                   "before it is closed with 4408", app="hub", check="E010",
                                   gt=0)
    TOKEN_MAX_AGE = Setting(int, 60, "lifetime of `POST /api/ws-token/` tokens (seconds)",
                            app="hub", check="E011", gt=0)
    MAX_CONNECTIONS_PER_USER = Setting(int, 20, "sockets one signed-in user may hold open on "
                                       "one server process (more: `too_many_connections`, "
                                       "close 4430; client.js holds one per browser)",
                                       app="hub", check="E016", gt=0)
    MAX_ANONYMOUS_CONNECTIONS = Setting(int, 2000, "anonymous sockets one server process "
                                        "holds open (more: `rate_limited`, close 4431)",
                                        app="hub", check="E110", gt=0)
    MAX_ANONYMOUS_CONNECTIONS_PER_ADDRESS = Setting(
        int, 50, "anonymous sockets one client address may hold open on one server process "
        "(more: `rate_limited`, close 4431); the address is the proxy's unless the server "
        "trusts its forwarded headers (`FORWARDED_ALLOW_IPS`)", app="hub", check="E111", gt=0)
    OUTBOUND_STALL_TIMEOUT = Setting(float, 30.0, "seconds a socket's outbound data may stay "
                                     "stuck (the peer does not read) before `python -m "
                                     "taskstream.server` drops the connection", app="hub",
                                     check="E112", gt=0)
    DRAIN_SECONDS = Setting(float, 5.0, "seconds over which a server process stopped with "
                            "SIGTERM closes its sockets (1012, in random order, after it stopped "
                            "accepting), so they reconnect to the other processes at an even "
                            "rate; in-flight requests then get 10 s more", app="hub",
                            check="E118", ge=0, rule="a number >= 0 (0: all at once)",
                            invalid=-1)
    # HTTP request bodies (taskstream.bodylimit, in front of Django).
    MAX_BODY_BYTES = Setting(int, 2_621_440, "largest HTTP request body (bytes), enforced while "
                             "it streams in (more: 413 `too_large`); upload views register "
                             "their own allowance", app="hub", check="E017", gt=0)
    ANONYMOUS_MAX_BODY_BYTES = Setting(int, 65_536, "largest HTTP request body without a "
                                       "signed-in session (bytes)", app="hub", check="E018",
                                       gt=0)
    BODY_TIMEOUT = Setting(float, 10.0, "seconds a request body may stall before 408 "
                           "`timeout`", app="hub", check="E019", gt=0)
    # -- jobs -------------------------------------------------------------------------------
    JOB_PROGRESS_INTERVAL = Setting(float, 0.1, "least seconds between two progress events of "
                                    "one job (the last value is always delivered)", app="jobs",
                                    check="E020", gt=0)
    JOB_HEARTBEAT_INTERVAL = Setting(float, 10.0, "seconds between heartbeats of a running job",
                                     app="jobs", check="E021", gt=0)
    JOB_HEARTBEAT_TIMEOUT = Setting(float, 60.0, "a running job whose heartbeat is older than "
                                    "this is re-queued by the reaper (must exceed 2 × the "
                                    "interval)", app="jobs", check="E022", gt=0)
    JOB_REAPER_INTERVAL = Setting(float, 30.0, "seconds between two runs of the reaper by beat",
                                  app="jobs", check="E023", gt=0)
    JOB_PAGE_SIZE = Setting(int, 20, "page size of `GET /api/jobs/`", app="jobs", check="E024",
                            gt=0)
    JOB_QUEUED_TIMEOUT = Setting(float, 600.0, "a top-level job queued this long without a "
                                 "claim is sent again by the reaper (its message was lost)",
                                 app="jobs", check="E026", gt=0)
    JOB_DB_RETRY_SECONDS = Setting(float, 30.0, "how long a run retries its progress, "
                                   "heartbeat and final writes while the database is "
                                   "unreachable", app="jobs", check="E027", gt=0)
    JOB_MAX_ACTIVE_PER_USER = Setting(int, 100, "jobs one user may have queued, retrying or "
                                      "running at once when starting one over HTTP (more: "
                                      "429 `too_many_jobs`)", app="jobs", check="E028", gt=0)
    JOB_MAX_RUNNING_PER_USER = Setting(int, 4, "top-level jobs of one user running at once; "
                                       "a claim over it waits (its message is sent again "
                                       "shortly) and the worker takes other users' jobs",
                                       app="jobs", check="E029", gt=0)
    # -- rooms ------------------------------------------------------------------------------
    ROOM_MESSAGE_MAX_LENGTH = Setting(int, 4000, "characters per message", app="rooms",
                                      check="E050", gt=0)
    ROOM_MESSAGE_RATE = Setting(int, 10, "messages one user may send per window, across every "
                                "process", app="rooms", check="E051", gt=0)
    ROOM_MESSAGE_RATE_WINDOW = Setting(float, 10, "that window (seconds)", app="rooms",
                                       check="E053", gt=0)
    ROOM_HISTORY_PAGE = Setting(int, 50, "default page size of the history API", app="rooms",
                                check="E052", gt=0)
    ROOM_PRESENCE_TTL = Setting(float, 45, "seconds a presence entry lives unless its process "
                                "refreshes it (a dead process's sockets leave the list after "
                                "at most this long)", app="rooms", check="E054", gt=0)
    ROOM_PRESENCE_GRACE = Setting(float, 2.0, "seconds a user who left a room still counts as "
                                  "present, so a quick reconnect or resubscribe announces no "
                                  "presence.left / presence.joined", app="rooms", check="E045",
                                  ge=0, rule="a number >= 0 (0: announce at once)",
                                  invalid=-1)
    ROOM_TYPING_INTERVAL = Setting(float, 2.0, "least seconds between two typing events of one "
                                   "user in one room", app="rooms", check="E055", gt=0)
    # -- notifications ----------------------------------------------------------------------
    NOTIFICATIONS_PAGE = Setting(int, 20, "default page size of the inbox API",
                                 app="notifications", check="E056", gt=0)
    SITE_NAME = Setting(str, "taskstream", "the site's name in transactional e-mail",
                        app="notifications", check="E057", rule="a non-empty string",
                        valid=lambda v: bool(v.strip()), invalid=" ")
    WELCOME_EMAIL_INTERVAL = Setting(float, 86400.0, "least seconds between two welcome "
                                     "e-mails to one address (sign-ups naming someone else's "
                                     "address cannot flood it)", app="notifications",
                                     check="E058", gt=0)
    # -- pipelines --------------------------------------------------------------------------
    PIPELINE_MAX_UPLOAD_BYTES = Setting(int, 20 * 1024 * 1024, "largest upload (bytes), "
                                        "enforced while it streams in", app="pipelines",
                                        check="E060", gt=0, shown="`20971520` (20 MiB)")
    PIPELINE_CHUNK_ROWS = Setting(int, 10_000, "records per chunk", app="pipelines",
                                  check="E061", gt=0)
    PIPELINE_MAX_COLUMNS = Setting(int, 100, "most columns a CSV may have", app="pipelines",
                                   check="E062", gt=0)
    PIPELINE_MAX_RETRIES = Setting(int, 3, "retries of a step's transient errors",
                                   app="pipelines", check="E063", gt=0)
    PIPELINE_RETRY_BACKOFF = Setting(float, 1.0, "seconds before the first retry of a step, "
                                     "doubling", app="pipelines", check="E064", gt=0)
    PIPELINE_STORAGE = Setting(str, "default", "the `STORAGES` alias uploads, parts and "
                               "reports use", app="pipelines", check="E065",
                               rule="the name of an entry of STORAGES", valid=_storage,
                               invalid="nowhere")
    # -- periodic ---------------------------------------------------------------------------
    RETENTION_DAYS = Setting(int, 30, "days finished jobs, read notifications, uploads and "
                             "run history are kept", app="periodic", check="E070", gt=0)
    PURGE_INTERVAL = Setting(float, 3600.0, "seconds between purges", app="periodic",
                             check="E071", gt=0)
    DIGEST_HOUR = Setting(int, 7, "the UTC hour of the daily digest e-mail", app="periodic",
                          check="E075", ge=0, le=23)
    PERIODIC_CHECK_INTERVAL = Setting(float, 60.0, "seconds between missed-run checks",
                                      app="periodic", check="E072", gt=0)
    PERIODIC_GRACE = Setting(float, 60.0, "seconds a schedule may run late past its interval "
                             "before the missed-run check alerts", app="periodic",
                             check="E073", gt=0)
    BEAT_LOCK_TTL = Setting(float, 30.0, "seconds the single beat's lock lives unless renewed "
                            "(a standby beat takes over after it)", app="periodic",
                            check="E074", gt=0)

    # -- accounts (taskstream.throttle) -----------------------------------------------------
    LOGIN_ATTEMPTS_PER_CLIENT = Setting(int, 20, "sign-in attempts one client address may "
                                        "make per window", app="accounts", check="E090", gt=0)
    LOGIN_FAILURES_PER_ACCOUNT = Setting(int, 5, "failed sign-ins one account may collect per "
                                         "window; then even the right password is refused "
                                         "until a slot frees", app="accounts", check="E091",
                                         gt=0)
    SIGNUPS_PER_CLIENT = Setting(int, 5, "sign-ups one client address may make per window",
                                 app="accounts", check="E092", gt=0)
    ACCOUNT_THROTTLE_WINDOW = Setting(float, 900.0, "the sliding window of those three "
                                      "(seconds)", app="accounts", check="E093", gt=0)
    # -- ops ------------------------------------------------------------------------------
    METRICS_TOKEN = Setting(str, "", "bearer token a scraper sends to `/metrics` "
                            '(`Authorization: Bearer …`); `""`: staff sign-in only',
                            app="ops", check="E120",
                            rule='"" or a string of at least 32 characters',
                            valid=lambda v: v == "" or len(v.strip()) >= 32, invalid="short")
    OPS_LONG_RUNNING = Setting(float, 600.0, "seconds after which a running job is listed as "
                               "long-running on the ops pages", app="ops", check="E121", gt=0)
    OPS_PULSE_INTERVAL = Setting(float, 1.0, "least seconds between two `jobs.changed` events "
                                 "a process publishes on `ops` (live staff pages)", app="ops",
                                 check="E122", gt=0)
    # The events monitor's history and alerts (E130-E139; E123-E129 left to the ops pages).
    OPS_HISTORY_MAX_EVENTS = Setting(int, 100_000, "task events the monitor keeps in the "
                                     "database (the oldest are deleted each minute)",
                                     app="ops", check="E130", gt=0)
    OPS_HISTORY_MAX_AGE = Setting(float, 7 * 86400.0, "seconds the monitor keeps task events, "
                                  "per-minute counts, cleared alerts and offline workers",
                                  app="ops", check="E131", gt=0)
    OPS_ALERT_QUEUE_WAIT = Setting(float, 300.0, "seconds the oldest waiting job may wait "
                                   "before the `queue_wait` alert (0: off)", app="ops",
                                   check="E132", ge=0,
                                   rule="0 (off) or a positive number", invalid=-1.0)
    OPS_ALERT_FAILURE_RATE = Setting(float, 0.5, "share of tasks failed over the last 5 "
                                     "minutes (at least 5 finished) that raises the "
                                     "`failure_rate` alert (0: off)", app="ops",
                                     check="E133", ge=0, le=1,
                                     rule="0 (off) or a share up to 1", invalid=1.5)
    OPS_ALERT_MISSED_BEAT = Setting(float, 120.0, "seconds without a leading beat (the "
                                    "`SingleBeatScheduler`'s lock) before the `missed_beat` "
                                    "alert (0: off)", app="ops",
                                    check="E134", ge=0,
                                    rule="0 (off) or a positive number", invalid=-1.0)
    OPS_ALERT_WORKER_GONE = Setting(float, 60.0, "seconds a worker whose heartbeats stopped "
                                    "may stay gone before the `worker_gone` alert (0: off)",
                                    app="ops", check="E135", ge=0,
                                    rule="0 (off) or a positive number", invalid=-1.0)

    # -- collab ---------------------------------------------------------------------------
    COLLAB_MAX_UPDATE_BYTES = Setting(int, 32_768, "largest Yjs update a client may publish on "
                                      "`doc:<id>` (bytes, before base64; more: `too_large`)",
                                      app="collab", check="E140", gt=0)
    COLLAB_MAX_DOCUMENT_BYTES = Setting(int, 2_097_152, "largest encoded state of one document "
                                        "(bytes); an update that would grow it past this is "
                                        "refused with `too_large`", app="collab", check="E141",
                                        gt=0)
    COLLAB_MAX_AWARENESS_BYTES = Setting(int, 4096, "largest awareness update (cursor, name, "
                                         "colour; bytes, before base64)", app="collab",
                                         check="E142", gt=0)
    COLLAB_COMPACT_EVERY = Setting(int, 500, "updates stored since the snapshot that start a "
                                   "compaction of the document in the background",
                                   app="collab", check="E143", gt=0)

    def _get(self, name: str) -> Any:
        """The raw value (the user's, else the default): for settings read without coercion."""
        return _user().get(name, SETTINGS[name].default)


#: Every setting by name, in declaration order.
SETTINGS: dict[str, Setting[Any]] = {
    name: value for name, value in vars(TaskstreamSettings).items() if isinstance(value, Setting)
}
#: name → default (kept for code that reads defaults directly).
DEFAULTS: dict[str, Any] = {name: s.default for name, s in SETTINGS.items()}


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _base64_size(raw: int) -> int:
    return 4 * ((raw + 2) // 3)


RELATIONS: tuple[Relation, ...] = (
    # One late heartbeat must not get a healthy job re-queued.
    Relation("E025", ("JOB_HEARTBEAT_INTERVAL", "JOB_HEARTBEAT_TIMEOUT"),
             lambda interval, timeout: not _numbers(interval, timeout) or timeout > 2 * interval,
             'TASKSTREAM["JOB_HEARTBEAT_TIMEOUT"] must exceed twice JOB_HEARTBEAT_INTERVAL.'),
    # A Yjs update travels base64-encoded in a publish frame and again in the event: the
    # largest one allowed must fit both, or an accepted update could never be delivered.
    Relation("E144", ("COLLAB_MAX_UPDATE_BYTES", "MAX_FRAME_BYTES", "MAX_EVENT_BYTES"),
             lambda update, frame, event: not _numbers(update, frame, event)
             or _base64_size(update) + 512 <= min(frame, event),
             'TASKSTREAM["COLLAB_MAX_UPDATE_BYTES"], base64-encoded (4/3) plus 512 bytes, must '
             "fit MAX_FRAME_BYTES and MAX_EVENT_BYTES."),
)

conf = TaskstreamSettings()


# -- the docs tables -------------------------------------------------------------------------

def markdown_table(app: str | None = None) -> str:
    """The settings table of one app (or of every app, with an ``app`` column)."""
    rows = [s for s in SETTINGS.values() if app is None or s.app == app]
    head = ["setting", "default", "meaning", "check"] + (["app"] if app is None else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in rows:
        cells = [f"`{s.name}`", s.default_text(), s.doc, f"`taskstream.{s.check}`"]
        lines.append("| " + " | ".join(cells + ([s.app] if app is None else [])) + " |")
    return "\n".join(lines) + "\n"


_BLOCK_START, _BLOCK_END = "<!-- settings-table:", "<!-- /settings-table -->"


def render_docs(text: str) -> str:
    """``text`` with every ``<!-- settings-table: APP -->`` block regenerated (APP or all)."""
    out, rest = [], text
    while (start := rest.find(_BLOCK_START)) != -1:
        head_end = rest.index("-->", start) + 3
        app = rest[start + len(_BLOCK_START):head_end - 3].strip()
        end = rest.index(_BLOCK_END, head_end)
        out += [rest[:head_end], "\n", markdown_table(None if app == "all" else app)]
        rest = rest[end:]
    return "".join(out) + rest


if __name__ == "__main__":  # make docs-settings: python -m taskstream.conf docs/*.md README.md
    for path in map(Path, sys.argv[1:]):
        old = path.read_text()
        if (new := render_docs(old)) != old:
            path.write_text(new)
            print(f"updated {path}")
