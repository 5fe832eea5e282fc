"""The fleet benchmark, run tiny (four environments in two namespaces on one database server, a few file
documents each, a night on two hosts sharing the storage: the case where exactly once is earned; the bench runs
the one-host night with the same code) so that it cannot rot. It checks what the benchmark
must show whatever the machine: every environment backed up exactly once each night, and never more backups
at once on the server than its slots allow — never the timings, which are the benchmark's to report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import fleet

pytestmark = pytest.mark.integration

ENVIRONMENTS = 4
PER_SERVER = 2  # fewer slots than one host's queue concurrency (6): the bound is what keeps the count down


def test_a_tiny_fleet_night_on_two_hosts_backs_up_each_environment_once_within_the_slots(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fleet.json"
    results = fleet.run(
        environments=ENVIRONMENTS,
        namespaces=2,
        servers=1,
        files=(5, 5),
        rows=20,
        per_server=PER_SERVER,
        sample=1,
        hosts=(2,),
        work_dir=tmp_path / "work",
        results=path,
        in_memory=True,
        poll_interval=0.3,
        view_every=0.5,
        timeout=120,
        rest_seconds=0.5,
    )
    assert json.loads(path.read_text()) == results
    assert results["setup"]["files"] == ENVIRONMENTS * 5
    assert [night["hosts"] for night in results["nights"]] == [2]
    for night in results["nights"]:
        assert night["finishedExactlyOnce"] == ENVIRONMENTS, night["problems"]
        assert (night["missing"], night["duplicates"], night["failed"]) == (0, 0, 0)
        [server] = night["perServer"].values()
        assert server["environments"] == ENVIRONMENTS
        assert 1 <= server["mostBackupsSeenAtOnce"] <= PER_SERVER
        assert server["mostSlotsHeldAtOnce"] <= PER_SERVER
        assert night["timeline"][-1]["done"] == ENVIRONMENTS
        assert all(worker["peakRssMiB"] >= worker["restingRssMiB"] > 0 for worker in night["workers"])
        assert night["parallelism"] == min(night["hosts"] * results["setup"]["hostQueues"]["concurrency"], PER_SERVER)
        assert night["ratio"] == round(night["wallSeconds"] / night["idealSeconds"], 2)
    assert len(results["single"]["runs"]) == 1
