"""Replacing a database with a dump in one transaction, and learning afterwards whether it committed."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Iterator

import psycopg

from shared.adapters.postgres.connection import ConnectionParameters, DatabaseError, classify
from shared.adapters.postgres.dump import Collector, dump_schemas, feed
from shared.adapters.postgres.tools import postgres_tool, server_version, tool_dir
from shared.faults import Fault

# Everything the restored dump does not bring itself goes, in the same transaction as the restore:
# every schema but the system ones (with all they hold), and large objects.
_RESET_DATABASE = b"""
DO $reset$
DECLARE target record;
BEGIN
  FOR target IN
    SELECT nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema')
      AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp\\_%'
  LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', target.nspname);
  END LOOP;
  PERFORM lo_unlink(oid) FROM pg_largeobject_metadata;
END
$reset$;
"""


def restore_atomically(
    parameters: ConnectionParameters,
    dump: Callable[[], Iterator[bytes]],
    bin_dir: str | None,
    *,
    before_commit: Callable[[int], None] | None = None,
) -> None:
    """Replace the database's content with the dump in one transaction.

    pg_restore turns the dump into SQL and pipes it straight into psql, which runs it after our
    BEGIN and a reset that drops everything that was there. psql then waits on a pipe of ours for
    its last command: COMMIT is written there only when pg_restore finished cleanly and
    ``before_commit`` (the caller's last checks) returned. ``before_commit`` gets the transaction's
    id, so that a caller that dies right after the COMMIT can learn later whether it committed
    (``transaction_committed``). On any failure psql is stopped first; the open transaction dies with
    its connection and the database stays exactly as it was."""
    bin_dir = tool_dir(server_version(parameters), bin_dir)
    reset = _RESET_DATABASE.decode()
    if "public" not in dump_schemas(dump(), bin_dir):
        reset += "CREATE SCHEMA public;\n"
    restore = subprocess.Popen(
        [postgres_tool("pg_restore", bin_dir), "--no-owner", "--no-privileges", "--file=-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    commit_read, commit_write = os.pipe()
    txid_read, txid_write = os.pipe()
    try:
        apply = subprocess.Popen(
            [
                postgres_tool("psql", bin_dir),
                "--no-psqlrc",
                "--quiet",
                "--set=ON_ERROR_STOP=1",
                "--output=/dev/null",
                "--command=BEGIN",
                f"--command={reset}",
                "--file=-",
                f"--file=/dev/fd/{commit_read}",
            ],
            stdin=restore.stdout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=parameters.libpq_environment(),
            pass_fds=(commit_read, txid_write),
        )
    finally:
        os.close(commit_read)
        os.close(txid_write)
    assert restore.stdout is not None
    restore.stdout.close()  # psql owns the read end now
    feed_errors: list[BaseException] = []
    feeder = threading.Thread(target=feed, args=(dump(), restore.stdin, feed_errors), daemon=True)
    restore_errors = Collector(restore.stderr)
    apply_errors = Collector(apply.stderr)
    feeder.start()
    committed = restored = False
    try:
        feeder.join()
        restored = restore.wait() == 0 and not feed_errors
        if restored and apply.poll() is None:
            transaction = _transaction_id(commit_write, txid_read, txid_write)
            if transaction is not None and apply.poll() is None:
                if before_commit is not None:
                    before_commit(transaction)
                os.write(commit_write, b"COMMIT;\n")
                committed = True
    finally:
        os.close(commit_write)
        os.close(txid_read)
        if not committed:
            apply.kill()  # the open transaction dies with the connection
            restore.kill()
        feeder.join(timeout=10)
        restore.wait()
        apply.wait()
        restore_errors.join()
        apply_errors.join()
    if committed and apply.returncode == 0:
        return
    psql_reason = apply_errors.text() if apply.returncode > 0 else ""
    if psql_reason or restored:
        reason = psql_reason or f"psql exit code {apply.returncode}"
        transient = any(word in reason for word in ("connection", "terminat", "server closed", "timeout"))
        raise DatabaseError(
            f"Restoring into {parameters.describe()} failed and was rolled back: {reason}", transient=transient
        )
    raise DatabaseError(
        f"Restoring into {parameters.describe()} failed and was rolled back: "
        f"{_restore_failure(feed_errors, restore_errors.text())}",
        transient=_transient(feed_errors),
    )


def _transient(feed_errors: list[BaseException]) -> bool:
    """Reading the dump broke off: worth a retry, unless what broke it says it is not (a stored dump
    that failed its checks)."""
    if not feed_errors:
        return False
    return feed_errors[0].transient if isinstance(feed_errors[0], Fault) else True


def _transaction_id(commands: int, answers: int, answer_fd: int) -> int | None:
    """Ask the waiting psql for its transaction's id (written to a pipe of ours); None if psql died."""
    os.write(
        commands,
        f"\\pset tuples_only on\n\\pset format unaligned\nSELECT txid_current() \\g /dev/fd/{answer_fd}\n".encode(),
    )
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(answers, 64)
        if not chunk:
            return None
        line += chunk
    return int(line.strip())


def transaction_committed(parameters: ConnectionParameters, transaction: int) -> bool | None:
    """Did the transaction commit? True or False once it has ended; None while it is still running
    (its connection not yet gone) or when the server no longer knows it."""
    try:
        with parameters.connect() as connection:
            row = connection.execute("SELECT txid_status(%s)", (transaction,)).fetchone()
    except psycopg.Error as error:
        raise classify(error, parameters) from error
    status = row[0] if row else None
    if status == "committed":
        return True
    if status == "aborted":
        return False
    return None


def _restore_failure(feed_errors: list[BaseException], restore_text: str) -> str:
    if feed_errors:
        return f"reading the dump failed: {type(feed_errors[0]).__name__}: {feed_errors[0]}"
    return f"pg_restore failed: {restore_text or 'no message'}"
