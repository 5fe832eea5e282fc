"""The in-memory databases must behave like PostgreSQL (with its client tools) for everything the core
relies on: a consistent snapshot with its file uuids in byte order and a dump of it, an atomic restore
that leaves the target as it was on any failure, and knowing afterwards whether it committed."""

import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

import psycopg
import pytest
from psycopg import sql

from shared.adapters.postgres import (
    ALL_FILE_DOCUMENTS_QUERY,
    DatabaseError,
    Databases,
    PostgresDatabases,
    RestoreCheckFailed,
    RestoreStopped,
    ScratchDatabaseRefused,
)
from shared.adapters.postgres.memory import FILE_DOCUMENTS, MemoryDatabases, Table
from shared.domain.environments import DatabaseConnection
from shared.errors import ServiceUnavailable
from shared.faults import Fault
from tests.support.appdata import ensure_role_without_createdb, table_contents
from tests.support.fingerprints import fingerprint

pytestmark = pytest.mark.integration

CUSTOMERS = 'public."sales$customer"'
SCHEMA = """
CREATE TABLE "system$filedocument" (id bigint PRIMARY KEY, "__uuid__" varchar(36), hascontents boolean,
                                    deleteafterdownload boolean);
CREATE TABLE "sales$customer" (id bigint PRIMARY KEY, name text);
"""
# A referenced one, one without contents, one to be deleted after download, and uuids whose byte order
# differs from a case-insensitive order.
FILES = [
    (1, "b0000000-0000-4000-8000-000000000001", True, False),
    (2, "A0000000-0000-4000-8000-000000000002", True, False),
    (3, "c0000000-0000-4000-8000-000000000003", False, False),
    (4, "d0000000-0000-4000-8000-000000000004", True, True),
    (5, "a0000000-0000-4000-8000-000000000005", True, False),
]


@dataclass
class World:
    databases: Databases
    create: Any  # (customers) -> DatabaseConnection
    contents: Any  # (DatabaseConnection) -> {table: sorted rows}
    write: Any  # (DatabaseConnection, customer id, name) -> None: the app writing meanwhile
    unprivileged: Any  # (DatabaseConnection) -> the same database, as a user that may not CREATE DATABASE
    fingerprint: Any  # (DatabaseConnection) -> what a backup sees of it: equal means it backs up and restores alike
    rows: Any  # (DatabaseConnection) -> exact rows per table, as a backup records them
    set_work_mem: Any  # (DatabaseConnection) -> ALTER DATABASE … SET work_mem = '8MB': what a dump does not carry


@pytest.fixture(params=["memory", "postgres"])
def world(request):
    if request.param == "memory":
        databases = MemoryDatabases()

        def create(customers):
            connection = DatabaseConnection(host="memory", port=5432, database=uuid.uuid4().hex, user="app")
            databases.create(
                connection,
                {
                    FILE_DOCUMENTS: Table(("id", "__uuid__", "hascontents", "deleteafterdownload"), list(FILES)),
                    CUSTOMERS: Table(("id", "name"), list(customers)),
                },
            )
            return connection

        def write(connection, customer, name):
            databases.database(connection).tables[CUSTOMERS].rows.append((customer, name))

        def unprivileged(connection):
            restricted = replace(connection, host="memory-restricted")
            databases.create(restricted)
            databases.refuse_create.add(restricted.host)
            return restricted

        def set_work_mem(connection):
            databases.database(connection).not_carried.append("database settings (work_mem=8MB)")

        contents = lambda c: databases.database(c).contents()  # noqa: E731
        yield World(databases, create, contents, write, unprivileged, contents, databases.table_rows, set_work_mem)
        return
    admin = request.getfixturevalue("postgres_admin_dsn")
    factory = request.getfixturevalue("database_factory")
    databases = PostgresDatabases(lambda name: None, connect_timeout=5, bin_dir=None)

    def dsn(connection):
        return psycopg.conninfo.make_conninfo(admin, dbname=connection.database)

    def create(customers):
        name = factory()
        connection = DatabaseConnection(host="127.0.0.1", port=5432, database=name, user="postgres")
        with psycopg.connect(dsn(connection), autocommit=True) as db, db.cursor() as cursor:
            cursor.execute(SCHEMA)
            cursor.executemany('INSERT INTO "system$filedocument" VALUES (%s, %s, %s, %s)', FILES)
            cursor.executemany('INSERT INTO "sales$customer" VALUES (%s, %s)', customers)
        return connection

    def write(connection, customer, name):
        with psycopg.connect(dsn(connection), autocommit=True) as db:
            db.execute('INSERT INTO "sales$customer" VALUES (%s, %s)', (customer, name))

    def unprivileged(connection):
        return replace(connection, user=ensure_role_without_createdb(admin))

    def set_work_mem(connection):
        with psycopg.connect(admin, autocommit=True) as db:
            db.execute(sql.SQL("ALTER DATABASE {} SET work_mem = '8MB'").format(sql.Identifier(connection.database)))

    yield World(
        databases,
        create,
        lambda c: table_contents(dsn(c)),
        write,
        unprivileged,
        lambda c: fingerprint(dsn(c)),
        databases.table_rows,
        set_work_mem,
    )


