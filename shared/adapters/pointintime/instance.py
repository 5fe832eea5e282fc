"""The processes of a temporary instance: a free port, whether its postmaster lives, the FATAL line of
its log, and everything still running inside its directory (what a crash leaves without a parent)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _state(pid) != "Z"


def _state(pid: int) -> str:
    """The process's state letter (Z: a zombie, dead but not reaped), or "" when it is gone."""
    stat = read_text(Path(f"/proc/{pid}/stat"))
    return stat.rsplit(")", 1)[1].split()[0] if ")" in stat else ""


def fatal_line(log: Path) -> str | None:
    lines = [line for line in read_text(log).splitlines() if "FATAL:" in line or "PANIC:" in line]
    return lines[-1].split(":  ", 1)[-1].strip() if lines else None


def processes_in(directory: Path) -> list[int]:
    """Processes whose working directory is inside ``directory``: the instance's postmaster and its
    children, and the tools run there (what a crash may have left without a parent)."""
    found = []
    root = str(directory)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if (cwd == root or cwd.startswith(root + "/")) and _state(int(entry.name)) not in ("", "Z"):
            found.append(int(entry.name))
    return found


def kill_processes_in(directory: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (pids := processes_in(directory)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def postmaster_pid(pid_file: list[str]) -> int | None:
    """The pid on the first line of postmaster.pid's lines, when it is written."""
    return int(pid_file[0]) if pid_file and pid_file[0].strip().isdigit() else None


def remove_shared_memory(line: str) -> None:
    """Remove the SysV segment postmaster.pid's 7th line names ("key shmid") if it still exists with that
    key and nothing attached (never another program's segment that got the id since)."""
    named = line.split()
    if len(named) != 2 or not all(part.isdigit() for part in named):
        return
    for row in read_text(Path("/proc/sysvipc/shm")).splitlines()[1:]:
        fields = row.split()
        if fields[:2] == named and fields[6] == "0":
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                subprocess.run(["ipcrm", "-m", named[1]], capture_output=True, timeout=10, check=False)
