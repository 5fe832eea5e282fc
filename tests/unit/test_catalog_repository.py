"""The one catalog repository on the in-memory table: ETag-guarded writes that turn a lost race into
``StaleRecord``, errors that name the record, reading again on a race, and newest-first reads only on a
table that declares it returns rows in key order. Every catalog's ``save`` keeps losing races the same way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from shared.adapters.tables import MemoryRowTable, Row, UnsortedTable
from shared.bootstrap import build_services
from shared.catalog.activity import ActivityCatalog
from shared.catalog.backups import BackupCatalog
from shared.catalog.codec import Codec, newest_first_key
from shared.catalog.environments import EnvironmentCatalog
from shared.catalog.events import DeliveryCatalog, WebhookCatalog
from shared.catalog.members import MemberCatalog
from shared.catalog.nights import NightCatalog
from shared.catalog.operations import OperationCatalog
from shared.catalog.repository import KeyOrderedRepository, Repository
from shared.catalog.uploads import UploadCatalog
from shared.config import Settings, StorageConnection
from shared.domain.backups import Actor, Backup, BackupStatus, Tier, new_backup_id
from shared.domain.environments import DatabaseConnection, Environment, EnvironmentState, FileLocation
from shared.domain.events import Delivery, Webhook
from shared.domain.operations import Operation, OperationStatus, Step
from shared.domain.schedules import ScheduledNight
from shared.domain.uploads import UploadSession
from shared.errors import AlreadyExists, Conflict, NotFound, StaleRecord
from tests.support.memory import SteppingClock
from tools.azurite import connection_string

NOW = datetime(2026, 10, 22, 2, 0, tzinfo=UTC)
ADA = Actor("ada", "Ada")


@dataclass(frozen=True)
class Note:
    group: str
    id: str
    text: str
    etag: str = ""


NOTES = Codec[Note](
    to_row=lambda note: Row(note.group, note.id, {"Text": note.text}, note.etag),
    from_row=lambda row: Note(row.partition_key, row.row_key, row["Text"], row.etag),
    name=lambda note: f"Note {note.id}",
)


class UnorderedTable(MemoryRowTable):
    """A store that makes no promise about the order of rows (as Cosmos DB's Table API)."""

    sorts_by_key = False


@pytest.fixture
def notes() -> Repository[Note]:
    return Repository(MemoryRowTable("notes"), NOTES, exists_code="note_exists")


def test_a_save_from_a_stale_read_is_a_stale_record_and_the_other_write_stays(notes: Repository[Note]) -> None:
    added = notes.insert(Note("g", "n1", "first"))
    assert added.etag
    mine, theirs = notes.load("g", "n1"), notes.load("g", "n1")
    assert mine == theirs == added
    saved = notes.save(replace(theirs, text="theirs"))
    assert saved.etag not in ("", added.etag)
    assert notes.load("g", "n1") == saved
    with pytest.raises(StaleRecord) as lost:
        notes.save(replace(mine, text="mine"))
    assert lost.value.code == "concurrent_update"
    assert lost.value.detail == "Note n1 was changed by another request; read it again and retry."
    assert notes.load("g", "n1").text == "theirs"
    assert notes.save(replace(saved, text="again")).text == "again"  # the current ETag still writes


def test_a_save_of_a_record_that_is_gone_is_a_stale_record(notes: Repository[Note]) -> None:
    added = notes.insert(Note("g", "n1", "first"))
    notes.remove("g", "n1")
    with pytest.raises(StaleRecord):
        notes.save(replace(added, text="late"))
    assert notes.load("g", "n1") is None


def test_inserting_what_is_there_is_already_exists_with_the_catalogs_code(notes: Repository[Note]) -> None:
    notes.insert(Note("g", "n1", "first"))
    with pytest.raises(AlreadyExists) as twice:
        notes.insert(Note("g", "n1", "second"))
    assert (twice.value.code, twice.value.detail) == ("note_exists", "Note n1 exists already.")
    assert notes.load("g", "n1").text == "first"


def test_a_delete_is_guarded_by_the_etag_and_a_remove_is_not(notes: Repository[Note]) -> None:
    added = notes.insert(Note("g", "n1", "first"))
    changed = notes.save(replace(added, text="changed"))
    with pytest.raises(StaleRecord):
        notes.delete(added)
    assert notes.load("g", "n1") == changed
    notes.delete(changed)
    assert notes.load("g", "n1") is None
    notes.delete(changed)  # what is gone is not an error
    notes.insert(Note("g", "n2", "x"))
    notes.remove("g", "n2")
    assert notes.load("g", "n2") is None


def test_update_applies_the_change_to_what_another_writer_wrote_first(notes: Repository[Note]) -> None:
    notes.insert(Note("g", "n1", "a"))
    calls: list[str] = []

    def append_b(note: Note) -> Note:
        calls.append(note.text)
        if len(calls) == 1:  # another writer is first, between this read and this write
            notes.save(replace(notes.load("g", "n1"), text=note.text + "+other"))
        return replace(note, text=note.text + "+b")

    updated = notes.update("g", "n1", append_b)
    assert calls == ["a", "a+other"]
    assert updated is not None
    assert updated.text == "a+other+b"
    assert notes.load("g", "n1") == updated
    assert notes.update("g", "missing", append_b) is None
    unchanged = notes.load("g", "n1")
    assert notes.update("g", "n1", lambda note: note) == unchanged
    assert notes.load("g", "n1").etag == unchanged.etag  # no change, no write


def test_update_gives_up_with_a_stale_record_when_it_loses_every_race(notes: Repository[Note]) -> None:
    notes.insert(Note("g", "n1", "0"))

    def always_second(note: Note) -> Note:
        notes.save(replace(notes.load("g", "n1"), text=str(int(note.text) + 1)))
        return replace(note, text="never")

    with pytest.raises(StaleRecord):
        notes.update("g", "n1", always_second, attempts=3)
    assert notes.load("g", "n1").text == "3"


def test_put_writes_whatever_is_there(notes: Repository[Note]) -> None:
    first = notes.put(Note("g", "n1", "first"))
    second = notes.put(Note("g", "n1", "second"))
    assert first.etag
    assert second.etag != first.etag
    assert notes.load("g", "n1") == second


def test_newest_first_reads_page_in_key_order_across_pages() -> None:
    table = MemoryRowTable("notes")
    notes = KeyOrderedRepository(table, NOTES)
    moments = [NOW + timedelta(minutes=minutes) for minutes in (5, 1, 4, 2, 3)]
    for moment in moments:
        kind = "even" if moment.minute % 2 == 0 else "odd"
        notes.insert(Note("g", newest_first_key(moment), f"{kind} {moment.minute}"))
    notes.insert(Note("other", newest_first_key(NOW + timedelta(hours=1)), "odd 60"))
    read, token = [], None
    while True:
        page, token = notes.page("g", limit=2, continuation=token)
        assert len(page) <= 2
        read.extend(note.text for note in page)
        if token is None:
            break
    assert read == ["odd 5", "even 4", "odd 3", "even 2", "odd 1"]
    assert [note.text for note in notes.all("g")] == read
    assert notes.first("g").text == "odd 5"
    table.insert(Row("g", "~", {"Text": "last", "Kind": "x"}))  # keys after every newest-first key
    assert notes.first("g", equals={"Kind": "x"}).text == "last"
    assert notes.first("g", equals={"Kind": "none"}) is None
    assert notes.first("nobody") is None


def test_newest_first_reads_refuse_a_table_that_does_not_sort_by_key() -> None:
    with pytest.raises(UnsortedTable) as refused:
        KeyOrderedRepository(UnorderedTable("cosmos"), NOTES)
    assert "'cosmos'" in str(refused.value)
    assert "key order" in str(refused.value)
    assert isinstance(Repository(UnorderedTable("cosmos"), NOTES), Repository)  # only ordered reads need the order


@pytest.mark.parametrize("catalog", [ActivityCatalog, BackupCatalog, DeliveryCatalog, NightCatalog])
def test_the_catalogs_that_list_newest_first_refuse_an_unsorted_table(catalog: Callable[[Any], object]) -> None:
    with pytest.raises(UnsortedTable):
        catalog(UnorderedTable())


@pytest.mark.parametrize(
    "catalog", [EnvironmentCatalog, MemberCatalog, OperationCatalog, UploadCatalog, WebhookCatalog]
)
def test_the_other_catalogs_take_an_unsorted_table(catalog: Callable[[Any], object]) -> None:
    catalog(UnorderedTable())


def test_services_wired_to_tables_that_do_not_sort_fail_when_they_are_built() -> None:
    settings = Settings(storage=StorageConnection(connection_string=connection_string(1, 1, 1)), development_mode=True)
    with pytest.raises(UnsortedTable):
        build_services(settings, tables=UnorderedTable, clock=SteppingClock())


def _backup(catalog: BackupCatalog) -> tuple[Backup, Callable[[Backup], Backup]]:
    backup = Backup(
        id=new_backup_id(NOW),
        environment_id="prod",
        namespace="ns",
        status=BackupStatus.PROCESSING,
        tier=Tier.MANUAL,
        created_on=NOW,
        expires_on=NOW + timedelta(days=30),
        created_by=ADA,
    )
    return catalog.add(backup), lambda backup: replace(backup, comment=backup.comment + "!")


def _environment(catalog: EnvironmentCatalog) -> tuple[Environment, Callable[[Environment], Environment]]:
    environment = Environment(
        id="prod",
        namespace="ns",
        app_name="app",
        display_name="Production",
        state=EnvironmentState.RUNNING,
        database=DatabaseConnection(host="h", database="d", user="u"),
        files=FileLocation(container="files"),
        created_on=NOW,
        updated_on=NOW,
    )
    return catalog.add(environment), lambda environment: replace(environment, display_name="Changed")


def _webhook(catalog: WebhookCatalog) -> tuple[Webhook, Callable[[Webhook], Webhook]]:
    webhook = Webhook(
        namespace="ns",
        id="w1",
        url="https://hooks.example.com/",
        events=("backup.finished",),
        secret_name="s",
        created_on=NOW,
        created_by=ADA,
        updated_on=NOW,
    )
    return catalog.add(webhook), lambda webhook: replace(webhook, description=webhook.description + "!")


def _delivery(catalog: DeliveryCatalog) -> tuple[Delivery, Callable[[Delivery], Delivery]]:
    delivery = Delivery(
        target="w1", event_id="e1", event_type="backup.finished", event_time=NOW, subject="s", body="{}"
    )
    return catalog.add(delivery), lambda delivery: replace(delivery, next_attempt_on=NOW + timedelta(minutes=1))


def _night(catalog: NightCatalog) -> tuple[ScheduledNight, Callable[[ScheduledNight], ScheduledNight]]:
    night = catalog.night("prod", date(2026, 10, 22), NOW)
    return night, lambda night: replace(night, tiers=(*night.tiers, Tier.NIGHTLY))


def _operation(catalog: OperationCatalog) -> tuple[Operation, Callable[[Operation], Operation]]:
    operation = Operation(
        id="op-1",
        kind="backup",
        status=OperationStatus.RUNNING,
        environment_id="prod",
        namespace="ns",
        created_on=NOW,
        updated_on=NOW,
        created_by=ADA,
        steps=(Step("first", "First"),),
    )
    return catalog.add(operation), lambda operation: replace(operation, warnings=(*operation.warnings, "w"))


def _upload(catalog: UploadCatalog) -> tuple[UploadSession, Callable[[UploadSession], UploadSession]]:
    session = UploadSession(
        id="u1",
        environment_id="prod",
        namespace="ns",
        blob_name="uploads/u1",
        created_on=NOW,
        expires_on=NOW + timedelta(hours=1),
        created_by=ADA,
    )
    return catalog.add(session), lambda session: replace(session, comment=session.comment + "!")


SAVES: dict[str, tuple[Callable[[MemoryRowTable], Any], Callable[[Any], tuple[Any, Callable[[Any], Any]]]]] = {
    "backups": (BackupCatalog, _backup),
    "environments": (EnvironmentCatalog, _environment),
    "webhooks": (WebhookCatalog, _webhook),
    "deliveries": (DeliveryCatalog, _delivery),
    "nights": (NightCatalog, _night),
    "operations": (OperationCatalog, _operation),
    "uploads": (UploadCatalog, _upload),
}


@pytest.mark.parametrize("kind", SAVES)
def test_every_catalog_save_turns_a_lost_race_into_a_stale_record(kind: str) -> None:
    make_catalog, make_record = SAVES[kind]
    catalog = make_catalog(MemoryRowTable(kind))
    record, change = make_record(catalog)
    assert record.etag
    winner = catalog.save(change(record))
    assert winner.etag not in ("", record.etag)
    with pytest.raises(StaleRecord) as lost:
        catalog.save(change(record))
    assert lost.value.code == "concurrent_update"
    assert "was changed by another request" in lost.value.detail
    assert catalog.save(change(winner)).etag != winner.etag


@pytest.mark.parametrize(
    ("kind", "code"),
    [("backups", "backup_exists"), ("operations", "operation_exists"), ("webhooks", "conflict")],
)
def test_adding_a_record_twice_is_already_exists_with_its_code(kind: str, code: str) -> None:
    make_catalog, make_record = SAVES[kind]
    catalog = make_catalog(MemoryRowTable(kind))
    record, _ = make_record(catalog)
    with pytest.raises(AlreadyExists) as twice:
        catalog.add(replace(record, etag=""))
    assert twice.value.code == code


def test_registering_an_environment_twice_is_a_concurrent_update_conflict() -> None:
    catalog = EnvironmentCatalog(MemoryRowTable())
    environment, _ = _environment(catalog)
    with pytest.raises(Conflict) as twice:
        catalog.add(replace(environment, etag=""))
    assert twice.value.code == "concurrent_update"
    assert "registered at the same time" in twice.value.detail


def test_a_backup_update_reads_again_and_a_missing_backup_is_not_found() -> None:
    catalog = BackupCatalog(MemoryRowTable())
    backup, _ = _backup(catalog)
    stale = catalog.get("prod", backup.id)
    catalog.save(replace(stale, comment="theirs"))
    in_use = catalog.mark_in_use("prod", backup.id, "restore r1")
    assert (in_use.in_use_by, in_use.comment) == (("restore r1",), "theirs")
    assert catalog.mark_in_use("prod", backup.id, "restore r1") == in_use  # no second write
    assert catalog.release("prod", backup.id, "restore r1").in_use_by == ()
    assert catalog.release("prod", "missing", "restore r1") is None
    with pytest.raises(NotFound) as missing:
        catalog.update("prod", "missing", lambda backup: backup)
    assert missing.value.code == "backup_not_found"
