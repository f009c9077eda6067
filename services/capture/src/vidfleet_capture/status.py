"""What a capture tells the fleet through Redis: its status hash, its ownership lock, and its stop key.

- Status `…:capture:<name>` (hash): HSET + EXPIRE every heartbeat. Live states expire after
  HEARTBEAT_TTL_SECONDS (a capture silent that long is dead); "failed" stays FAILED_TTL_SECONDS so
  that `streams ls` shows the reason; "stopped" stays STOPPED_TTL_SECONDS, then disappears; "ended"
  (a file without loop, or `count`, played to its end) stays until the stream is removed.
- Lock `…:capture:<name>:owner` = worker id, SET NX EX HEARTBEAT_TTL_SECONDS, renewed every heartbeat:
  two captures never feed one stream. A second capture does not start; one that finds the lock
  taken by another (it stalled past the TTL) stops.
- Stop `…:capture:<name>:stop`: set by the coordinator while the stream must not be captured;
  the capture only reads it (its owner deletes it).
"""

from __future__ import annotations

import time
from typing import Any

from vidfleet_common.contracts import RedisKeys
from vidfleet_common.streams import HEARTBEAT_TTL_SECONDS

FAILED_TTL_SECONDS = 60
STOPPED_TTL_SECONDS = HEARTBEAT_TTL_SECONDS
ENDED_TTL_SECONDS = 7 * 24 * 3600  # until the stream is removed (its removal deletes it) or a week

# Renew the lock if it is ours; take it again if it vanished (a Redis restart without the key); else 0.
_RENEW = """
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return 1
elseif not owner then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def owner_key(keys: RedisKeys, stream: str) -> str:
    return keys.capture_owner(stream)


class StatusBoard:
    """One capture's status hash, lock and stop key."""

    def __init__(self, redis: Any, keys: RedisKeys, stream: str, worker: str) -> None:
        self.redis = redis
        self.stream = stream
        self.worker = worker
        self.status_key = keys.capture_status(stream)
        self.owner_key = owner_key(keys, stream)
        self.stop_key = keys.capture_stop(stream)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    def acquire(self) -> str | None:
        """Take the lock. None when taken; else the worker that holds it."""
        if self.redis.set(self.owner_key, self.worker, nx=True, ex=HEARTBEAT_TTL_SECONDS):
            return None
        owner = self.redis.get(self.owner_key)
        if owner is None:  # expired in between
            return self.acquire()
        owner = owner.decode() if isinstance(owner, bytes) else str(owner)
        return None if owner == self.worker else owner

    def renew(self) -> bool:
        """Keep the lock; False when another capture holds it now."""
        return bool(self._renew(keys=[self.owner_key], args=[self.worker, HEARTBEAT_TTL_SECONDS]))

    def release(self) -> None:
        self._release(keys=[self.owner_key], args=[self.worker])

    def stop_requested(self) -> bool:
        return bool(self.redis.exists(self.stop_key))

    def publish(
        self, *, state: str, error: str = "", fps: float = 0.0, frames: int = 0, reconnects: int = 0, seq: int = -1, ts: int = 0,
        ttl: int = HEARTBEAT_TTL_SECONDS,
    ) -> None:
        mapping = {
            "worker": self.worker, "state": state, "error": error, "fps": f"{fps:.2f}", "frames": frames,
            "reconnects": reconnects, "seq": seq, "ts": ts,
        }
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.status_key, mapping=mapping)
        pipe.expire(self.status_key, ttl)
        pipe.execute()


class FpsMeter:
    """Frames per second over the last ~`window` seconds, from (time, count) samples."""

    def __init__(self, window: float = 2.0) -> None:
        self.window = window
        self._samples: list[tuple[float, int]] = []

    def sample(self, count: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._samples.append((now, count))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.pop(0)
        t0, c0 = self._samples[0]
        return (count - c0) / (now - t0) if now > t0 else 0.0
