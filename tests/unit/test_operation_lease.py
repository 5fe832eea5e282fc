"""A worker's lease on an operation, on the in-memory table: another writer's change (a cancel) is merged
while the lease is still the worker's; another owner, or a lease that ran out unrenewed, means lost."""

import time
from dataclasses import replace
from datetime import timedelta

import pytest

from shared.adapters.tables import MemoryRowTable
from shared.catalog.operations import OperationCatalog
from shared.domain.operations import Operation, OperationStatus, Step
from shared.domain.snapshots import Actor
from shared.operations.lease import CancelRequested, LeaseLost, OperationLease
from tests.support.memory import ManualClock

LEASE = timedelta(seconds=40)


@pytest.fixture
def world():
    clock = ManualClock()
    table = MemoryRowTable()
    catalog = OperationCatalog(table)
    operation = catalog.add(
        Operation(
            id="op-1",
            kind="toy",
            status=OperationStatus.RUNNING,
            environment_id="env",
            namespace="ns",
            created_on=clock.now,
            updated_on=clock.now,
            created_by=Actor("ada", "Ada"),
            steps=(Step("first", "First"),),
        )
    )
    claimed = catalog.save(replace(operation, lease_owner="mine", lease_until=clock.now + LEASE))
    lease = OperationLease(claimed, catalog, LEASE, clock)
    lease.table = table
    return clock, catalog, lease


def test_each_write_extends_the_lease_and_is_the_heartbeat(world):
    clock, catalog, lease = world
    clock.advance(10)
    saved = lease.commit(lambda record: record.with_step(0, message="half-way"))
    assert saved.lease_until == clock.now + LEASE
    assert saved.heartbeat_on == clock.now
    assert catalog.get("op-1").steps[0].message == "half-way"


def test_a_cancel_written_meanwhile_is_merged_and_then_stops_the_step(world):
    _, catalog, lease = world
    current = catalog.get("op-1")
    catalog.save(replace(current, cancel_requested_by=Actor("bob", "Bob")))
    lease.check()  # not seen yet: the worker learns at its next write
    saved = lease.commit(lambda record: record.with_step(0, message="still mine"))
    assert saved.lease_owner == "mine"
    assert saved.cancel_requested_by == Actor("bob", "Bob")
    assert saved.steps[0].message == "still mine"
    with pytest.raises(CancelRequested):
        lease.check()


def test_a_cancel_is_not_a_reason_to_stop_an_undo_or_past_the_point_of_no_return(world):
    _, catalog, lease = world
    current = catalog.get("op-1")
    catalog.save(replace(current, cancel_requested_by=Actor("bob", "Bob"), no_return="switched"))
    lease.commit(lambda record: record)
    lease.check()
    catalog.save(replace(catalog.get("op-1"), no_return="", ending=OperationStatus.CANCELLED))
    lease.commit(lambda record: record)
    lease.check()


def test_another_owner_means_the_lease_is_lost(world):
    _, catalog, lease = world
    catalog.save(replace(catalog.get("op-1"), lease_owner="theirs"))
    with pytest.raises(LeaseLost):
        lease.commit(lambda record: record.with_step(0, message="mine?"))
    assert catalog.get("op-1").steps[0].message == ""
    with pytest.raises(LeaseLost):
        lease.check()


def test_a_release_ends_the_lease(world):
    _, catalog, lease = world
    released = lease.commit(lambda record: record, release=True)
    assert (released.lease_owner, released.lease_until) == (None, None)
    assert catalog.get("op-1").lease_owner is None


class Unreachable(OperationCatalog):
    """The operations table stops answering (a network partition)."""

    def save(self, operation):
        raise OSError("connection reset")


def test_a_worker_that_cannot_check_in_before_its_lease_ends_stops(world):
    clock, catalog, claimed_lease = world
    claimed = catalog.get("op-1")
    short = timedelta(milliseconds=80)  # renewed every 20 ms, in a real thread
    lease = OperationLease(claimed, Unreachable(claimed_lease.table), short, clock)
    with lease:
        clock.advance(LEASE.total_seconds() + 1)  # past lease_until: another worker may have taken over
        for _ in range(100):
            if lease.lost:
                break
            time.sleep(0.02)
    assert lease.lost
    with pytest.raises(LeaseLost):
        lease.check()