def dump_of(world, connection) -> bytes:
    with world.databases.snapshot(connection) as snapshot:
        dump = snapshot.dump()
        content = b"".join(dump.chunks(1024))
        dump.wait()
    return content


def test_a_snapshot_lists_the_referenced_file_documents_in_byte_order(world):
    connection = world.create([(1, "Ada")])
    with world.databases.snapshot(connection) as snapshot:
        uuids = list(snapshot.file_document_uuids())
        assert snapshot.count_file_documents() == len(uuids) == 3
        assert snapshot.database_size() > 0
        assert snapshot.server_version >= 100000
    assert uuids == ["A0000000-0000-4000-8000-000000000002", FILES[4][1], FILES[0][1]]  # byte order: "A" < "a" < "b"
    with world.databases.referenced_files(connection, None) as every:
        assert list(every) == sorted((row[1] for row in FILES), key=str.encode)  # whatever their flags


def test_the_dump_is_of_the_snapshot_not_of_what_was_written_after(world):
    source = world.create([(1, "Ada"), (2, "Grace")])
    before = world.contents(source)
    with world.databases.snapshot(source) as snapshot:
        world.write(source, 3, "written after the snapshot")
        dump = snapshot.dump()
        content = b"".join(dump.chunks(4096))
        dump.wait()
    target = world.create([])
    world.databases.restore(target, lambda: iter([content]))
    assert world.contents(target) == before
    assert world.databases.dump_schemas(iter([content])) == set()  # public exists already: the dump creates none


def test_a_restore_replaces_everything_and_says_it_committed(world):
    source = world.create([(1, "Ada")])
    target = world.create([(7, "only in the target")])
    transactions = []
    world.databases.restore(target, lambda: iter([dump_of(world, source)]), before_commit=transactions.append)
    assert world.contents(target) == world.contents(source)
    (transaction,) = transactions
    assert world.databases.transaction_committed(target, transaction) is True


def test_a_restored_database_backs_up_and_restores_like_its_source(world):
    source = world.create([(1, "Ada"), (2, "Grace")])
    restored = world.create([(7, "only here")])
    world.databases.restore(restored, lambda: iter([dump_of(world, source)]))
    again = world.create([])
    world.databases.restore(again, lambda: iter([dump_of(world, restored)]))  # the dump of a restored database
    assert world.fingerprint(again) == world.fingerprint(restored) == world.fingerprint(source)


@pytest.mark.parametrize(
    ("recorded", "named"),
    [
        ({CUSTOMERS: 3, FILE_DOCUMENTS: len(FILES)}, r'public\."sales\$customer": 2 rows loaded, 3 recorded'),
        ({CUSTOMERS: 2, "public.gone": 0}, r"public\.gone: no table rows loaded, 0 recorded"),
    ],
    ids=["fewer rows", "a table missing"],
)
def test_a_load_that_holds_less_than_its_backup_is_rolled_back_before_its_commit(world, recorded, named):
    source = world.create([(1, "Ada"), (2, "Grace")])
    target = world.create([(7, "only in the target")])
    before = world.contents(target)
    committing = []
    with pytest.raises(RestoreCheckFailed, match=named) as failed:
        world.databases.restore(
            target, lambda: iter([dump_of(world, source)]), row_counts=recorded, before_commit=committing.append
        )
    assert not failed.value.transient
    assert committing == []  # the caller's last checks never ran: nothing was about to commit
    assert world.contents(target) == before
    world.databases.restore(target, lambda: iter([dump_of(world, source)]), row_counts=world.rows(source))
    assert world.contents(target) == world.contents(source)


