"""Pre-flight of a restore: every check that could stop it, run before anything is stopped, backed up or
written. A dry run (``{"dryRun": true}``) answers with the plan; a real restore runs the same checks
first and refuses with the first failed one.

Checks, each ``pass``, ``warn`` or ``fail`` with a reason: permissions, the backup (Finished), the same
namespace, the target's state (and whether Stop would be needed), the model version, the dump's
PostgreSQL version against the target server's (a dump from a newer major, or one no installed
pg_restore reads, fails), file documents the backup had no content for, and the backup's own
verification. A dry run adds the sizes (dump, database at backup time, file documents to copy: count
and bytes not already in the target) and an estimated duration from the last drill of the backup's
environment.

A restore to a point in time runs the same checks where they apply, with ``point_in_time`` (the environment has
an archive, and the instant is inside its window) in place of the backup's: its backup is made by the restore."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from shared.adapters.blobs import BlobInfo, BlobStore
from shared.adapters.errors import StorageFault
from shared.adapters.pointintime import RecoveryWindow as Window
from shared.adapters.postgres import DatabaseError, Databases
from shared.backups.layout import backup_folder, read_file_list
from shared.backups.pointintime import PastReader, refuse
from shared.backups.service import BackupService
from shared.catalog.environments import EnvironmentCatalog
from shared.domain.access import Permission, Principal
from shared.domain.backups import Backup, BackupStatus
from shared.domain.environments import Environment, EnvironmentState
from shared.domain.restores import PlanSizes, PointInTimePlan, PreflightCheck, RestorePlan, Verdict, WindowGap
from shared.domain.verification import VerificationStatus
from shared.dumps.reader import DumpCorrupted, DumpReader
from shared.errors import AppError, Conflict, Forbidden, Unprocessable
from shared.faults import describe
from shared.merges import SortedStream

logger = logging.getLogger("appbackups.restores")

NEEDED = (Permission.MANAGE_BACKUPS, Permission.STOP_APPS)


def _major(version: int) -> int:
    return version // 10000 if version >= 100000 else version // 100


def _version_text(version: int) -> str:
    if version >= 100000:
        return f"{version // 10000}.{version % 10000}"
    return f"{version // 10000}.{version // 100 % 100}.{version % 100}"


class Preflight:
    def __init__(
        self,
        *,
        environments: EnvironmentCatalog,
        backups: BackupService,
        databases: Databases,
        backup_store: BlobStore,
        content_store: BlobStore,
        file_store: Callable[[Environment], BlobStore],
        past: PastReader | None = None,
    ) -> None:
        self._past = past or PastReader(None, environments, lambda: datetime.now().astimezone())
        self._content = content_store
        self._environments = environments
        self._backups = backups
        self._databases = databases
        self._backup_store = backup_store
        self._file_store = file_store

    def plan(
        self,
        source_environment_id: str,
        backup_id: str,
        target_environment_id: str,
        actor: Principal,
        *,
        sizes: bool,
        permissions: Callable[[str], frozenset[Permission]] | None = None,
    ) -> RestorePlan:
        """Every check (nothing is changed). With ``sizes``, also what the restore would copy, and its estimate.
        ``permissions`` gives the caller's permissions in a namespace, where the caller (the HTTP route)
        has them; the permissions check is then part of the plan."""
        backup = self._backups.get(source_environment_id, backup_id)
        target = self._environments.get(target_environment_id)
        checks = [self._permissions_check(backup, target, actor, permissions)] if permissions else []
        checks += [
            self._backup_check(backup),
            self._namespace_check(backup, target),
        ]
        state = self._state_check(target)
        checks += [state, self._model_check(backup, target)]
        if backup.status is BackupStatus.FINISHED:
            checks.append(self._postgres_check(backup, target))
        checks += [self._missing_files_check(backup), self._verification_check(backup)]
        warnings = tuple(check.reason for check in checks if check.status is Verdict.WARN)
        stop_needed = target.state is EnvironmentState.RUNNING
        plan_sizes = PlanSizes(backup.dump_size, backup.database_size, backup.file_count, backup.files_size)
        estimate, basis = None, ""
        if sizes and backup.status is BackupStatus.FINISHED and backup.namespace == target.namespace:
            plan_sizes = self._sizes(backup, target, plan_sizes)
            estimate, basis = self._estimate(backup)
        return RestorePlan(backup, target, tuple(checks), stop_needed, plan_sizes, estimate, basis, warnings)

    def plan_to_time(
        self,
        source_environment_id: str,
        instant: datetime,
        target_environment_id: str,
        actor: Principal,
        *,
        permissions: Callable[[str], frozenset[Permission]] | None = None,
    ) -> PointInTimePlan:
        """Every check of a restore to ``instant`` (nothing is changed): the window in place of the backup."""
        source = self._environments.get(source_environment_id)
        target = self._environments.get(target_environment_id)
        checks = [self._permissions_check(source, target, actor, permissions)] if permissions else []
        past, window = self._point_in_time_check(source, instant)
        checks += [past, self._namespace_check(source, target), self._state_check(target)]
        checks += [self._model_now_check(source, target), self._server_check(source, target)]
        warnings = tuple(check.reason for check in checks if check.status is Verdict.WARN)
        estimate, basis = self._estimate_to_time(source)
        return PointInTimePlan(
            source=source,
            instant=instant,
            target=target,
            checks=tuple(checks),
            stop_needed=target.state is EnvironmentState.RUNNING,
            earliest=window.earliest if window else None,
            latest=window.latest if window else None,
            gaps=tuple(WindowGap(gap.start, gap.end, gap.reason) for gap in window.gaps) if window else (),
            estimated_seconds=estimate,
            estimate_basis=basis,
            warnings=warnings,
        )

    # -- the checks -------------------------------------------------------------------------------------

    def _permissions_check(
        self,
        backup: Backup | Environment,
        target: Environment,
        actor: Principal,
        permissions: Callable[[str], frozenset[Permission]],
    ) -> PreflightCheck:
        missing = []
        for namespace in dict.fromkeys((backup.namespace, target.namespace)):
            have = permissions(namespace)
            missing += [f"{p.value} in {namespace}" for p in NEEDED if p not in have]
        if missing:
            reason = (
                f"A restore needs ManageAppsBackups and StopApps; {actor.name or actor.id} lacks {', '.join(missing)}."
            )
            return PreflightCheck("permissions", Verdict.FAIL, reason, Forbidden(reason, code="permission_missing"))
        return PreflightCheck(
            "permissions", Verdict.PASS, f"{actor.name or actor.id} has ManageAppsBackups and StopApps."
        )

    def _backup_check(self, backup: Backup) -> PreflightCheck:
        if backup.status is not BackupStatus.FINISHED:
            reason = f"Backup {backup.id} is {backup.status.value}; only a Finished backup can be restored."
            return PreflightCheck("backup", Verdict.FAIL, reason, Conflict(reason, code="backup_not_finished"))
        return PreflightCheck("backup", Verdict.PASS, f"Backup {backup.id} is Finished.")

    def _point_in_time_check(self, source: Environment, instant: datetime) -> tuple[PreflightCheck, Window | None]:
        try:
            window = self._past.window_of(source)
        except Conflict as refusal:  # no archive
            return PreflightCheck("point_in_time", Verdict.FAIL, refusal.detail, refusal), None
        try:
            refuse(source, window, instant)
        except Unprocessable as refusal:  # outside the window, or in a gap of it
            return PreflightCheck("point_in_time", Verdict.FAIL, refusal.detail, refusal), window
        span = " … ".join(moment.isoformat() for moment in (window.earliest, window.latest) if moment)
        reason = f"{instant.isoformat()} is inside the recovery window of {source.id} ({span})."
        return PreflightCheck("point_in_time", Verdict.PASS, reason), window

    def _model_now_check(self, source: Environment, target: Environment) -> PreflightCheck:
        if source.model_version != target.model_version:
            return PreflightCheck(
                "model_version",
                Verdict.WARN,
                f"{source.id} runs model version {source.model_version or 'unknown'} now and {target.id} runs "
                f"{target.model_version or 'an unknown version'}; the model at the instant is not recorded: deploy "
                f"the model {source.id} ran then to {target.id} after the restore.",
            )
        return PreflightCheck("model_version", Verdict.PASS, f"Both have model version {target.model_version or '-'}.")

    def _server_check(self, source: Environment, target: Environment) -> PreflightCheck:
        """The temporary instance runs the source server's major version: its dump loads only into the same
        or a newer one."""
        try:
            source_version = self._databases.server_version(source.database)
            target_version = self._databases.server_version(target.database)
        except (DatabaseError, AppError) as error:
            return PreflightCheck(
                "postgres_version",
                Verdict.WARN,
                f"A database server cannot be reached just now, so the versions are unknown: {error}",
            )
        if _major(source_version) > _major(target_version):
            reason = (
                f"{source.id}'s server runs PostgreSQL {_version_text(source_version)} and {target.id}'s "
                f"{_version_text(target_version)}: a dump does not load into an older major version."
            )
            refusal = Unprocessable(reason, code="postgres_version_unsupported")
            return PreflightCheck("postgres_version", Verdict.FAIL, reason, refusal)
        return PreflightCheck(
            "postgres_version",
            Verdict.PASS,
            f"{source.id}'s server runs PostgreSQL {_version_text(source_version)}; {target.id}'s "
            f"{_version_text(target_version)}.",
        )

    def _namespace_check(self, backup: Backup | Environment, target: Environment) -> PreflightCheck:
        if target.namespace != backup.namespace:
            what = f"Backup {backup.id}" if isinstance(backup, Backup) else f"Environment {backup.id}"
            reason = (
                f"{what} belongs to namespace {backup.namespace!r} and environment {target.id} to "
                f"{target.namespace!r}: backups are restored only within their own namespace."
            )
            return PreflightCheck("namespace", Verdict.FAIL, reason, Unprocessable(reason, code="cross_namespace"))
        return PreflightCheck("namespace", Verdict.PASS, f"Both are in namespace {target.namespace}.")

    def _state_check(self, target: Environment) -> PreflightCheck:
        if target.state is EnvironmentState.STOPPED:
            return PreflightCheck("target_state", Verdict.PASS, f"Environment {target.id} is Stopped.")
        if not target.registered:
            try:
                target.ensure_registered("restoring into it")
            except Conflict as refusal:
                return PreflightCheck("target_state", Verdict.FAIL, refusal.detail, refusal)
        if target.state is EnvironmentState.RESTORING:
            try:
                target.ensure_not_restoring("another restore")
            except Conflict as refusal:
                return PreflightCheck("target_state", Verdict.FAIL, refusal.detail, refusal)
        reason = f"Environment {target.id} is {target.state.value}: stop the environment first, then restore."
        if target.state is EnvironmentState.RUNNING:
            reason += " (Stop would be needed.)"
        refusal = Conflict(reason, code="environment_not_stopped", state=target.state.value)
        return PreflightCheck("target_state", Verdict.FAIL, reason, refusal)

    def _model_check(self, backup: Backup, target: Environment) -> PreflightCheck:
        if backup.model_version != target.model_version:
            return PreflightCheck(
                "model_version",
                Verdict.WARN,
                f"The backup was made with model version {backup.model_version or 'unknown'} and {target.id} "
                f"runs {target.model_version or 'an unknown version'}: deploy the same model "
                f"({backup.model_version or 'of the backup'}) to {target.id} after the restore.",
            )
        return PreflightCheck("model_version", Verdict.PASS, f"Both have model version {target.model_version or '-'}.")

    def _postgres_check(self, backup: Backup, target: Environment) -> PreflightCheck:
        try:
            target_version = self._databases.server_version(target.database)
        except (DatabaseError, AppError) as error:
            # Nothing is overwritten then: the pre-restore backup of the target needs the server first.
            return PreflightCheck(
                "postgres_version",
                Verdict.WARN,
                f"The database server of {target.id} cannot be reached just now, so its version is unknown: {error}",
            )
        folder = backup_folder(backup.namespace, backup.environment_id, backup.id)
        try:
            reader = DumpReader(self._backup_store, self._content, backup.namespace, folder)
            info = self._databases.dump_info(reader.chunks())
        except DatabaseError as error:
            reason = f"No installed pg_restore reads the backup's dump: {error}"
            return PreflightCheck(
                "postgres_version", Verdict.FAIL, reason, Unprocessable(reason, code="dump_unreadable")
            )
        except DumpCorrupted as error:
            reason = f"The backup's dump is damaged: {error}"
            return PreflightCheck(
                "postgres_version", Verdict.FAIL, reason, Unprocessable(reason, code="dump_unreadable")
            )
        except (StorageFault, OSError) as error:
            # Not a verdict on the dump: the restore checks it again as it loads it.
            return PreflightCheck(
                "postgres_version", Verdict.WARN, f"The backup's dump could not be read just now: {describe(error)}"
            )
        dumped = info.server_version or backup.server_version or 0
        if not dumped:
            return PreflightCheck(
                "postgres_version",
                Verdict.WARN,
                f"The dump does not say which PostgreSQL it came from; {target.id} runs "
                f"{_version_text(target_version)}.",
            )
        if _major(dumped) > _major(target_version):
            reason = (
                f"The dump was made from PostgreSQL {_version_text(dumped)} and {target.id}'s server runs "
                f"{_version_text(target_version)}: a dump does not load into an older major version."
            )
            refusal = Unprocessable(reason, code="postgres_version_unsupported")
            return PreflightCheck("postgres_version", Verdict.FAIL, reason, refusal)
        return PreflightCheck(
            "postgres_version",
            Verdict.PASS,
            f"Dumped from PostgreSQL {_version_text(dumped)}; {target.id}'s server runs "
            f"{_version_text(target_version)}.",
        )

    def _missing_files_check(self, backup: Backup) -> PreflightCheck:
        if backup.missing_files:
            return PreflightCheck(
                "missing_files",
                Verdict.WARN,
                f"{backup.missing_files} file documents had no content when the backup was made; the restore "
                "brings back what the backup has.",
            )
        return PreflightCheck("missing_files", Verdict.PASS, "The backup has the content of every file document.")

    def _verification_check(self, backup: Backup) -> PreflightCheck:
        verification = backup.verification
        if verification is None:
            return PreflightCheck("verification", Verdict.PASS, "No restore drill has tested this backup yet.")
        if verification.status is VerificationStatus.FAILED:
            failed = ", ".join(check.name for check in verification.failed_checks) or "the drill did not finish"
            when = f" on {verification.verified_on:%Y-%m-%d %H:%M} UTC" if verification.verified_on else ""
            return PreflightCheck(
                "verification", Verdict.WARN, f"The restore drill of this backup failed{when}: {failed}."
            )
        if verification.status is VerificationStatus.RUNNING:
            return PreflightCheck("verification", Verdict.PASS, "A restore drill of this backup is running.")
        return PreflightCheck(
            "verification",
            Verdict.PASS,
            f"Verified by a restore drill on {verification.verified_on:%Y-%m-%d %H:%M} UTC.",
        )

    # -- sizes and the estimate --------------------------------------------------------------------------

    def _sizes(self, backup: Backup, target: Environment, sizes: PlanSizes) -> PlanSizes:
        """What the restore would copy: the backup's file documents the target lacks with the same content."""
        store = self._file_store(target)
        prefix = target.files.prefix
        existing = SortedStream(store.list(prefix, page_size=5000), lambda blob: blob.name[len(prefix) :])
        count = size = 0
        for entry in read_file_list(self._backup_store, backup, missing_ok=True):
            blob: BlobInfo | None = existing.seek(entry.uuid)
            if blob is None or blob.size != entry.size or (blob.md5 or blob.metadata.get("md5")) != entry.md5:
                count += 1
                size += entry.size
        return PlanSizes(
            sizes.dump_size,
            sizes.database_size,
            sizes.file_count,
            sizes.files_size,
            files_to_copy=count,
            bytes_to_copy=size,
        )

    def _estimate_to_time(self, source: Environment) -> tuple[float | None, str]:
        drill = source.last_drill
        if drill is None or drill.restore_seconds is None:
            return None, "No restore drill of this environment has measured a restore yet."
        return round(drill.restore_seconds, 1), (
            f"The drill of backup {drill.backup_id} on {drill.verified_on:%Y-%m-%d %H:%M} UTC loaded its dump in "
            f"{drill.restore_seconds:.1f} s. Bringing a temporary instance to the instant, dumping it, copying file "
            "documents and the pre-restore backup come on top."
        )

    def _estimate(self, backup: Backup) -> tuple[float | None, str]:
        """From the last drill of the backup's environment: its load time, scaled by the dump sizes."""
        environment = self._environments.find(backup.environment_id)
        drill = environment.last_drill if environment else None
        if drill is None or drill.restore_seconds is None:
            return None, "No restore drill of this environment has measured a restore yet."
        seconds = drill.restore_seconds
        if drill.dump_size and backup.dump_size:
            seconds = seconds * backup.dump_size / drill.dump_size
        return round(seconds, 1), (
            f"The drill of backup {drill.backup_id} on {drill.verified_on:%Y-%m-%d %H:%M} UTC loaded "
            f"{drill.dump_size or 0} bytes of dump in {drill.restore_seconds:.1f} s; scaled to this dump's size. "
            "Copying file documents and the pre-restore backup come on top."
        )
