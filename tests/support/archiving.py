"""A private PostgreSQL cluster that archives its WAL to Azurite with barman-cloud, for the point-in-time
tests: initdb'd as postgres under the git-ignored .run/tests/, on a free port, a base backup on demand,
stopped and removed at the end (with every process it or its archiver started)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from azure.storage.blob import ContainerClient

from shared.adapters.pointintime import TemporaryInstance
from shared.adapters.pointintime.barman import BarmanCloudArchive
from tools.archiving_cluster import (
    POSTGRES_BIN,
    ArchivingCluster,
    chown_to_postgres,
    cluster_in,
    clusters_folder,
    processes_in,
)

__all__ = ["POSTGRES_BIN", "REPO_ROOT", "SCRATCH", "ArchivedCluster", "archived_cluster", "processes_in"]

REPO_ROOT = Path(__file__).resolve().parents[2]
# /.run/ is git-ignored and, unlike /tmp/pytest-of-root, the postgres user can reach it (or its stand-in)
SCRATCH = clusters_folder(REPO_ROOT / ".run") / "tests"

ArchivedCluster = ArchivingCluster  # the tests' name for it


@contextlib.contextmanager
def archived_cluster(
    connection_string: str, container: str, *, archive_timeout: int = 30, server: str = "pitr-test"
) -> Iterator[ArchivedCluster]:
    """A cluster (with its own socket directory and no TCP listener) archiving into ``container``."""
    SCRATCH.mkdir(parents=True, exist_ok=True)
    directory = SCRATCH / f"cluster-{uuid.uuid4().hex[:8]}"
    archive = BarmanCloudArchive(
        ContainerClient.from_connection_string(connection_string, container),
        directory / "scratch",
        connection_string=connection_string,
    )
    cluster = cluster_in(directory, server, archive)
    try:
        cluster.initdb(fsync=False)
        cluster.start(archive_timeout=archive_timeout)
        (directory / "scratch").mkdir(mode=0o700)
        chown_to_postgres(directory / "scratch")
        yield cluster
    finally:
        cluster.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)


def hold_as_of(arguments: dict[str, str]) -> None:
    """``python -m tests.support.archiving '{json}'``: a host that starts a temporary instance, prints it
    as a JSON line as soon as it exists, and holds it until it is killed (the crash tests)."""
    archive = BarmanCloudArchive(
        ContainerClient.from_connection_string(arguments["connection_string"], arguments["container"]),
        arguments["scratch_root"],
        connection_string=arguments["connection_string"],
    )

    def started(instance: TemporaryInstance) -> None:
        print(json.dumps(dataclasses.asdict(instance)), flush=True)

    with archive.as_of(
        arguments["server"], datetime.fromisoformat(arguments["instant"]), arguments["database"], on_started=started
    ):
        threading.Event().wait()


if __name__ == "__main__":
    hold_as_of(json.loads(sys.argv[1]))
