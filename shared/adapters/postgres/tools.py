"""Which PostgreSQL client tools to run for a server: pg_dump, pg_restore and psql of a fitting major."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg

from shared.adapters.postgres.connection import ConnectionParameters, DatabaseError, classify

CLIENT_ROOT = Path("/usr/lib/postgresql")  # where Debian installs each major's client, side by side


def tool_dir(server_version: int | None, configured: str | None = None, root: Path = CLIENT_ROOT) -> str | None:
    """Which client tools to run. A configured directory wins. Otherwise, for a server, the
    installed client closest to its major version from above — pg_dump must be at least the
    server's major, and pg_restore 17+ writes settings that older servers reject — and without a
    server, the newest client (it reads every older archive). None means: whatever is on PATH."""
    if configured:
        return configured
    majors = sorted(
        int(entry.name)
        for entry in (root.iterdir() if root.is_dir() else ())
        if entry.name.isdigit() and (entry / "bin" / "pg_dump").exists()
    )
    if server_version:
        fitting = [major for major in majors if major >= server_version // 10000]
        return str(root / str(fitting[0]) / "bin") if fitting else None
    return str(root / str(majors[-1]) / "bin") if majors else None


def server_version(parameters: ConnectionParameters) -> int:
    """The server's version number (e.g. 150020), read from a short connection."""
    try:
        with parameters.connect() as connection:
            return int(connection.info.server_version)
    except psycopg.Error as error:
        raise classify(error, parameters) from error


def postgres_tool(name: str, bin_dir: str | None) -> str:
    """Path of pg_dump / pg_restore / psql: from the given directory, else from PATH."""
    if bin_dir:
        return os.path.join(bin_dir, name)
    found = shutil.which(name)
    if found is None:
        raise DatabaseError(f"{name} is not installed on this host (set APPBACKUPS_POSTGRES_BIN_DIR).", transient=False)
    return found
