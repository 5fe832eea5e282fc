"""A worker's lease on an operation, on the in-memory table: another writer's change (a cancel) is merged
while the lease is still the worker's; another owner, or a lease that ran out unrenewed, means lost. Its
check-ins (one each progress interval) write published progress, renew when due, and otherwise read the
row, so that a cancel sets the step's ``stopping`` event within one interval: one request per check-in."""

import time
from dataclasses import replace
from datetime import timedelta

import pytest

from shared.adapters.tables import MemoryRowTable
from shared.catalog.operations import OperationCatalog
from shared.domain.backups import Actor
from shared.domain.operations import Operation, OperationStatus, Step
from shared.operations.lease import CancelRequested, LeaseLost, OperationLease
from tests.support.memory import ManualClock

LEASE = timedelta(seconds=40)


class Counting(OperationCatalog):
    """The operations table, counting the lease's requests."""

    def __init__(self, table):
        super().__init__(table)
        self.writes = 0
        self.reads = 0

    def save(self, operation):
        self.writes += 1
        return super().save(operation)

    def find(self, operation_id):
        self.reads += 1
        return super().find(operation_id)


@pytest.fixture
def world():
    clock = ManualClock()
    table = MemoryRowTable()
    catalog = Counting(table)
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
    assert not lease.cancel_requested
    saved = lease.commit(lambda record: record.with_step(0, message="still mine"))
    assert saved.lease_owner == "mine"
    assert saved.cancel_requested_by == Actor("bob", "Bob")
    assert saved.steps[0].message == "still mine"
    with pytest.raises(CancelRequested):
        lease.check()


@pytest.mark.parametrize("changes", [{"no_return": "switched"}, {"ending": OperationStatus.CANCELLED}])
def test_a_cancel_is_not_a_reason_to_stop_an_undo_or_past_the_point_of_no_return(world, changes):
    _, catalog, lease = world
    catalog.save(replace(catalog.get("op-1"), cancel_requested_by=Actor("bob", "Bob"), **changes))
    saved = lease.commit(lambda record: record.with_step(0, message="going on"))
    assert saved.cancel_requested_by == Actor("bob", "Bob"), "the cancel was merged: the worker has seen it"
    assert (saved.lease_owner, saved.steps[0].message) == ("mine", "going on")
    assert not lease.cancel_requested
    assert not lease.step_stopping().is_set()
    lease.check()  # no CancelRequested: the step carries on
    assert catalog.get("op-1").steps[0].message == "going on"


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


INTERVAL = timedelta(seconds=2)


@pytest.fixture
def checking(world):
    """A lease whose check-ins the test makes, on the manual clock, every progress interval."""
    clock, catalog, _ = world
    lease = OperationLease(catalog.get("op-1"), catalog, LEASE, clock, progress_interval=INTERVAL)
    catalog.writes = catalog.reads = 0
    return clock, catalog, lease


def _cancel(catalog, **changes):
    catalog.save(replace(catalog.get("op-1"), cancel_requested_by=Actor("bob", "Bob"), **changes))
    catalog.writes = catalog.reads = 0


def test_the_background_thread_wakes_every_progress_interval_or_quarter_lease_if_shorter(world):
    clock, catalog, _ = world
    record = catalog.get("op-1")
    assert OperationLease(record, catalog, LEASE, clock, progress_interval=INTERVAL).wake == INTERVAL
    assert OperationLease(record, catalog, LEASE, clock, progress_interval=LEASE).wake == LEASE / 4


def test_published_progress_is_written_at_the_next_check_in_once(checking):
    clock, catalog, lease = checking
    for done in range(1, 6):  # a step reporting much more often than the interval
        lease.publish(lambda record, done=done: record.with_step(0, message=f"{done} done"))
    clock.advance(INTERVAL.total_seconds())
    lease.check_in()
    assert catalog.get("op-1").steps[0].message == "5 done"
    assert (catalog.writes, catalog.reads) == (1, 1)  # the check-in's write; the test's own read
    assert catalog.get("op-1").heartbeat_on == clock.now


