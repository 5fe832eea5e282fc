from datetime import UTC, datetime

import pytest

from shared.domain.environments import (
    BACKUP_ELIGIBLE_STATES,
    DatabaseConnection,
    Environment,
    EnvironmentState,
    FileLocation,
)
from shared.errors import Conflict

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def environment(state: EnvironmentState) -> Environment:
    return Environment(
        id="env-a",
        namespace="ns",
        app_name="app",
        display_name="A",
        state=state,
        database=DatabaseConnection(host="h", database="d", user="u"),
        files=FileLocation(container="files", prefix="p/"),
        created_on=NOW,
        updated_on=NOW,
    )


@pytest.mark.parametrize("state", list(EnvironmentState))
def test_backup_eligibility_names_the_state(state):
    if state in BACKUP_ELIGIBLE_STATES:
        environment(state).ensure_can_back_up()
        return
    with pytest.raises(Conflict) as caught:
        environment(state).ensure_can_back_up()
    assert state.value in caught.value.detail
    assert caught.value.code == "environment_not_eligible"


def test_stop_and_start_move_between_running_and_stopped():
    running = environment(EnvironmentState.RUNNING)
    stopped = running.stopped(NOW)
    assert stopped.state is EnvironmentState.STOPPED
    assert stopped.started(NOW).state is EnvironmentState.RUNNING


def test_stop_and_start_are_idempotent():
    stopped = environment(EnvironmentState.STOPPED)
    assert stopped.stopped(NOW) is stopped
    running = environment(EnvironmentState.RUNNING)
    assert running.started(NOW) is running


@pytest.mark.parametrize(
    "state",
    [EnvironmentState.DEPLOYING, EnvironmentState.CREATING, EnvironmentState.STARTING, EnvironmentState.RESTORING],
)
def test_transitions_from_other_states_conflict(state):
    with pytest.raises(Conflict):
        environment(state).stopped(NOW)
    with pytest.raises(Conflict):
        environment(state).started(NOW)


def test_a_restoring_environment_says_so():
    with pytest.raises(Conflict) as caught:
        environment(EnvironmentState.RESTORING).started(NOW)
    assert caught.value.code == "restore_in_progress"


def test_blob_name_is_prefix_and_uuid():
    assert FileLocation(container="c", prefix="files/").blob_name("abc") == "files/abc"
