"""Random histories of what users do to the environments of one namespace — change data and schema, back up,
restore, go back, download and upload, drill, cancel, delete, prune — on real PostgreSQL and Azurite, through
the use cases; after every step, what a backup product owes: every Finished backup restores to exactly what
its environment was when it was taken. Used by tests/integration/test_histories.py and bench/histories.py."""

from __future__ import annotations

import ast
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
import requests
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test, invariant, precondition, rule

from shared.clock import utc_now
from shared.domain.access import Principal
from shared.domain.backups import BackupStatus, Tier
from shared.domain.downloads import DataType
from shared.domain.environments import EnvironmentState
from shared.domain.operations import OperationStatus
from shared.domain.verification import VerificationStatus
from tests.support.appdata import ScratchApp, create_scratch_app, md5_hex
from tests.support.fingerprints import Fingerprint, fingerprint
from tests.support.restoring import Harness, operation_catalog

ADA = Principal(id="ada", name="Ada")
APPS = 2  # environments the history acts on; one more, the scratch environment, is where backups are checked
PICK = st.integers(min_value=0, max_value=63)  # which backup or environment: an index, taken modulo the count


class MovableClock:
    """Real time, moved forward when a history lets days pass (so that backups expire)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utc_now() + self.offset


@dataclass(frozen=True)
class AppState:
    """An environment as a backup must carry it: its database's fingerprint and its file documents by MD5."""

    database: Fingerprint
    files: dict[str, str]  # uuid of each referenced file document -> MD5 of its stored content

    def differences(self, other: AppState) -> list[str]:
        found = self.database.differences(other.database)
        if self.files != other.files:
            missing = sorted(set(self.files) - set(other.files))
            extra = sorted(set(other.files) - set(self.files))
            changed = sorted(u for u in set(self.files) & set(other.files) if self.files[u] != other.files[u])
            found.append(f"file documents differ: missing {missing}, extra {extra}, other content {changed}")
        return found


@dataclass(frozen=True)
class Expected:
    environment_id: str
    tier: str
    state: AppState


@dataclass
class Tally:
    """What the histories tried: steps by rule, seconds by rule, backups checked by a restore."""

    steps: Counter[str] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)
    checked: int = 0
    histories: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "histories": self.histories,
            "stepsByRule": dict(sorted(self.steps.items())),
            "secondsByRule": {name: round(value, 2) for name, value in sorted(self.seconds.items())},
            "backupsChecked": self.checked,
        }


@dataclass
class World:
    """What a history runs on: Azurite (by its connection string), PostgreSQL, and a way to make databases."""

    connection_string: str
    admin_dsn: str
    create_database: Callable[[], str]
    drop_database: Callable[[str], None]
    tally: Tally = field(default_factory=Tally)
    checks_per_step: int = 1  # backups restored into the scratch environment after each step


def capture(app: ScratchApp) -> AppState:
    with psycopg.connect(app.dsn) as connection:
        referenced = [
            row[0]
            for row in connection.execute(
                'SELECT "__uuid__" FROM "system$filedocument" WHERE hascontents AND NOT deleteafterdownload'
            )
        ]
    files = {}
    for file_uuid in referenced:
        blob = app.container.get_blob_client(app.prefix + file_uuid)
        files[file_uuid] = md5_hex(blob.download_blob().readall()) if blob.exists() else "missing"
    return AppState(fingerprint(app.dsn), files)


def stored_names(app: ScratchApp) -> set[str]:
    return {blob.name.removeprefix(app.prefix) for blob in app.container.list_blobs(name_starts_with=app.prefix)}


def counted(function: Callable[..., None]) -> Callable[..., None]:
    """Counts and times each step of a rule in the world's tally."""

    def step(self: HistoryMachine, **arguments: Any) -> None:
        started = time.monotonic()
        try:
            function(self, **arguments)
        finally:
            self.world.tally.steps[function.__name__] += 1
            self.world.tally.seconds[function.__name__] += time.monotonic() - started

    step.__name__ = function.__name__
    step.__qualname__ = function.__qualname__
    return step