def test_a_restore_tells_its_tables_as_they_load_and_stops_when_asked(world):
    source = world.create([(1, "Ada")])
    target = world.create([(7, "only in the target")])
    before = world.contents(target)
    content = dump_of(world, source)
    loads: list[tuple[int, int]] = []
    world.databases.restore(target, lambda: iter([content]), on_load=lambda done, total: loads.append((done, total)))
    assert (loads[0], loads[-1]) == ((0, 2), (2, 2))
    assert loads == sorted(loads)
    world.databases.restore(target, lambda: iter([dump_of(world, world.create([(7, "only in the target")]))]))
    stop = threading.Event()

    def stopped_half_way():
        yield content[: len(content) // 2]
        stop.set()
        yield content[len(content) // 2 :]

    with pytest.raises(RestoreStopped) as stopped:
        world.databases.restore(target, stopped_half_way, stop=stop)
    assert stopped.value.transient
    assert world.contents(target) == before


def test_a_stop_ends_a_load_whose_dump_is_slow_to_read_at_once(postgres_admin_dsn, database_factory):
    databases = PostgresDatabases(lambda name: None, connect_timeout=5, bin_dir=None)
    source, target = (
        DatabaseConnection(host="127.0.0.1", port=5432, database=database_factory(), user="postgres") for _ in "st"
    )
    with psycopg.connect(psycopg.conninfo.make_conninfo(postgres_admin_dsn, dbname=source.database)) as db:
        db.execute("CREATE TABLE numbers AS SELECT generate_series(1, 10000) AS n")
    with databases.snapshot(source) as snapshot:
        dump = snapshot.dump()
        content = b"".join(dump.chunks(4096))
        dump.wait()
    stop, reading = threading.Event(), threading.Event()
    asked: list[float] = []

    def slow():  # half the dump, then a storage read that hangs while somebody asks to stop
        yield content[: len(content) // 2]
        stop.set()
        asked.append(time.monotonic())
        reading.wait(30)
        yield content[len(content) // 2 :]

    try:
        with pytest.raises(RestoreStopped):
            databases.restore(target, slow, stop=stop)
        assert time.monotonic() - asked[-1] < 2  # polled every 0.1 s; psql and pg_restore killed, the read left
    finally:
        reading.set()
    assert databases.table_rows(target) == {}


class Refused(Exception):
    pass


def test_a_restore_that_is_stopped_before_its_commit_leaves_the_target_as_it_was(world):
    source = world.create([(1, "Ada")])
    target = world.create([(7, "only in the target")])
    before = world.contents(target)
    seen = []

    def refuse(transaction):
        seen.append(transaction)
        raise Refused("a checksum did not match")

    with pytest.raises(Refused):
        world.databases.restore(target, lambda: iter([dump_of(world, source)]), before_commit=refuse)
    assert world.contents(target) == before
    assert world.databases.transaction_committed(target, seen[0]) is False


@pytest.mark.parametrize(
    ("breaking", "worth_a_retry"),
    [
        (OSError("the storage connection dropped half-way"), True),  # may go better next time
        (Fault("chunk 3 of the database dump does not match its SHA-256", transient=False), False),  # will not
    ],
    ids=["dropped", "damaged"],
)
def test_a_dump_that_breaks_off_leaves_the_target_as_it_was_and_says_whether_to_retry(
    world, breaking: Exception, worth_a_retry: bool
):
    source = world.create([(n, f"customer {n}") for n in range(1, 200)])
    target = world.create([(7, "only in the target")])
    before = world.contents(target)
    content = dump_of(world, source)

    def broken():
        yield content[: len(content) // 2]
        raise breaking

    with pytest.raises(Fault) as raised:
        world.databases.restore(target, broken)
    assert raised.value.transient is worth_a_retry
    assert world.contents(target) == before


def test_what_is_not_a_dump_is_refused(world):
    with pytest.raises(DatabaseError):
        world.databases.dump_schemas(iter([b"this is not a database dump at all"]))
    target = world.create([(7, "kept")])
    with pytest.raises(DatabaseError):
        world.databases.restore(target, lambda: iter([b"PGDMP but nothing a restore can read"]))
    assert world.contents(target) == {CUSTOMERS: [(7, "kept")], FILE_DOCUMENTS: sorted(FILES, key=repr)}


def test_an_unreachable_database_is_named_in_the_reason(world):
    connection = world.create([])
    world.databases.ping(connection)
    missing = replace(connection, database="appbackups_no_such_database")
    with pytest.raises(ServiceUnavailable) as unreachable:
        world.databases.ping(missing)
    assert "appbackups_no_such_database" in unreachable.value.detail
    with pytest.raises(DatabaseError):
        world.databases.referenced_files(missing, ALL_FILE_DOCUMENTS_QUERY).__enter__()
    with pytest.raises(DatabaseError):
        world.databases.snapshot(missing).__enter__()


def test_a_snapshot_counts_the_rows_of_every_table_as_of_itself(world):
    connection = world.create([(1, "Ada"), (2, "Grace")])
    with world.databases.snapshot(connection) as snapshot:
        world.write(connection, 3, "written after the snapshot")
        assert snapshot.table_rows() == {CUSTOMERS: 2, FILE_DOCUMENTS: len(FILES)}
    assert world.databases.table_rows(connection) == {CUSTOMERS: 3, FILE_DOCUMENTS: len(FILES)}


def test_a_snapshot_says_what_its_dump_does_not_carry(world):
    connection = world.create([(1, "Ada")])
    with world.databases.snapshot(connection) as snapshot:
        assert snapshot.not_carried() == []
    world.set_work_mem(connection)
    with world.databases.snapshot(connection) as snapshot:
        assert snapshot.not_carried() == ["database settings (work_mem=8MB)"]


def test_a_dump_says_which_server_it_came_from(world):
    connection = world.create([(1, "Ada")])
    version = world.databases.server_version(connection)
    assert version >= 100000
    info = world.databases.dump_info(iter([dump_of(world, connection)]))
    assert info.major == version // 10000
    assert info.server_version // 10000 == version // 10000
    assert info.archive_version
    with pytest.raises(DatabaseError):
        world.databases.dump_info(iter([b"this is not a database dump at all"]))


def test_a_scratch_database_is_made_next_to_a_database_loaded_and_dropped(world):
    source = world.create([(1, "Ada"), (2, "Grace")])
    name = f"appbackups_verify_{uuid.uuid4().hex[:12]}"
    try:
        scratch = world.databases.create_scratch(source, name)
        assert (scratch.database, scratch.host) == (name, source.host)
        assert world.databases.scratch_exists(source, name)
        assert world.databases.create_scratch(source, name) == scratch  # an earlier attempt's is kept
        world.databases.restore(scratch, lambda: iter([dump_of(world, source)]))
        assert world.databases.table_rows(scratch) == {CUSTOMERS: 2, FILE_DOCUMENTS: len(FILES)}
        assert world.databases.query_is_true(scratch, 'SELECT count(*) = 2 FROM "sales$customer"') is True
        assert world.databases.query_is_true(scratch, 'SELECT count(*) > 2 FROM "sales$customer"') is False
        with pytest.raises(DatabaseError, match="does not exist"):
            world.databases.query_is_true(scratch, "SELECT count(*) > 0 FROM no_such_table")
        with pytest.raises(DatabaseError):  # read-only: an assertion cannot change what it checks
            world.databases.query_is_true(scratch, 'WITH gone AS (DELETE FROM "sales$customer") SELECT true')
        assert world.databases.table_rows(scratch)[CUSTOMERS] == 2
    finally:
        world.databases.drop_scratch(source, name)
    assert not world.databases.scratch_exists(source, name)
    world.databases.drop_scratch(source, name)  # again: nothing to drop, no error
    assert world.contents(source)[CUSTOMERS] == [(1, "Ada"), (2, "Grace")]  # the source is untouched
    with pytest.raises(ValueError, match="not the name of a drill's scratch database"):
        world.databases.drop_scratch(source, source.database)  # never anything but a scratch database


def test_a_server_that_refuses_create_database_says_so(world):
    source = world.create([])
    with pytest.raises(ScratchDatabaseRefused, match="refused to create the scratch database"):
        world.databases.create_scratch(world.unprivileged(source), f"appbackups_verify_{uuid.uuid4().hex[:12]}")
