"""Histories of operations (tests/support/histories.py) on real PostgreSQL and Azurite: a fixed seed and random
ones, short enough for make test (issue 24's chain through the development host: tests/e2e/test_restore_chains.py).
The long run: python -m bench.histories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.histories import run
from tests.support.histories import World, replay, run_histories

pytestmark = pytest.mark.integration


@pytest.fixture
def world(storage_services, storage_connection_string, postgres_admin_dsn, database_factory) -> World:
    return World(storage_connection_string, postgres_admin_dsn, database_factory, lambda name: None)


def test_a_backup_restores_exactly_without_a_comment_on_public_added(world: World) -> None:
    """Found by the machine on the code before issue 24's fix, and shrunk to this: a restore of the first backup
    added `COMMENT ON SCHEMA public IS ''`, so the restored database was not its source as pg_dump sees it."""
    replay(world, [("back_up", dict(pick=0, comment=""))])


def test_histories_of_a_fixed_seed(world: World) -> None:
    """The first history Hypothesis tries is the simplest: a backup, then restores of the newest backup into the
    other environment (each of a pre-restore backup of an environment restored into before)."""
    run_histories(world, examples=2, steps=3, seed_value=20261207)


def test_random_histories(world: World) -> None:
    """New ones each run; a failure found is kept in Hypothesis' example database and tried first next time."""
    run_histories(world, examples=2, steps=3)


def test_the_long_run_writes_its_figures(tmp_path: Path, storage_connection_string: str) -> None:
    """bench.histories, as small as it goes: one seed, one short history, on the session's Azurite."""
    out = tmp_path / "histories.json"
    figures = run(1, steps=1, per_seed=1, histories=1, out=out, connection_string=storage_connection_string)
    assert json.loads(out.read_text())["histories"] == figures["histories"] >= 1
    assert figures["finished"] is True
    [tried] = figures["seeds"]
    assert tried["seconds"] > 0
    assert tried["outcome"] == ("failed" if figures["failures"] else "passed")
    assert all(failure["history"] and failure["seed"] == tried["seed"] for failure in figures["failures"])
    assert sum(figures["stepsByRule"].values()) >= 1