class HistoryMachine(RuleBasedStateMachine):
    """The model: for every Finished backup, its environment's state when it was taken; and each environment's
    state now. Checks: every restore leaves its target exactly its backup's state (a cancelled one, exactly as
    before); after every step no environment is Restoring, no backup in use and no operation of the namespace
    open; and a backup not restored since it was made, or since stored data was last deleted (a delete, a
    prune), is restored into the scratch environment and compared with the model — one per step (restoring
    every backup after every step would be too slow), all that are left at teardown, where every backup must
    also have passed a drill."""

    world: World  # set by machine_for

    def __init__(self) -> None:
        super().__init__()
        self.world.tally.histories += 1
        self.clock = MovableClock()
        self.harness = Harness(self.world.connection_string, clock=self.clock, APPBACKUPS_PRUNE_GRACE_HOURS="0")
        self.services = self.harness.services
        self.databases: list[str] = []
        self.apps: list[ScratchApp] = []
        namespace = f"hist-{uuid.uuid4().hex[:8]}"
        try:
            for number in range(APPS + 1):
                database = self.world.create_database()
                self.databases.append(database)
                app = create_scratch_app(
                    self.services, database, self.world.admin_dsn, namespace=namespace, documents=2, customers=3
                )
                with app.connect() as connection:
                    connection.execute('CREATE SEQUENCE "sales$order_number"')
                self.apps.append(app)
                if number == APPS:
                    self.services.environments.stop(app.environment_id, ADA)
        except BaseException:
            self.drop_databases()
            raise
        self.scratch = self.apps.pop()
        self.namespace = namespace
        self.next_id = 1000
        self.backups: dict[str, Expected] = {}  # Finished backups, in the order made
        self.checked_on: dict[str, int] = {}  # backup -> step it was last restored into the scratch environment
        self.drilled: set[str] = set()
        self.step_number = 0
        self.damaged_on = 0  # the last step that deleted stored data (a delete, a prune)
        self.states = {app.environment_id: capture(app) for app in self.apps}

    # -- helpers -------------------------------------------------------------------------------

    def app(self, pick: int) -> ScratchApp:
        return self.apps[pick % len(self.apps)]

    def backup_id(self, pick: int) -> str:
        ids = list(self.backups)
        return ids[pick % len(ids)]

    def app_of(self, environment_id: str) -> ScratchApp:
        return next(app for app in [*self.apps, self.scratch] if app.environment_id == environment_id)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def assert_unchanged(self, app: ScratchApp) -> None:
        differences = self.states[app.environment_id].differences(capture(app))
        assert not differences, f"{app.environment_id} changed without anyone changing it: {differences}"

    def adopt_pre_restore_backups(self, before: dict[str, AppState]) -> None:
        """A restore's pre-restore backup (Finished) holds its target as it was when the step began."""
        for app in self.apps:
            environment_id = app.environment_id
            for backup in self.services.backup_catalog.of_environment(environment_id):
                if backup.id in self.backups or backup.status is not BackupStatus.FINISHED:
                    continue
                assert backup.tier is Tier.PRE_RESTORE, f"backup {backup.id} ({backup.tier.value}) from nowhere"
                self.backups[backup.id] = Expected(environment_id, backup.tier.value, before[environment_id])

    def restore(self, backup_id: str, target: ScratchApp) -> str:
        """Restore as a user would: stop the target first. Returns the restore's id, Finished."""
        source = self.backups[backup_id]
        self.services.environments.stop(target.environment_id, ADA)
        operation = self.services.restores.request(source.environment_id, backup_id, target.environment_id, ADA)
        self.harness.drain()
        done = self.services.restores.get(operation.id)
        assert done.status is OperationStatus.FINISHED, f"restore of {backup_id} ({source.tier}): {done.error}"
        differences = source.state.differences(capture(target))
        assert not differences, f"restore of {backup_id} ({source.tier}) into {target.environment_id}: {differences}"
        leftovers = stored_names(target) - set(source.state.files)
        assert not leftovers, f"file documents the backup does not have are left in the target: {sorted(leftovers)}"
        self.checked_on[backup_id] = self.step_number  # as good as a check in the scratch environment
        return operation.id

    def restore_and_follow(self, backup_id: str, app: ScratchApp) -> None:
        """Restore; the model follows: the target is now the backup's state, its pre-restore backup its state before."""
        before = dict(self.states)
        self.restore(backup_id, app)
        self.states[app.environment_id] = self.backups[backup_id].state
        self.adopt_pre_restore_backups(before)

    def check_backup(self, backup_id: str, *, drill: bool) -> None:
        """Restore the backup into the scratch environment and compare; then forget the scratch's own
        pre-restore backup (it is not part of the history)."""
        restore_id = self.restore(backup_id, self.scratch)
        pre_restore = self.services.restores.get(restore_id).output("pre_restore_backup", "preRestoreSnapshotId")
        if pre_restore:
            self.services.backups.delete(self.scratch.environment_id, pre_restore, ADA)
        self.world.tally.checked += 1
        if drill and backup_id not in self.drilled:
            self.drill_backup(backup_id)

    def due(self) -> list[str]:
        """Backups not restored into the scratch environment since they were made or since stored data was
        last deleted, least recently checked first."""
        due = [b for b in self.backups if self.checked_on.get(b, -1) < self.damaged_on]
        return sorted(due, key=lambda b: self.checked_on.get(b, -1))

    def drill_backup(self, backup_id: str) -> None:
        environment_id = self.backups[backup_id].environment_id
        self.services.drills.request(environment_id, backup_id, ADA)
        self.harness.drain()
        verification = self.services.backups.get(environment_id, backup_id).verification
        assert verification is not None, f"drill of {backup_id}: no verification"
        checks = "; ".join(f"{check.name}: {check.status.value} {check.detail}" for check in verification.checks)
        assert verification.status is VerificationStatus.PASSED, (
            f"drill of {backup_id} ({self.backups[backup_id].tier}): {checks}"
        )
        self.drilled.add(backup_id)

    # -- rules: what users do ---------------------------------------------------------------------

    # Hypothesis orders rules by their number of arguments (then by name) and leans to the first that applies:
    # the simplest history is made of it. Without arguments, this one is first: with a back-up (the first rule
    # of two arguments) before it, the simplest history is a chain of restores of restored environments.
    @precondition(lambda self: self.backups)
    @rule()
    @counted
    def restore_the_newest_backup_into_the_other_environment(self) -> None:
        backup_id = list(self.backups)[-1]
        source = self.backups[backup_id].environment_id
        self.restore_and_follow(backup_id, next(app for app in self.apps if app.environment_id != source))

    @rule(
        pick=PICK,
        inserts=st.integers(0, 5),
        updates=st.integers(0, 3),
        deletes=st.integers(0, 2),
        orders=st.integers(0, 3),
        files_added=st.integers(0, 2),
        files_removed=st.integers(0, 2),
    )
    @counted
    def change_data(
        self, pick: int, inserts: int, updates: int, deletes: int, orders: int, files_added: int, files_removed: int
    ) -> None:
        app = self.app(pick)
        with app.connect() as connection:
            for _ in range(inserts):
                number = self.new_id()
                connection.execute(
                    'INSERT INTO "sales$customer" (id, name, email) VALUES (%s, %s, %s)',
                    (number, f"Customer {number}", f"c{number}@example.com"),
                )
            connection.execute(
                "UPDATE \"sales$customer\" SET name = name || '*' WHERE id IN "
                '(SELECT id FROM "sales$customer" ORDER BY id DESC LIMIT %s)',
                (updates,),
            )
            connection.execute(
                'DELETE FROM "sales$customer" c WHERE id IN (SELECT id FROM "sales$customer" d WHERE NOT EXISTS '
                '(SELECT 1 FROM "sales$order" o WHERE o.customer = d.id) ORDER BY id LIMIT %s)',
                (deletes,),
            )
            for _ in range(orders):
                connection.execute(
                    'INSERT INTO "sales$order" (id, customer, total, status) SELECT nextval(\'"sales$order_number"\'), '
                    "(SELECT min(id) FROM \"sales$customer\"), 12.50, 'New'"
                )
            for table in self.added_tables(connection):
                connection.execute(f'INSERT INTO "{table}" (note) VALUES (%s)', (f"note {self.new_id()}",))  # noqa: S608
            for _ in range(files_added):
                number, file_uuid, content = self.new_id(), str(uuid.uuid4()), uuid.uuid4().bytes * (50 + self.next_id)
                connection.execute(
                    'INSERT INTO "system$filedocument" (id, "__uuid__", name, size, hascontents) '
                    "VALUES (%s, %s, %s, %s, true)",
                    (number, file_uuid, f"file-{number}", len(content)),
                )
                app.container.upload_blob(app.prefix + file_uuid, content, overwrite=True)
            gone = connection.execute(
                'SELECT id, "__uuid__" FROM "system$filedocument" f WHERE NOT EXISTS '
                '(SELECT 1 FROM "sales$order" o WHERE o.invoice = f.id) ORDER BY id LIMIT %s',
                (files_removed,),
            ).fetchall()
            for number, file_uuid in gone:
                connection.execute('DELETE FROM "system$filedocument" WHERE id = %s', (number,))
                app.container.delete_blob(app.prefix + file_uuid)
        self.states[app.environment_id] = capture(app)

    @staticmethod
    def added_tables(connection: psycopg.Connection) -> list[str]:
        return [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'hist$%' ORDER BY 1"
            )
        ]

    @rule(pick=PICK, change=st.sampled_from(["add a column", "add a table", "drop a table", "add an index"]))
    @counted
    def deploy_a_schema_change(self, pick: int, change: str) -> None:
        app = self.app(pick)
        number = self.new_id()
        with app.connect() as connection:
            tables = self.added_tables(connection)
            if change == "add a column":
                connection.execute(f'ALTER TABLE "sales$customer" ADD COLUMN "note_{number}" text DEFAULT \'n\'')
            elif change == "add a table" or not tables:
                connection.execute(f'CREATE TABLE "hist${number}" (id bigserial PRIMARY KEY, note text)')
                connection.execute(f"INSERT INTO \"hist${number}\" (note) VALUES ('first')")  # noqa: S608
            elif change == "drop a table":
                connection.execute(f'DROP TABLE "{tables[0]}"')
            else:
                connection.execute(f'CREATE INDEX "idx_customer_{number}" ON "sales$customer" (lower(name), id)')
        self.states[app.environment_id] = capture(app)

    @rule(pick=PICK, comment=st.sampled_from(["", "before the release"]))
    @counted
    def back_up(self, pick: int, comment: str) -> None:
        app = self.app(pick)
        backup_id = self.harness.backup(app.environment_id, ADA, comment=comment)
        backup = self.services.backups.get(app.environment_id, backup_id)
        assert backup.status is BackupStatus.FINISHED, backup.status_message
        self.backups[backup_id] = Expected(app.environment_id, backup.tier.value, self.states[app.environment_id])
        self.assert_unchanged(app)

    @precondition(lambda self: self.backups)
    @rule(backup=PICK, into=PICK, start_afterwards=st.booleans())
    @counted
    def restore_a_backup(self, backup: int, into: int, start_afterwards: bool) -> None:
        app = self.app(into)
        self.restore_and_follow(self.backup_id(backup), app)
        if start_afterwards:
            self.services.environments.start(app.environment_id, ADA)

    @precondition(lambda self: any(expected.tier == Tier.PRE_RESTORE.value for expected in self.backups.values()))
    @rule(pick=PICK)
    @counted
    def go_back(self, pick: int) -> None:
        """Restore the latest pre-restore backup into its own environment: the way back."""
        pre_restores = [b for b, e in self.backups.items() if e.tier == Tier.PRE_RESTORE.value]
        environment_id = self.backups[pre_restores[pick % len(pre_restores)]].environment_id
        latest = max(
            (b for b in pre_restores if self.backups[b].environment_id == environment_id),
            key=lambda b: self.services.backups.get(environment_id, b).created_on,
        )
        app = self.app_of(environment_id)
        before = dict(self.states)
        self.restore(latest, app)
        self.states[environment_id] = self.backups[latest].state
        self.adopt_pre_restore_backups(before)

    @precondition(lambda self: self.backups)
    @rule(backup=PICK, into=PICK)
    @counted
    def download_and_upload_again(self, backup: int, into: int) -> None:
        backup_id, app = self.backup_id(backup), self.app(into)
        source = self.backups[backup_id]
        self.services.downloads.request(source.environment_id, backup_id, DataType.FILES_AND_DATABASE, ADA)
        self.harness.drain()
        ready = self.services.downloads.status(source.environment_id, backup_id, DataType.FILES_AND_DATABASE)
        assert ready.status == "Ready", ready.operation.error if ready.operation else ready
        archive = requests.get(ready.url, timeout=60)
        assert archive.status_code == 200, archive.text
        session, url = self.services.uploads.start(app.environment_id, ADA)
        put = requests.put(url, data=archive.content, headers={"x-ms-blob-type": "BlockBlob"}, timeout=60)
        assert put.status_code == 201, put.text
        backup_record, _ = self.services.uploads.complete(app.environment_id, session.id, ADA)
        self.harness.drain()
        uploaded = self.services.backups.get(app.environment_id, backup_record.id)
        assert (uploaded.status, uploaded.tier) == (BackupStatus.FINISHED, Tier.UPLOADED), uploaded.status_message
        self.backups[uploaded.id] = Expected(app.environment_id, Tier.UPLOADED.value, source.state)

    @precondition(lambda self: self.backups)
    @rule(backup=PICK)
    @counted
    def drill(self, backup: int) -> None:
        self.drill_backup(self.backup_id(backup))

    @precondition(lambda self: self.backups)
    @rule(backup=PICK, into=PICK, when=st.sampled_from(["before it starts", "just before its commit"]))
    @counted
    def cancel_a_restore(self, backup: int, into: int, when: str) -> None:
        backup_id, app = self.backup_id(backup), self.app(into)
        source = self.backups[backup_id]
        before = dict(self.states)
        self.services.environments.stop(app.environment_id, ADA)
        operation = self.services.restores.request(source.environment_id, backup_id, app.environment_id, ADA)
        if when == "before it starts":
            self.services.restores.cancel(operation.id, ADA)
        else:
            self.services.restore_steps.hooks.before_commit = lambda: self.services.restores.cancel(operation.id, ADA)
        try:
            self.harness.drain()
        finally:
            self.services.restore_steps.hooks.before_commit = None
        cancelled = self.services.restores.get(operation.id)
        assert cancelled.status is OperationStatus.CANCELLED, (cancelled.status, cancelled.error)
        differences = before[app.environment_id].differences(capture(app))
        assert not differences, f"a cancelled restore ({when}) changed {app.environment_id}: {differences}"
        extras = stored_names(app) - set(before[app.environment_id].files)
        assert not extras, f"a cancelled restore ({when}) left file documents behind: {sorted(extras)}"
        self.adopt_pre_restore_backups(before)

    @precondition(lambda self: self.backups)
    @rule(backup=PICK)
    @counted
    def delete_a_backup(self, backup: int) -> None:
        backup_id = self.backup_id(backup)
        self.services.backups.delete(self.backups.pop(backup_id).environment_id, backup_id, ADA)
        self.checked_on.pop(backup_id, None)
        self.damaged_on = self.step_number + 1  # the invariants after this step count it as the next

    @rule(days=st.sampled_from([0, 1, 15]), runs=st.sampled_from([1, 2]))
    @counted
    def prune(self, days: int, runs: int) -> None:
        """Let days pass (the services' clock), then prune the namespace (twice: the second run sweeps what the
        first marked, the grace period being 0): only expired backups go, and nothing a backup needs."""
        self.clock.offset += timedelta(days=days)
        for _ in range(runs):
            report = self.services.pruning.prune({self.namespace})
            now = self.clock()
            for backup in report.forgotten:
                assert backup.retained_until <= now, f"pruned backup {backup.id} had not expired"
                self.backups.pop(backup.id, None)
                self.checked_on.pop(backup.id, None)
        self.damaged_on = self.step_number + 1
        for backup_id, expected in self.backups.items():
            found = self.services.backup_catalog.find(expected.environment_id, backup_id)
            assert found is not None, f"backup {backup_id} ({expected.tier}) disappeared without being pruned"

    # -- what must hold after every step ------------------------------------------------------------

    @invariant()
    def the_backups_listed_are_the_history_s(self) -> None:
        """Each environment's list shows its Finished backups of the history, and no other."""
        for app in self.apps:
            listed, _ = self.services.backups.page(app.environment_id, limit=1000, continuation=None)
            finished = {backup.id for backup in listed if backup.status is BackupStatus.FINISHED}
            expected = {b for b, e in self.backups.items() if e.environment_id == app.environment_id}
            assert finished == expected, f"{app.environment_id} lists {finished}, the history made {expected}"

    @invariant()
    def nothing_is_left_locked_or_open(self) -> None:
        for app in [*self.apps, self.scratch]:
            environment = self.services.environments.get(app.environment_id)
            assert environment.state is not EnvironmentState.RESTORING, f"{app.environment_id} is left Restoring"
            assert environment.active_restore_id is None, f"{app.environment_id} is left locked"
        open_here = [
            f"{operation.kind} {operation.id} ({operation.status.value})"
            for operation in operation_catalog(self.services).open_operations()
            if operation.namespace == self.namespace
        ]
        assert not open_here, f"operations left open: {open_here}"
        for backup_id, expected in self.backups.items():
            backup = self.services.backup_catalog.find(expected.environment_id, backup_id)
            assert backup is not None, f"backup {backup_id} ({expected.tier}) is gone"
            assert backup.status is BackupStatus.FINISHED, f"backup {backup_id} is {backup.status.value}"
            assert not backup.in_use_by, f"backup {backup_id} is left in use by {backup.in_use_by}"

    @invariant()
    def backups_due_restore_to_their_state(self) -> None:
        self.step_number += 1
        for backup_id in self.due()[: self.world.checks_per_step]:
            self.check_backup(backup_id, drill=False)

    def after_each_step(self) -> None:
        """The invariants, for a history replayed by hand."""
        self.the_backups_listed_are_the_history_s()
        self.nothing_is_left_locked_or_open()
        self.backups_due_restore_to_their_state()

    def teardown(self) -> None:
        try:
            if self.step_number:  # the history ran (not a failure in setting it up)
                self.final_checks()
        finally:
            self.drop_databases()

    def final_checks(self) -> None:
        """Every remaining backup restores to its state (unless it did since stored data was last deleted) and
        has passed a drill."""
        for backup_id in self.due():
            self.check_backup(backup_id, drill=False)
        for backup_id in [b for b in self.backups if b not in self.drilled]:
            self.drill_backup(backup_id)

    def drop_databases(self) -> None:
        for database in self.databases:
            self.world.drop_database(database)


