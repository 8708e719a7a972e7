"""The durable per-topic event log on Redis Streams.

One stream per topic holds the last ``LOG_MAXLEN`` events of the last ``LOG_MAX_AGE``
seconds. Publishing is one Lua step (XADD + trim + PUBLISH), so an event is in the
log before any socket can see it live, and the live frame is serialized once, in Redis.
Each topic's epoch (in its head key) changes when Redis loses the topic's data, which
turns old cursors into ``gap``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from taskstream import telemetry
from taskstream.conf import conf
from taskstream.hub import keys
from taskstream.hub.cursor import Cursor, StreamId, format_sid, new_epoch, parse_sid
from taskstream.hub.protocol import event_frame
from taskstream.hub.redis import live_command

# Each entry records the id of the entry before it ('p'), so a reader can tell whether
# the entries after a cursor are contiguous with it: exact gap detection, without
# keeping the cursor's own entry and on any Redis >= 6.2.
#
# The topic's head key (KEYS[2], ``keys.head_key``) holds "<epoch> <last id> <ms of the
# last age trim>", written by this script with each entry and living as long as the log:
# a publish reads one short string instead of the epoch plus the stream's last entry, and
# trims by age (XTRIM MINID) at most once a second, timed by the new entry's own id
# rather than a TIME call (the periodic purge trims quiet topics; MAXLEN trims on
# every XADD). Without a head (a new topic,
# or the head alone was lost) the script mints a new epoch, which turns every older
# cursor of the topic into a `gap`, and takes the stream's last entry, if any, as 'p'.
#
# An event with a key (ARGV[9], from the outbox) is logged at most once per topic: the
# topic's recent keys live in a sorted set (KEYS[3], scored by stream ms, the newest
# KEY_WINDOW kept, expiring with the log), and a key already there answers the cursor it
# got the first time instead of adding the event again. A relay that resends after a
# crash, or a fast path racing the relay, therefore never shows a client an event twice.
# Events without a key skip all of it (one string comparison).
#
# ARGV[11] is PUBLISH on a single Redis and SPUBLISH on a Redis Cluster (sharded Pub/Sub:
# the message reaches only the shard that owns the topic's slot).
PUBLISH_LUA = """
local head = redis.call('GET', KEYS[2])
local epoch, prev, trimmed
if head then epoch, prev, trimmed = string.match(head, '^(%S+) (%S+) ?(%d*)$') end
if not epoch then
  epoch = ARGV[8]
  prev = '0-0'
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #last > 0 then prev = last[1][1] end
  head = nil
end
local key = ARGV[9]
if key ~= '' then
  local ms = redis.call('ZSCORE', KEYS[3], key)
  if ms then
    local found = ms .. '-0'
    for _, entry in ipairs(redis.call('XRANGE', KEYS[1], ms, ms)) do
      local f = entry[2]
      for i = 1, #f, 2 do
        if f[i] == 'k' and f[i + 1] == key then found = entry[1] end
      end
    end
    if not head then redis.call('SET', KEYS[2], epoch .. ' ' .. prev, 'PX', ARGV[7]) end
    return {epoch, found}
  end
end
local id
if key ~= '' then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[6], '*',
                  'e', ARGV[3], 'd', ARGV[4], 't', ARGV[5], 'p', prev, 'k', key)
else
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[6], '*',
                  'e', ARGV[3], 'd', ARGV[4], 't', ARGV[5], 'p', prev)
end
local ms = tonumber(string.match(id, '^(%d+)'))
trimmed = tonumber(trimmed) or 0
if ms - trimmed >= 1000 then
  local min_ms = ms - tonumber(ARGV[7])
  if min_ms > 0 then
    redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%.0f', min_ms))
  end
  trimmed = ms
end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('SET', KEYS[2], epoch .. ' ' .. id .. ' ' .. string.format('%.0f', trimmed),
           'PX', ARGV[7])
if key ~= '' then
  redis.call('ZADD', KEYS[3], string.match(id, '^(%d+)'), key)
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -1 - tonumber(ARGV[10]))
  redis.call('PEXPIRE', KEYS[3], ARGV[7])
