"""The restore drill's steps, on the one engine: prove that a backup restores, in a scratch database; each is
safe to run again. The checks, and what a drill never touches: README, "Verified backups"."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from shared.adapters.blobs import BlobStore
from shared.adapters.errors import BlobNotFound
from shared.adapters.postgres import SCRATCH_PREFIX, DatabaseError, Databases, ScratchDatabaseRefused
from shared.backups.layout import FileEntry, backup_folder, read_file_list, read_row_counts
from shared.catalog.activity import ActivityLog, new_entry_id
from shared.catalog.backups import BackupCatalog
from shared.catalog.environments import EnvironmentCatalog
from shared.clock import Clock
from shared.config import VERIFICATION_SERVERS
from shared.domain.access import Principal
from shared.domain.activity import Action, Outcome
from shared.domain.backups import Actor, Backup, BackupStatus
from shared.domain.environments import DatabaseConnection, Environment
from shared.domain.operations import Operation, OperationStatus
from shared.domain.verification import (
    ASSERTIONS,
    CHECK_NAMES,
    CHECKSUMS,
    FILE_REFERENCES,
    LOAD,
    ROW_COUNTS,
    Check,
    CheckStatus,
    LastDrill,
    Verification,
    VerificationStatus,
)
from shared.dumps.reader import DumpCorrupted, DumpReader
from shared.errors import Conflict
from shared.faults import Fault, crash_point
from shared.merges import SortedStream
from shared.operations.engine import OperationDefinition, OperationEngine, StepContext, StepDefinition, WaitLater

logger = logging.getLogger("appbackups.drills")

KIND = "verify"
# A drill of an environment as it was at an instant (the weekly proof of its recovery window): the instant
# (ISO 8601, UTC) among its parameters; its backup is the backup of that instant, recorded with the drill and
# made while step 1 waits for it (docs/decisions/0010, "A drill of a point in time").
POINT_IN_TIME = "pointInTime"
_SHOWN = 5  # problems named in a check's detail; the rest are counted


def scratch_database(operation_id: str) -> str:
    """The drill's scratch database, named from its operation, so that a resumed drill finds it again."""
    return SCRATCH_PREFIX + operation_id.replace("-", "")[:16]


def user_of(operation: Operation) -> str:
    """How a drill names itself in a backup's ``inUseBy``."""
    return f"verify {operation.id}"


class DrillFailed(Fault):
    """The drill ran, and a check failed."""


@dataclass
class DrillHooks:
    """Test seams: wrap the dump stream the load reads."""

    dump_stream: Callable[[Iterator[bytes]], Iterator[bytes]] | None = None


def _check(output: dict[str, Any], name: str) -> Check | None:
    data = output.get("checks", {}).get(name)
    return Check.from_dict(data) if data else None


def _problems(items: list[str], total: int) -> str:
    shown = "; ".join(items[:_SHOWN])
    return shown + (f"; and {total - _SHOWN} more" if total > _SHOWN else "")


