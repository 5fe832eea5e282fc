"""Shapes of the nights view: per environment, where its scheduled backup of one night stands."""

from __future__ import annotations

from datetime import date

from pydantic import Field

from shared.contracts.common import ApiModel, BackupIdOrNone
from shared.domain.nights import EnvironmentNight, Night, NightState


class NightCountsView(ApiModel):
    not_due: int
    waiting: int
    running: int
    done: int
    failed: int
    total: int


class EnvironmentNightView(ApiModel):
    environment_id: str
    namespace: str
    display_name: str
    state: NightState = Field(
        description="notDue: no scheduled backup was due (or the environment could not be backed up); waiting: "
        "for its start in the night's spread or a slot on its database server; running; done; failed."
    )
    backup_id: BackupIdOrNone = None
    detail: str = Field("", description="Why not due, what it waits for, its progress, or why it failed.")

    @classmethod
    def of(cls, entry: EnvironmentNight) -> EnvironmentNightView:
        environment = entry.environment
        return cls(
            environment_id=environment.id,
            namespace=environment.namespace,
            display_name=environment.display_name,
            state=entry.state,
            backup_id=entry.backup_id,
            detail=entry.detail,
        )


class NightView(ApiModel):
    night: date
    counts: NightCountsView
    environments: list[EnvironmentNightView]

    @classmethod
    def of(cls, night: Night) -> NightView:
        counts = night.counts
        return cls(
            night=night.night,
            counts=NightCountsView(
                not_due=counts[NightState.NOT_DUE],
                waiting=counts[NightState.WAITING],
                running=counts[NightState.RUNNING],
                done=counts[NightState.DONE],
                failed=counts[NightState.FAILED],
                total=len(night.environments),
            ),
            environments=[EnvironmentNightView.of(entry) for entry in night.environments],
        )