end
redis.call(ARGV[11], ARGV[1], id .. ' {"type":"event","topic":' .. ARGV[2] .. ',"cursor":"'
  .. epoch .. '-' .. id .. '","event":' .. ARGV[3] .. ',"data":' .. ARGV[4]
  .. ',"ts":"' .. ARGV[5] .. '"}')
return {epoch, id}
"""

# Returns {epoch, latest id, entries strictly after `since`} in one atomic step. Without a
# head it writes one (the same rules as the publish script), so a cursor read from an
# empty topic carries the epoch the topic's first event will be published under.
READ_LUA = """
local head = redis.call('GET', KEYS[2])
local epoch, latest
if head then epoch, latest = string.match(head, '^(%S+) (%S+)') end
if not epoch then
  epoch = ARGV[3]
  latest = '0-0'
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #last > 0 then latest = last[1][1] end
  redis.call('SET', KEYS[2], epoch .. ' ' .. latest, 'PX', ARGV[4])
end
if ARGV[1] == '' then return {epoch, latest, {}} end
return {epoch, latest, redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])}
"""

# Ephemeral events skip the log: one PUBLISH of the finished frame, "-" in place of an id.
EPHEMERAL_MARK = "-"


# Keys of outbox events remembered per topic. Resends only ever concern a topic's oldest
# unsent events, and no newer outbox event of that topic goes out before them (see
# taskstream.outbox), so a window far smaller than the log covers every replay; 128
# keeps the sorted set in Redis's compact listpack encoding.
KEY_WINDOW = 128


def publish_args(topic_json: str, event_json: str, data_json: str, ts: str,
                 topic: str, key: str = "") -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of :data:`PUBLISH_LUA` for one event; ``key`` makes it idempotent."""
    telemetry.EVENTS_PUBLISHED.inc()  # every publisher (hub, batch, outbox) builds these
    return (
        [keys.log_key(topic), keys.head_key(topic), keys.sent_keys_key(topic)],
        [keys.channel(topic), topic_json, event_json, data_json, ts, conf.LOG_MAXLEN,
         conf.LOG_MAX_AGE * 1000, new_epoch(), key, KEY_WINDOW, live_command()],
    )


def read_args(topic: str, since: Cursor | None) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of :data:`READ_LUA`."""
    since_sid = "" if since is None else format_sid(since.sid)
    return ([keys.log_key(topic), keys.head_key(topic)],
            [since_sid, replay_limit(), new_epoch(), conf.LOG_MAX_AGE * 1000])


def replay_limit() -> int:
    # Approximate trimming keeps up to one macro node (100 entries) over LOG_MAXLEN.
    return conf.LOG_MAXLEN + 200


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class Replay:
    """What a subscriber gets from the log: the latest cursor, then events or a gap."""

    latest: Cursor
    gap: bool = False
    events: list[tuple[StreamId, str]] = field(default_factory=list)


def decode_replay(topic_json: str, since: Cursor | None, raw: list[Any]) -> Replay:
    """Turn the :data:`READ_LUA` answer into frames, deciding exactly-once vs gap."""
    epoch, latest_raw, entries = _text(raw[0]), raw[1], raw[2]
    latest = Cursor(epoch, parse_sid(latest_raw))
    if since is None:
        return Replay(latest)
    if since.epoch != epoch:
        return Replay(latest, gap=True)  # Redis lost its data since the cursor was issued
    events: list[tuple[StreamId, str]] = []
    expected_prev = format_sid(since.sid)
    for sid_raw, fields in entries:
        values = {_text(k): _text(v) for k, v in zip(fields[::2], fields[1::2], strict=True)}
        if not events and values.get("p") != expected_prev:
            return Replay(latest, gap=True)  # the entry after the cursor was trimmed
        sid = parse_sid(sid_raw)
        cursor = f"{epoch}-{sid[0]}-{sid[1]}"
        events.append((sid, event_frame(topic_json, cursor, values["e"], values["d"], values["t"])))
    if not events and since.sid != latest.sid:
        return Replay(latest, gap=True)  # the cursor is past or outside what is retained
    if events and events[-1][0] != latest.sid:
        return Replay(latest, gap=True)  # further behind than one replay may carry
    return Replay(latest, events=events)