def test_without_progress_only_renewals_write_and_the_lease_never_runs_short(checking):
    clock, catalog, lease = checking
    wakes = int(LEASE / INTERVAL) * 3
    for _ in range(wakes):
        clock.advance(INTERVAL.total_seconds())
        lease.check_in()
        # Renewed before its next wake would find it less than three quarters of the lease from running out.
        assert lease.record.lease_until - clock.now > LEASE * 3 / 4 - INTERVAL
    renewals = catalog.writes
    assert renewals == (wakes * INTERVAL) // (LEASE / 4 - INTERVAL)  # each up to one wake early
    assert renewals + catalog.reads == wakes  # one request per check-in: a renewal or a read


def test_a_cancel_sets_stopping_at_the_next_check_in_by_one_read(checking):
    clock, catalog, lease = checking
    stopping = lease.step_stopping()
    clock.advance(INTERVAL.total_seconds())
    lease.check_in()
    assert not stopping.is_set()
    _cancel(catalog)
    clock.advance(INTERVAL.total_seconds())
    lease.check_in()
    assert stopping.is_set()
    assert (catalog.writes, catalog.reads) == (0, 1)
    with pytest.raises(CancelRequested):
        lease.check()
    assert lease.step_stopping().is_set()  # a step that starts later learns it at once
    for _ in range(5):
        clock.advance(INTERVAL.total_seconds())
        lease.check_in()
    assert catalog.reads == 1  # known: no more reads until the renewal is due


def test_a_cancel_is_noticed_by_the_progress_write_that_meets_it(checking):
    clock, catalog, lease = checking
    stopping = lease.step_stopping()
    _cancel(catalog)
    lease.publish(lambda record: record.with_step(0, message="loading"))
    clock.advance(INTERVAL.total_seconds())
    lease.check_in()
    assert stopping.is_set()
    saved = catalog.get("op-1")
    assert (saved.steps[0].message, saved.cancel_requested_by) == ("loading", Actor("bob", "Bob"))


@pytest.mark.parametrize("changes", [{"no_return": "switched"}, {"ending": OperationStatus.CANCELLED}])
def test_a_cancel_past_the_point_of_no_return_or_during_the_undo_does_not_stop_the_step(checking, changes):
    clock, catalog, lease = checking
    _cancel(catalog, **changes)
    stopping = lease.step_stopping()
    for _ in range(5):
        clock.advance(INTERVAL.total_seconds())
        lease.check_in()
    assert not stopping.is_set()
    assert catalog.reads == 1  # then it knows a read cannot tell it to stop


def test_another_owner_found_by_a_read_sets_stopping_and_the_lease_is_lost(checking):
    clock, catalog, lease = checking
    stopping = lease.step_stopping()
    catalog.save(replace(catalog.get("op-1"), lease_owner="theirs"))
    clock.advance(INTERVAL.total_seconds())
    with pytest.raises(LeaseLost):
        lease.check_in()
    assert stopping.is_set()
    assert lease.lost


def test_after_the_release_a_check_in_writes_nothing(checking):
    clock, catalog, lease = checking
    lease.commit(lambda record: record, release=True)
    catalog.writes = catalog.reads = 0
    lease.publish(lambda record: record.with_step(0, message="late"))
    clock.advance(LEASE.total_seconds())
    lease.check_in()
    assert (catalog.writes, catalog.reads) == (0, 0)
    assert catalog.get("op-1").lease_owner is None


def test_the_thread_sets_stopping_within_its_interval_of_a_cancel(world):
    """The same, with the lease's own thread and a short interval: ``stopping`` is set within one wake."""
    clock, catalog, _ = world
    interval = timedelta(milliseconds=100)
    lease = OperationLease(catalog.get("op-1"), catalog, LEASE, clock, progress_interval=interval)
    stopping = lease.step_stopping()
    with lease:
        lease.publish(lambda record: record.with_step(0, message="loading"))
        time.sleep(interval.total_seconds() * 1.5)
        assert catalog.get("op-1").steps[0].message == "loading"
        _cancel(catalog)
        assert stopping.wait(interval.total_seconds() + 1.0)  # one wake, and scheduling slack
