"""Histories of operations (tests/support/histories.py) on real PostgreSQL and Azurite: the history of issue 24
written out, a fixed seed and a random one, short enough for make test. The long run: python -m bench.histories."""

from __future__ import annotations

import pytest

from tests.support.histories import World, replay, run_histories

pytestmark = pytest.mark.integration


@pytest.fixture
def world(storage_services, storage_connection_string, postgres_admin_dsn, database_factory) -> World:
    return World(storage_connection_string, postgres_admin_dsn, database_factory, lambda name: None)


def test_restore_then_back_up_the_restored_environment_then_restore_that_and_go_back(world: World) -> None:
    """Issue 24: after one restore into an environment, its later backups did not restore."""
    replay(
        world,
        [
            ("change_data", dict(pick=0, inserts=3, updates=1, deletes=1, orders=2, files_added=1, files_removed=1)),
            ("deploy_a_schema_change", dict(pick=0, change="add a table")),
            ("back_up", dict(pick=0, comment="")),
            ("restore_a_backup", dict(backup=0, into=1, start_afterwards=True)),
            ("back_up", dict(pick=1, comment="")),  # a backup of the restored environment
            ("restore_a_backup", dict(backup=2, into=1, start_afterwards=False)),  # [1] is the pre-restore backup
            ("go_back", dict(pick=0)),
            ("cancel_a_restore", dict(backup=0, into=0, when="just before its commit")),
        ],
    )


def test_a_fixed_seed(world: World) -> None:
    run_histories(world, examples=2, steps=6, seed_value=20261207)


def test_a_random_history(world: World) -> None:
    run_histories(world, examples=2, steps=6)