class DrillSteps:
    def __init__(
        self,
        *,
        environments: EnvironmentCatalog,
        backup_catalog: BackupCatalog,
        activity: ActivityLog,
        backup_store: BlobStore,
        content_store: BlobStore,
        databases: Databases,
        clock: Clock,
        read_concurrency: int,
        verification_servers: Mapping[str, DatabaseConnection],
        engine: OperationEngine,
        past_poll: float = 10.0,
    ) -> None:
        self._engine = engine
        self._past_poll = past_poll
        self._environments = environments
        self._backup_catalog = backup_catalog
        self._activity = activity
        self._backup_store = backup_store
        self._content = content_store
        self._databases = databases
        self._clock = clock
        self._read_concurrency = read_concurrency
        self._servers = dict(verification_servers)
        self.hooks = DrillHooks()

    def definition(self) -> OperationDefinition:
        return OperationDefinition(
            kind=KIND,
            steps=(
                StepDefinition(
                    "check_objects",
                    "Read back every stored object of the backup and check it (to a point in time: once the backup "
                    "of that instant is made)",
                    self.check_objects,
                ),
                StepDefinition("load", "Load the dump into a scratch database", self.load),
                StepDefinition(
                    "check_database", "Check row counts, file references and assertions", self.check_database
                ),
                StepDefinition("finish", "Drop the scratch database and record the result", self.finish),
            ),
            undo=StepDefinition("undo", "Drop the scratch database and record the outcome", self.undo),
        )

    # -- what the steps share ------------------------------------------------------------------

    def _backup(self, operation: Operation) -> Backup:
        backup = self._backup_catalog.find(operation.environment_id, str(operation.backup_id))
        if backup is None or backup.status is not BackupStatus.FINISHED:
            raise Fault(f"Backup {operation.backup_id} is no longer available.")
        return backup

    def server_for(self, environment: Environment) -> tuple[DatabaseConnection, bool]:
        """Where the scratch database goes: the namespace's verification server, else the environment's own
        server (connecting as the environment does). True when it is a verification server."""
        server = self._servers.get(environment.namespace)
        return (server, True) if server is not None else (environment.database, False)

    def _scratch(self, operation: Operation) -> tuple[DatabaseConnection, str]:
        environment = self._environments.get(operation.environment_id)
        server, _ = self.server_for(environment)
        return server, scratch_database(operation.id)

    def _drop(self, operation: Operation) -> None:
        environment = self._environments.find(operation.environment_id)
        if environment is None:
            return
        server, _ = self.server_for(environment)
        self._databases.drop_scratch(server, scratch_database(operation.id))

    @staticmethod
    def _record_check(context: StepContext, name: str, status: CheckStatus, detail: str) -> None:
        checks = dict(context.output.get("checks", {}))
        checks[name] = Check(name, status, detail).to_dict()
        context.checkpoint(checks=checks)

    # -- 1 ---------------------------------------------------------------------------------------

    def check_objects(self, context: StepContext) -> None:
        """Step 1: read back every stored object of the backup whole and check it (the dump's SHA-256, each file
        document's MD5 and size). A drill of a point in time first waits for the backup of its instant."""
        self._backup_of_the_past(context)
        backup = self._backup(context.operation)
        folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
        problems: list[str] = []
        total_bytes = (backup.dump_size or 0) + (backup.files_size or 0)
        read = {"bytes": 0}

        def progress(size: int, detail: str) -> None:
            read["bytes"] += size
            context.report(bytes_done=read["bytes"], bytes_total=total_bytes, detail=detail)

        reader = DumpReader(
            self._backup_store,
            self._content,
            backup.namespace,
            folder,
            expected_sha256=backup.dump_sha256,
            expected_size=backup.dump_size,
        )
        try:
            for chunk in reader.chunks():  # each chunk, then the whole dump, checked as it is read
                progress(len(chunk), "reading the dump back")
        except DumpCorrupted as error:
            problems.append(str(error))
        count = bad = shown = 0
        total_files = backup.file_count or 0

        def verify(entry: FileEntry) -> str | None:
            digest = hashlib.md5(usedforsecurity=False)
            size = 0
            try:
                for chunk in self._content.read_chunks(entry.object):
                    digest.update(chunk)
                    size += len(chunk)
            except BlobNotFound:
                return f"the content object of file document {entry.uuid} is missing"
            if size != entry.size or digest.hexdigest() != entry.md5:
                return f"file document {entry.uuid} does not match its MD5 and size"
            return None

        with ThreadPoolExecutor(self._read_concurrency, thread_name_prefix="drill-read") as pool:
            pending: deque[tuple[FileEntry, Future[str | None]]] = deque()

            def settle() -> None:
                nonlocal count, bad, shown
                entry, future = pending.popleft()
                problem = future.result()
                count += 1
                if problem:
                    bad += 1
                    if len(problems) < _SHOWN:
                        problems.append(problem)
                        shown += 1
                progress(entry.size, f"file documents: {count} of {total_files} read back")
                context.report(done=count, total=total_files)

            for entry in read_file_list(self._backup_store, backup):
                pending.append((entry, pool.submit(verify, entry)))
                while len(pending) > 2 * self._read_concurrency:
                    settle()
            while pending:
                settle()
        if count != total_files:
            problems.append(f"the file list holds {count} file documents, not the {total_files} recorded")
        if problems:
            # every problem found: those shown, and the bad file documents not among them
            self._record_check(context, CHECKSUMS, CheckStatus.FAILED, _problems(problems, len(problems) + bad - shown))
        else:
            self._record_check(
                context,
                CHECKSUMS,
                CheckStatus.PASSED,
                f"The dump ({backup.dump_size} bytes) and {count} file documents read back whole and match "
                "their checksums.",
            )

    def _backup_of_the_past(self, context: StepContext) -> None:
        """A drill of a point in time: queue the backup of its instant on the step's first run (a second
        message to it is dropped, so a repeat does no harm), then wait until it is made (its end wakes the
        drill). One that failed or was cancelled fails the drill: the instant could not be proved."""
        operation = context.operation
        instant = operation.parameters.get(POINT_IN_TIME)
        if not instant:
            return
        past = self._backup_catalog.find(operation.environment_id, str(operation.backup_id))
        if past is None:
            raise Fault(f"The backup of {instant} is gone; nothing was drilled.", transient=False)
        if past.status is BackupStatus.PROCESSING:
            if past.operation_id and not context.output.get("pastQueued"):
                self._engine.wake(past.operation_id)
                context.checkpoint(pastQueued=True)
            child = self._engine.find(str(past.operation_id)) if past.operation_id else None
            progress = child.steps[0].progress if child is not None and child.steps else None
            context.report(
                done=progress.done if progress else 0,
                total=progress.total if progress else None,
                detail=f"making the backup of {instant} ({progress.detail if progress else 'queued'})",
            )
            raise WaitLater(self._past_poll, f"waiting for the backup of {instant}")
        if past.status is not BackupStatus.FINISHED:
            why = f"failed: {past.status_message}" if past.status is BackupStatus.FAILED else "was cancelled"
            raise Fault(f"The backup of {instant} {why}", transient=False)

    def _cancel_backup_of_the_past(self, operation: Operation) -> None:
        """Its own undo stops the temporary instance it may have started. A finished one is kept: it is a
        backup like any other (the drill only releases it)."""
        if not operation.parameters.get(POINT_IN_TIME):
            return
        past = self._backup_catalog.find(operation.environment_id, str(operation.backup_id))
        if past is None or past.status is not BackupStatus.PROCESSING or past.operation_id is None:
            return
        who = operation.cancel_requested_by or operation.created_by
        with contextlib.suppress(Conflict):  # it has just finished, or passed the point where it can be cancelled
            self._engine.cancel(past.operation_id, Actor(who.id, who.name))

    # -- 2 ---------------------------------------------------------------------------------------

    def load(self, context: StepContext) -> None:
        """Step 2: load the dump into the scratch database with the restore's own pipeline, on the environment's
        PostgreSQL major; timed, it is the measured restore time."""
        operation = context.operation
        backup = self._backup(operation)
        environment = self._environments.get(operation.environment_id)
        server, dedicated = self.server_for(environment)
        name = scratch_database(operation.id)
        context.checkpoint(scratchDatabase=name, server=f"{server.host}:{server.port}")
        if dedicated:
            theirs = self._databases.server_version(environment.database) // 10000
            ours = self._databases.server_version(server) // 10000
            if theirs != ours:
                self._record_check(
                    context,
                    LOAD,
                    CheckStatus.FAILED,
                    f"The verification server of namespace {environment.namespace} runs PostgreSQL {ours} and "
                    f"{environment.id}'s server {theirs}: a drill loads on the environment's major version "
                    f"({VERIFICATION_SERVERS}).",
                )
                return
        try:
            scratch = self._databases.create_scratch(server, name)
        except ScratchDatabaseRefused as error:
            raise Fault(
                f"{error} A drill needs a server where it may create a database: give namespace "
                f"{environment.namespace} a verification server in the app setting {VERIFICATION_SERVERS}, or "
                f"grant CREATEDB to {server.user}.",
                transient=False,
            ) from error
        folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
        total = backup.dump_size or 0

        def dump() -> Iterator[bytes]:
            def chunks() -> Iterator[bytes]:
                read = 0
                reader = DumpReader(self._backup_store, self._content, backup.namespace, folder)
                for chunk in reader.chunks():
                    read += len(chunk)
                    context.report(bytes_done=read, bytes_total=total, detail=f"loading the dump into {name}")
                    yield chunk
                    if read - len(chunk) < total // 2 <= read:
                        crash_point("drill.database.loading")

            stream = chunks()
            return self.hooks.dump_stream(stream) if self.hooks.dump_stream else stream

        started = time.monotonic()
        try:
            self._databases.restore(scratch, dump)
        except (DatabaseError, DumpCorrupted) as error:  # a damaged dump may fail its load as it is read
            if error.transient:
                raise
            self._record_check(context, LOAD, CheckStatus.FAILED, str(error))
            return
        seconds = round(time.monotonic() - started, 3)
        version = self._databases.server_version(scratch)
        where = "the verification server" if dedicated else "the environment's server"
        context.checkpoint(restoreSeconds=seconds)
        self._record_check(
            context,
            LOAD,
            CheckStatus.PASSED,
            f"The dump loaded with zero errors into {name} on PostgreSQL {version // 10000} "
            f"({where}) in {seconds:.1f} s.",
        )

    # -- 3 ---------------------------------------------------------------------------------------

    def check_database(self, context: StepContext) -> None:
        """Step 3: the row counts recorded with the backup, the file references both ways, and the environment's
        verification queries (read-only)."""
        operation = context.operation
        load = _check(operation.step("load").output, LOAD)
        if load is None or load.status is not CheckStatus.PASSED:
            for name in (ROW_COUNTS, FILE_REFERENCES, ASSERTIONS):
                self._record_check(context, name, CheckStatus.SKIPPED, "The dump did not load.")
            return
        backup = self._backup(operation)
        environment = self._environments.get(operation.environment_id)
        server, name = self._scratch(operation)
        scratch = replace(server, database=name)
        context.report(detail="counting rows")
        self._row_counts(context, backup, scratch)
        context.report(detail="comparing file references with the backup's file list")
        self._file_references(context, backup, environment, scratch)
        context.report(detail="running the verification queries")
        self._assertions(context, environment, scratch)

    def _row_counts(self, context: StepContext, backup: Backup, scratch: DatabaseConnection) -> None:
        recorded = read_row_counts(self._backup_store, backup)
        if recorded is None:
            self._record_check(
                context,
                ROW_COUNTS,
                CheckStatus.SKIPPED,
                "The backup has no recorded row counts (an uploaded backup, or one made before they were recorded).",
            )
            return
        loaded = self._databases.table_rows(scratch)
        differences = [
            f"{table}: {loaded.get(table, 'no table')} rows loaded, {count} recorded"
            for table, count in sorted(recorded.items())
            if loaded.get(table) != count
        ]
        differences += [f"{table}: not in the backup's counts" for table in sorted(set(loaded) - set(recorded))]
        if differences:
            self._record_check(context, ROW_COUNTS, CheckStatus.FAILED, _problems(differences, len(differences)))
        else:
            self._record_check(
                context,
                ROW_COUNTS,
                CheckStatus.PASSED,
                f"{len(recorded)} tables, {sum(recorded.values())} rows: the counts recorded with the backup.",
            )

    def _file_references(
        self, context: StepContext, backup: Backup, environment: Environment, scratch: DatabaseConnection
    ) -> None:
        """Both ways: every row the file-document query selects has its content in the file list, and the
        list holds nothing the database does not refer to (one merge of two sorted streams)."""
        without_content: list[str] = []
        not_referred: list[str] = []
        counts = {"without": 0, "extra": 0, "rows": 0}

        def unreferred(entry: FileEntry) -> None:
            counts["extra"] += 1
            if len(not_referred) < _SHOWN:
                not_referred.append(entry.uuid)

        listed = SortedStream(read_file_list(self._backup_store, backup), lambda entry: entry.uuid, on_skip=unreferred)
        with self._databases.snapshot(scratch) as view:
            for file_uuid in view.file_document_uuids(environment.file_document_query):
                counts["rows"] += 1
                if listed.seek(file_uuid) is None:
                    counts["without"] += 1
                    if len(without_content) < _SHOWN:
                        without_content.append(file_uuid)
        listed.drain()
        problems = []
        if counts["extra"]:
            problems.append(
                f"the file list holds {counts['extra']} file documents the database does not refer to: "
                + ", ".join(not_referred)
            )
        known = counts["without"] == backup.missing_files and set(without_content) <= set(backup.missing_file_uuids)
        if counts["without"] and not known:
            problems.append(
                f"{counts['without']} file-document rows have no content in the backup: " + ", ".join(without_content)
            )
        if problems:
            self._record_check(context, FILE_REFERENCES, CheckStatus.FAILED, "; ".join(problems))
        elif counts["without"]:
            self._record_check(
                context,
                FILE_REFERENCES,
                CheckStatus.WARNING,
                f"{counts['rows']} file-document rows; {counts['without']} had no content when the backup was made "
                "(its warning); the others are all in the file list, which holds nothing else.",
            )
        else:
            self._record_check(
                context,
                FILE_REFERENCES,
                CheckStatus.PASSED,
                f"{counts['rows']} file-document rows, each with its content in the file list, which holds nothing "
                "else.",
            )

    def _assertions(self, context: StepContext, environment: Environment, scratch: DatabaseConnection) -> None:
        queries = environment.verification_queries
        if not queries:
            self._record_check(context, ASSERTIONS, CheckStatus.SKIPPED, "The environment has no verificationQueries.")
            return
        failed = []
        for query in queries:
            try:
                if not self._databases.query_is_true(scratch, query.query):
                    failed.append(f"{query.name}: returned false")
            except DatabaseError as error:
                if error.transient:
                    raise
                failed.append(f"{query.name}: {error}")
        if failed:
            self._record_check(context, ASSERTIONS, CheckStatus.FAILED, _problems(failed, len(failed)))
        else:
            self._record_check(
                context,
                ASSERTIONS,
                CheckStatus.PASSED,
                f"{len(queries)} verificationQueries returned true: {', '.join(q.name for q in queries)}.",
            )

    # -- 4, and the undo -----------------------------------------------------------------------

    def _checks(self, operation: Operation) -> tuple[Check, ...]:
        found: dict[str, Check] = {}
        for step in operation.steps:
            for name in step.output.get("checks", {}):
                check = _check(step.output, name)
                if check is not None:
                    found[name] = check
        return tuple(found[name] for name in CHECK_NAMES if name in found)

    def finish(self, context: StepContext) -> None:
        """Step 4: drop the scratch database and keep the result on the backup; a failed check fails the drill."""
        operation = context.operation
        context.report(detail="dropping the scratch database")
        self._drop(operation)
        crash_point("drill.dropped")
        checks = self._checks(operation)
        failed = [check for check in checks if check.status is CheckStatus.FAILED]
        status = VerificationStatus.FAILED if failed else VerificationStatus.PASSED
        entry_id = context.remember("activityEntry", new_entry_id)
        self._conclude(operation, status, checks, entry_id)
        if failed:
            raise DrillFailed(
                "Verification failed: " + "; ".join(f"{check.name}: {check.detail}" for check in failed),
                transient=False,
            )

    def _conclude(
        self, operation: Operation, status: VerificationStatus, checks: tuple[Check, ...], entry_id: str
    ) -> None:
        """Keep the result on the backup (and the measured restore time on the environment), release the
        backup, log it. Safe to repeat."""
        now = self._clock()
        seconds = operation.output("load", "restoreSeconds")
        backup = self._backup_catalog.find(operation.environment_id, str(operation.backup_id))
        if backup is None:
            return
        result = Verification(
            status=status,
            operation_id=operation.id,
            started_on=operation.created_on,
            verified_on=now,
            restore_seconds=seconds,
            dump_size=backup.dump_size,
            database_size=backup.database_size,
            checks=checks,
        )

        def recorded(current: Backup) -> Backup:
            released = tuple(user for user in current.in_use_by if user != user_of(operation))
            mine = current.verification is not None and current.verification.operation_id == operation.id
            if mine and current.verification.status is not VerificationStatus.RUNNING:  # type: ignore[union-attr]
                return replace(current, in_use_by=released)  # recorded already
            return replace(current, verification=result, in_use_by=released)

        self._backup_catalog.update(backup.environment_id, backup.id, recorded)
        if seconds is not None:
            drill = LastDrill(
                backup.id, status, now, seconds, backup.dump_size, backup.database_size, backup.point_in_time
            )
            self._environments.update(
                operation.environment_id,
                lambda environment: (
                    environment
                    if environment.last_drill and environment.last_drill.verified_on > now
                    else replace(environment, last_drill=drill)
                ),
            )
        failed = [check for check in checks if check.status is CheckStatus.FAILED]
        actor = Principal(operation.created_by.id, operation.created_by.name)
        if failed:
            reason = "; ".join(f"{check.name}: {check.detail}" for check in failed)
            logger.error("backup %s of %s failed verification: %s", backup.id, backup.environment_id, reason)
            message = f"Restore drill of {_what(backup)} failed: {reason}"
            outcome = Outcome.FAILED
        else:
            logger.info("backup %s of %s verified in %ss", backup.id, backup.environment_id, seconds)
            message = (
                f"Restore drill of {_what(backup)} passed: the dump loaded in {seconds or 0:.1f} s; "
                + ", ".join(f"{check.name} {check.status.value.lower()}" for check in checks)
                + "."
            )
            outcome = Outcome.FINISHED
        self._activity.record(
            backup.environment_id,
            Action.VERIFY,
            outcome,
            actor,
            message,
            backup_id=backup.id,
            operation_id=operation.id,
            entry_id=entry_id,
        )

    def undo(self, context: StepContext) -> None:
        """Drop the scratch database (an error here is retried until it is gone), then record the outcome:
        a failed drill is a failed verification; a cancelled one puts back the backup's earlier result."""
        operation = context.operation
        context.report(detail="dropping the scratch database")
        self._drop(operation)
        crash_point("drill.undo")
        self._cancel_backup_of_the_past(operation)
        entry_id = context.remember("activityEntry", new_entry_id)
        backup = self._backup_catalog.find(operation.environment_id, str(operation.backup_id))
        if backup is None:
            return
        mine = backup.verification is not None and backup.verification.operation_id == operation.id
        if mine and backup.verification.status is not VerificationStatus.RUNNING:  # type: ignore[union-attr]
            # finish recorded the result (a failed check), then failed the drill: only the backup is left to release
            self._backup_catalog.release(backup.environment_id, backup.id, user_of(operation))
            return
        if operation.ending is OperationStatus.CANCELLED:
            previous = Verification.from_dict(operation.parameters.get("previousVerification"))
            self._backup_catalog.update(
                backup.environment_id,
                backup.id,
                lambda current: replace(
                    current,
                    verification=previous if mine or current.verification is None else current.verification,
                    in_use_by=tuple(user for user in current.in_use_by if user != user_of(operation)),
                ),
            )
            who = operation.cancel_requested_by
            actor = (
                Principal(who.id, who.name) if who else Principal(operation.created_by.id, operation.created_by.name)
            )
            self._activity.record(
                backup.environment_id,
                Action.VERIFY,
                Outcome.CANCELLED,
                actor,
                f"Restore drill of {_what(backup)} cancelled by {(who.name or who.id) if who else 'a user'}; "
                "its scratch database was dropped.",
                backup_id=backup.id,
                operation_id=operation.id,
                entry_id=entry_id,
            )
            return
        checks = self._checks(operation)
        step = operation.error_step or "the drill"
        checks = (*checks, Check(step, CheckStatus.FAILED, operation.error or "The drill failed."))
        self._conclude(operation, VerificationStatus.FAILED, checks, entry_id)


def _what(backup: Backup) -> str:
    """How the activity log names the drilled backup: a backup of the past with its instant."""
    if backup.point_in_time is None:
        return f"backup {backup.id}"
    return f"backup {backup.id} (the environment as of {backup.point_in_time:%Y-%m-%d %H:%M:%S} UTC)"
