"""Stream leases: each stream is tracked by exactly one live detector.

A lease is a Redis key `…:lease:<stream>` holding the detector's id with a TTL. The holder renews it
every third of the TTL; a detector that dies loses its streams within one TTL, and another takes
them. Every acknowledgement goes through a script that first checks the lease, so a detector that
lost a lease (paused, partitioned) can never acknowledge a frame its successor also handles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vidfleet_common.contracts import RedisKeys
from vidfleet_common.streams import CONSUMER_GROUP

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# KEYS: lease, frames, tracks, events, counting state.
# ARGV: holder, group, tracks maxlen, events maxlen, number of ids to ack, number of track messages, number of
# events, counting state JSON ('' for none), counts JSON; then the ids, (seq, ts, pts, tracks) per track message,
# and one JSON per event. Appends, saves the counting state and acknowledges only while holding the lease, all
# in one step: a replacement detector finds the state and the events of exactly the frames acknowledged.
_PUBLISH_AND_ACK = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
local n_ack, n_tracks, n_events = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local i = 10 + n_ack
for _ = 1, n_tracks do
  redis.call('xadd', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'seq', ARGV[i], 'ts', ARGV[i + 1], 'pts', ARGV[i + 2], 'tracks', ARGV[i + 3])
  i = i + 4
end
for _ = 1, n_events do
  redis.call('xadd', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'event', ARGV[i])
  i = i + 1
end
if ARGV[8] ~= '' then redis.call('hset', KEYS[5], 'state', ARGV[8], 'counts', ARGV[9]) end
if n_ack > 0 then return redis.call('xack', KEYS[2], ARGV[2], unpack(ARGV, 10, 9 + n_ack)) end
return 0
"""


class LeaseLost(Exception):
    """This detector no longer holds the stream's lease."""


class Leases:
    def __init__(self, redis: Any, keys: RedisKeys, holder: str, ttl_ms: int) -> None:
        self.redis = redis
        self.keys = keys
        self.holder = holder
        self.ttl_ms = ttl_ms
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._publish = redis.register_script(_PUBLISH_AND_ACK)

    def acquire(self, stream: str) -> bool:
        return bool(self.redis.set(self.keys.stream_lease(stream), self.holder, nx=True, px=self.ttl_ms))

    def renew(self, stream: str) -> bool:
        return bool(self._renew(keys=[self.keys.stream_lease(stream)], args=[self.holder, self.ttl_ms]))

    def release(self, stream: str) -> None:
        self._release(keys=[self.keys.stream_lease(stream)], args=[self.holder])

    def holder_of(self, stream: str) -> str | None:
        value = self.redis.get(self.keys.stream_lease(stream))
        return value.decode() if isinstance(value, bytes) else value

    def publish_and_ack(
        self,
        stream: str,
        ack_ids: Sequence[Any],
        tracks: Sequence[dict[str, Any]],
        tracks_maxlen: int,
        *,
        events: Sequence[str] = (),
        events_maxlen: int = 10_000,
        counting: tuple[str, str] | None = None,
    ) -> int:
        """Append track messages and counting events (JSON), save the counting state (state JSON, counts JSON)
        and acknowledge frames: atomically, and only as the lease holder."""
        state, counts = counting or ("", "")
        args: list[Any] = [self.holder, CONSUMER_GROUP, tracks_maxlen, events_maxlen, len(ack_ids), len(tracks), len(events), state, counts, *ack_ids]
        for message in tracks:
            args += [message["seq"], message["ts"], message["pts"], message["tracks"]]
        args += list(events)
        keys = [
            self.keys.stream_lease(stream), self.keys.frames(stream), self.keys.tracks(stream),
            self.keys.events(stream), self.keys.counting_state(stream),
        ]
        acked = int(self._publish(keys=keys, args=args))
        if acked < 0:
            raise LeaseLost(stream)
        return acked
