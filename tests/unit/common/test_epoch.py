"""The fleet epoch on a real redis-server: created once, replaced only when Redis lost its data."""

from __future__ import annotations

import os

from tests.servers import RedisServer
from vidfleet_common.contracts import RedisKeys
from vidfleet_common.epoch import FleetEpoch, data_lost_message
from vidfleet_common.fleet import redis_client
from vidfleet_common.settings import Settings


def epochs(redis_server: RedisServer) -> FleetEpoch:
    return FleetEpoch(redis_client(Settings(CELERY_BROKER_URL=redis_server.url)), RedisKeys(f"ep{os.urandom(3).hex()}:"))


def test_the_epoch_is_created_once_and_then_kept(redis_server: RedisServer) -> None:
    fleet = epochs(redis_server)
    assert fleet.current() is None
    first = fleet.ensure()
    assert fleet.ensure().id == first.id == fleet.current_id(), "a second coordinator finds the same epoch"
    assert first.data_lost_at is None and first.previous is None, "a new install is not a data loss"


def test_an_epoch_made_again_after_a_loss_says_when_and_what_it_replaced(redis_server: RedisServer) -> None:
    fleet = epochs(redis_server)
    before = fleet.ensure()
    fleet.redis.delete(fleet.keys.fleet_epoch())  # what a restart without persistence, or FLUSHALL, does

    after = fleet.ensure(previous=before.id)

    assert after.id != before.id and after.previous == before.id and after.data_lost_at is not None
    assert fleet.ensure(previous="someone-else").id == after.id, "only the first to notice makes the new epoch"
    assert data_lost_message(after.data_lost_at).startswith("Redis lost its data at 20")
