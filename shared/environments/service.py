"""Use cases on environments: register, update, list, stop, start and deregister."""

from __future__ import annotations

from dataclasses import replace

from shared.catalog.activity import ActivityLog
from shared.catalog.backups import BackupCatalog
from shared.catalog.environments import EnvironmentCatalog
from shared.clock import Clock
from shared.domain.access import Principal
from shared.domain.activity import Action, Outcome
from shared.domain.environments import RESERVED_STATES, Environment, Registration
from shared.errors import Conflict, NotFound, PreconditionFailed, Unprocessable


class EnvironmentService:
    def __init__(self, catalog: EnvironmentCatalog, activity: ActivityLog, clock: Clock) -> None:
        self._catalog = catalog
        self._activity = activity
        self._clock = clock

    def list(self, *, deregistered: bool = False) -> list[Environment]:
        """The registered environments; with ``deregistered``, the deregistered ones (whose backups stay) too."""
        return self._catalog.all() if deregistered else self._catalog.registered()

    def get(self, environment_id: str) -> Environment:
        return self._catalog.get(environment_id)

    def put(
        self, environment_id: str, body: Registration, actor: Principal, if_match: str | None = None
    ) -> tuple[Environment, bool]:
        """Register the environment, or replace its registration. Returns it and whether it is new."""
        existing = self._catalog.find(environment_id)
        if existing is not None:
            existing.ensure_not_restoring("updating its registration or deploying to it")
        if body.state in RESERVED_STATES:
            setter = "a restore" if body.state.value == "Restoring" else "DELETE /api/environments/{env}"
            raise Unprocessable(
                f"The {body.state.value} state is set only by {setter}; register the environment as it is.",
                code="state_reserved",
            )
        tombstone = existing if existing is not None and not existing.registered else None
        if if_match is not None and (
            existing is None or tombstone is not None or (if_match != "*" and existing.etag != if_match)
        ):
            raise PreconditionFailed(
                f"Environment {environment_id!r} is not at the version named by If-Match; read it again.",
                code="etag_mismatch",
            )
        now = self._clock()
        fields = {
            "namespace": body.namespace,
            "app_name": body.app_name,
            "display_name": body.display_name,
            "state": body.state,
            "database": body.database,
            "files": body.files,
            "model_version": body.model_version,
            "deployment_package": body.deployment_package,
            "file_document_query": body.file_document_query,
            "missing_files": body.missing_files,
            "verification_queries": body.verification_queries,
            "scheduled_drills": body.scheduled_drills,
            "point_in_time": body.point_in_time,
            "updated_on": now,
        }
        if existing is None:
            environment = self._catalog.add(Environment(id=environment_id, created_on=now, **fields))  # type: ignore[arg-type]
            self._activity.record(environment_id, Action.REGISTER, Outcome.FINISHED, actor, "Environment registered.")
            return environment, True
        if tombstone is not None:
            return self._register_again(tombstone, fields, actor), True

        if existing.namespace != body.namespace:
            raise Conflict(
                f"Environment {environment_id!r} belongs to namespace {existing.namespace!r}; "
                "an environment cannot move to another namespace.",
                code="namespace_immutable",
            )
        updated = replace(existing, **fields)  # type: ignore[arg-type]
        if if_match not in (None, "*"):
            updated = replace(updated, etag=if_match)
        environment = self._catalog.save(updated)
        self._activity.record(
            environment_id, Action.UPDATE, Outcome.FINISHED, actor, _describe_update(existing, environment)
        )
        return environment, False

    def _register_again(self, tombstone: Environment, fields: dict[str, object], actor: Principal) -> Environment:
        """A deregistered id registered again: in the same namespace only, as its backups belong to it."""
        if tombstone.namespace != fields["namespace"]:
            raise Conflict(
                f"Environment {tombstone.id!r} was deregistered from namespace {tombstone.namespace!r}, whose backups "
                "it keeps; it can be registered again in that namespace only.",
                code="namespace_immutable",
            )
        again = replace(
            tombstone,
            **fields,  # type: ignore[arg-type]
            created_on=fields["updated_on"],
            active_restore_id=None,
            deregistered_on=None,
            deregistered_by=None,
        )
        environment = self._catalog.save(again)
        self._activity.record(
            tombstone.id,
            Action.REGISTER,
            Outcome.FINISHED,
            actor,
            f"Environment registered again (deregistered on {tombstone.deregistered_on:%Y-%m-%d %H:%M} UTC).",
        )
        return environment

    def deregister(self, environment_id: str, actor: Principal, backup_catalog: BackupCatalog) -> Environment:
        """Remove the registration of an environment whose app is gone. Refused (409) while work runs on it:
        a restore into it, a backup being made, a restore or download relying on one of its backups. The
        row stays as a tombstone (state Deregistered) holding the namespace, so that the backups, which stay
        until they expire, keep their permissions; nothing schedules, checks or backs it up any more."""
        environment = self._catalog.get(environment_id)
        if not environment.registered:
            raise NotFound(
                f"Environment {environment_id!r} is not registered: it was deregistered on "
                f"{environment.deregistered_on:%Y-%m-%d %H:%M} UTC.",
                code="environment_deregistered",
            )
        environment.ensure_not_restoring("deregistering it")
        work = backup_catalog.work_on(environment_id)
        if work:
            raise Conflict(
                f"Environment {environment_id} has work running ({'; '.join(work)}); deregister it when that has "
                "ended.",
                code="environment_busy",
                work=work,
            )
        tombstone = self._catalog.save(environment.deregistered(self._clock(), actor.name or actor.id))
        kept = sum(1 for _ in backup_catalog.of_environment(environment_id))
        self._activity.record(
            environment_id,
            Action.DEREGISTER,
            Outcome.FINISHED,
            actor,
            f"Environment deregistered; its {kept} backup{'s' if kept != 1 else ''} stay until they expire.",
        )
        return tombstone

    def stop(self, environment_id: str, actor: Principal) -> Environment:
        environment = self._catalog.get(environment_id)
        stopped = environment.stopped(self._clock())
        if stopped is environment:
            return environment
        saved = self._catalog.save(stopped)  # logged at the time it was saved: two changes log in their order
        self._activity.record(
            environment_id, Action.STOP, Outcome.FINISHED, actor, "Environment stopped.", occurred_on=saved.updated_on
        )
        return saved

    def start(self, environment_id: str, actor: Principal) -> Environment:
        environment = self._catalog.get(environment_id)
        started = environment.started(self._clock())
        if started is environment:
            return environment
        saved = self._catalog.save(started)
        self._activity.record(
            environment_id, Action.START, Outcome.FINISHED, actor, "Environment started.", occurred_on=saved.updated_on
        )
        return saved


def _describe_update(before: Environment, after: Environment) -> str:
    changes = []
    if before.state != after.state:
        changes.append(f"state {before.state.value} → {after.state.value}")
    if before.deployment_package != after.deployment_package:
        changes.append(f"deployment package {before.deployment_package or '-'} → {after.deployment_package or '-'}")
    if before.model_version != after.model_version:
        changes.append(f"model version {before.model_version or '-'} → {after.model_version or '-'}")
    return "Registration updated" + (": " + ", ".join(changes) if changes else "") + "."
