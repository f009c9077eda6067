"""The fleet epoch: a random id kept in Redis that changes only when Redis lost its data.

Redis restarted without persistence, failed over to an empty replica, or flushed: every key is
gone at once, the epoch with them. The coordinator creates the epoch when it finds none and
remembers it; the id travels in every job record and `detect` task. Whoever later reads a different
(or no) epoch knows that the data it relied on is gone, instead of waiting on a job that no longer
exists.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from vidfleet_common.contracts import RedisKeys

# KEYS: epoch hash. ARGV: new id, previous id ('' if none known). Creates the epoch only if absent
# (several coordinators may race); data_lost_at is set when the creator knew an earlier epoch.
_ENSURE = """
if redis.call('exists', KEYS[1]) == 0 then
  local t = redis.call('time')
  local now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
  redis.call('hset', KEYS[1], 'id', ARGV[1], 'created_at', now)
  if ARGV[2] ~= '' then redis.call('hset', KEYS[1], 'previous', ARGV[2], 'data_lost_at', now) end
end
return redis.call('hgetall', KEYS[1])
"""


@dataclass(frozen=True)
class Epoch:
    id: str
    created_at: float
    previous: str | None = None
    data_lost_at: float | None = None

    @classmethod
    def from_hash(cls, raw: dict[Any, Any]) -> Epoch:
        text = {_text(k): _text(v) for k, v in raw.items()}
        lost = text.get("data_lost_at")
        return cls(text["id"], float(text.get("created_at", 0)), text.get("previous"), float(lost) if lost else None)


DATA_LOST = "Redis lost its data"


def data_lost_message(lost_at: float | None) -> str:
    when = datetime.fromtimestamp(lost_at, timezone.utc).isoformat(timespec="seconds") if lost_at else "an unknown time"
    return f"{DATA_LOST} at {when} (restarted without persistence, failed over to an empty replica, or flushed)"


class FleetEpoch:
    def __init__(self, redis: Any, keys: RedisKeys) -> None:
        self.redis = redis
        self.keys = keys
        self._ensure = redis.register_script(_ENSURE)

    def current(self) -> Epoch | None:
        raw = self.redis.hgetall(self.keys.fleet_epoch())
        return Epoch.from_hash(raw) if raw else None

    def current_id(self) -> str | None:
        value = self.redis.hget(self.keys.fleet_epoch(), "id")
        return _text(value) if value is not None else None

    def ensure(self, *, previous: str | None = None) -> Epoch:
        """The current epoch; created if Redis has none. `previous`: the epoch this process knew, if any."""
        raw = self._ensure(keys=[self.keys.fleet_epoch()], args=[secrets.token_hex(8), previous or ""])
        return Epoch.from_hash(dict(zip(raw[0::2], raw[1::2])))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