def machine_for(world: World) -> type[HistoryMachine]:
    return type("Histories", (HistoryMachine,), {"world": world})


def run_histories(
    world: World, *, examples: int, steps: int, seed_value: int | None = None, remember_failures: bool = True
) -> None:
    """Run the machine ``examples`` times of up to ``steps`` steps; raises with the shrunk history on a failure.
    Failures are remembered in Hypothesis' example database (and tried first next time) unless told not to."""
    chosen = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    if not remember_failures:
        chosen = settings(chosen, database=None)
    test = get_state_machine_test(machine_for(world), settings=chosen)
    if seed_value is not None:
        test = seed(seed_value)(test)
    test()


Step = tuple[str, dict[str, Any]]


def steps_of(notes: list[str]) -> list[Step]:
    """The steps of a history as Hypothesis prints it (``state.back_up(comment='', pick=0)``), for replay."""
    steps = []
    for note in notes:
        if not note.startswith("state.") or note.startswith("state.teardown("):
            continue
        call = ast.parse(note).body[0].value  # type: ignore[attr-defined]
        steps.append((call.func.attr, {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}))
    return steps


def replay(world: World, steps: list[Step]) -> None:
    """Run one history as written (a rule's name and its arguments per step), checking what the machine checks
    after every step and at the end: how a history Hypothesis shrank to becomes a test of its own."""
    machine = machine_for(world)()
    try:
        machine.after_each_step()
        for name, arguments in steps:
            getattr(machine, name)(**arguments)
            machine.after_each_step()
        machine.final_checks()
    finally:
        machine.drop_databases()
