"""The status hash, the ownership lock and the fps meter, on a real Redis."""

from __future__ import annotations

import pytest

from vidfleet_capture.status import StatusBoard, FpsMeter, owner_key
from vidfleet_common.contracts import RedisKeys
from vidfleet_common.streams import HEARTBEAT_TTL_SECONDS


def test_one_owner_at_a_time(client, keys: RedisKeys) -> None:
    first = StatusBoard(client, keys, "cam", "w1")
    second = StatusBoard(client, keys, "cam", "w2")
    assert first.acquire() is None
    assert second.acquire() == "w1"
    assert 0 < client.ttl(owner_key(keys, "cam")) <= HEARTBEAT_TTL_SECONDS
    assert first.renew() and not second.renew()
    second.release()  # not the owner: nothing happens
    assert client.get(owner_key(keys, "cam")) == b"w1"
    first.release()
    assert second.acquire() is None


def test_a_lock_that_vanished_is_taken_again(client, keys: RedisKeys) -> None:
    board = StatusBoard(client, keys, "cam", "w1")
    assert board.acquire() is None
    client.delete(owner_key(keys, "cam"))  # as after a Redis restart without persistence
    assert board.renew()
    assert client.get(owner_key(keys, "cam")) == b"w1"


def test_publish_writes_every_field_with_a_ttl(client, keys: RedisKeys) -> None:
    board = StatusBoard(client, keys, "cam", "w1")
    board.publish(state="running", fps=14.987, frames=30, reconnects=1, seq=29, ts=123)
    status = client.hgetall(keys.capture_status("cam"))
    assert status == {
        b"worker": b"w1", b"state": b"running", b"error": b"", b"fps": b"14.99", b"frames": b"30",
        b"reconnects": b"1", b"seq": b"29", b"ts": b"123",
    }
    assert 0 < client.ttl(keys.capture_status("cam")) <= HEARTBEAT_TTL_SECONDS
    assert not board.stop_requested()
    client.set(keys.capture_stop("cam"), "1")
    assert board.stop_requested()


def test_fps_is_a_moving_average_over_the_window() -> None:
    meter = FpsMeter(window=2.0)
    assert meter.sample(0, now=0.0) == 0.0
    for i in range(1, 31):  # 10 fps for 3 s
        fps = meter.sample(i, now=i / 10)
    assert fps == pytest.approx(10.0)
    for i in range(1, 21):  # then 20 fps for 1 s: the 2 s window mixes both
        fps = meter.sample(30 + i, now=3.0 + i / 20)
    assert fps == pytest.approx(15.0, rel=0.05)
