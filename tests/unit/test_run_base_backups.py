"""make run's demo PostgreSQL takes a base backup every so often while the host runs, and a failed one does not
stop the host."""

from __future__ import annotations

import subprocess
import sys

from tools.run import take_base_backups


class Cluster:
    def __init__(self, failing: int = 0) -> None:
        self.taken = 0
        self.failing = failing

    def base_backup(self) -> None:
        if self.failing:
            self.failing -= 1
            raise RuntimeError("the archive is unreachable")
        self.taken += 1


def test_base_backups_are_taken_while_the_host_runs_and_stop_with_it(capsys):
    cluster = Cluster(failing=1)
    host = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.0)"])
    try:
        take_base_backups(cluster, host, 0.15)  # type: ignore[arg-type]
    finally:
        host.kill()
        host.wait()
    assert host.returncode is not None
    assert cluster.taken >= 2
    output = capsys.readouterr().out
    assert "warning: the demo PostgreSQL's base backup failed: the archive is unreachable" in output
    assert "Base backup of the demo PostgreSQL taken" in output
