"""Replacing a database with a dump in one transaction, and learning afterwards whether it committed."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

import psycopg

from shared.adapters.postgres.connection import ConnectionParameters, DatabaseError, classify
from shared.adapters.postgres.dump import Collector, DumpInfo, dump_info, feed, sequence_values
from shared.adapters.postgres.tools import postgres_tool, server_version, tool_dir
from shared.faults import Fault

T = TypeVar("T")

# Everything the restored dump does not bring itself goes, in the same transaction as the restore:
# every schema (with all it holds) and large objects. ``public`` comes back as initdb makes it (pg_restore
# never creates it, whatever the dump holds), so that pg_dump sees the restored database as it saw the source.
_RESET_DATABASE = """
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
  IF current_setting('server_version_num')::int >= 150000 THEN
    BEGIN
      CREATE SCHEMA public AUTHORIZATION pg_database_owner;
    EXCEPTION WHEN insufficient_privilege THEN
      CREATE SCHEMA public;
    END;
    GRANT USAGE ON SCHEMA public TO PUBLIC;
  ELSE
    CREATE SCHEMA public;
    GRANT ALL ON SCHEMA public TO PUBLIC;
  END IF;
  COMMENT ON SCHEMA public IS 'standard public schema';
END
$reset$;
"""

_PROCESSING_TABLE = "pg_restore: processing data for table "
_PROBLEMS = tuple(f"pg_restore: {level}" for level in ("error", "warning", "detail", "hint"))


class RestoreStopped(DatabaseError):
    """The restore was asked to stop before its COMMIT (a cancel, a lost lease): rolled back."""


class RestoreCheckFailed(DatabaseError):
    """The loaded database does not hold what the backup holds: rolled back."""


def restore_atomically(
    parameters: ConnectionParameters,
    dump: Callable[[], Iterator[bytes]],
    bin_dir: str | None,
    *,
    before_commit: Callable[[int], None] | None = None,
    row_counts: Mapping[str, int] | None = None,
    stop: threading.Event | None = None,
    on_load: Callable[[int, int], None] | None = None,
) -> None:
    """Replace the database's content with the dump in one transaction.

    pg_restore turns the dump into SQL and pipes it straight into psql, which runs it after our
    BEGIN and a reset that drops everything that was there. psql then waits on a pipe of ours for
    its next command. Before the COMMIT, in the same transaction: every table of the dump exists
    and holds ``row_counts`` rows (the counts recorded with the backup, where there are any), and
    every sequence has the value the dump sets. COMMIT is written only when pg_restore finished
    cleanly, those checks passed and ``before_commit`` (the caller's last checks) returned.
    ``before_commit`` gets the transaction's id, so that a caller that dies right after the COMMIT
    can learn later whether it committed (``transaction_committed``). ``on_load`` hears (tables
    loaded, tables in the dump) as pg_restore goes; ``stop`` being set ends the restore within a
    fraction of a second. On any failure psql is stopped first; the open transaction dies with its
    connection and the database stays exactly as it was."""
    bin_dir = tool_dir(server_version(parameters), bin_dir)
    contents = _reading_dump(lambda: dump_info(dump(), bin_dir))
    sequences = _reading_dump(lambda: sequence_values(dump(), contents, bin_dir))
    loaded = itertools.count(1)
    tables_total = len(contents.tables)

    def progress(line: str) -> bool:
        if not line.startswith(_PROCESSING_TABLE):
            return line.startswith("pg_restore: ") and not line.startswith(_PROBLEMS)  # the rest of --verbose
        if on_load is not None:
            with contextlib.suppress(Exception):  # a listener's trouble must not stop pg_restore's messages being read
                on_load(min(next(loaded), tables_total), tables_total)
        return True

    restore = subprocess.Popen(
        [postgres_tool("pg_restore", bin_dir), "--no-owner", "--no-privileges", "--verbose", "--file=-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    commit_read, commit_write = os.pipe()
    answer_read, answer_write = os.pipe()
    try:
        apply = subprocess.Popen(
            [
                postgres_tool("psql", bin_dir),
                "--no-psqlrc",
                "--quiet",
                "--set=ON_ERROR_STOP=1",
                "--output=/dev/null",
                "--command=BEGIN",
                f"--command={_RESET_DATABASE}",
                "--file=-",
                f"--file=/dev/fd/{commit_read}",
            ],
            stdin=restore.stdout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=parameters.libpq_environment(),
            pass_fds=(commit_read, answer_write),
        )
    finally:
        os.close(commit_read)
        os.close(answer_write)
    assert restore.stdout is not None
    restore.stdout.close()  # psql owns the read end now
    if on_load is not None:
        on_load(0, tables_total)
    feed_errors: list[BaseException] = []
    feeder = threading.Thread(target=feed, args=(dump(), restore.stdin, feed_errors), daemon=True)
    restore_errors = Collector(restore.stderr, progress)
    apply_errors = Collector(apply.stderr)
    session = _Session(commit_write, answer_read, answer_write, apply, stop)
    feeder.start()
    committed = restored = False
    try:
        session.wait_for(lambda: not feeder.is_alive())
        session.wait_for(lambda: restore.poll() is not None)
        restored = restore.returncode == 0 and not feed_errors
        if restored and apply.poll() is None:
            transaction = session.ask("SELECT txid_current()")
            if transaction is not None and apply.poll() is None:
                _check_loaded(session, parameters, contents, sequences, row_counts)
                if before_commit is not None:
                    before_commit(int(transaction))
                committed = session.send("COMMIT;\n")
    finally:
        os.close(commit_write)
        os.close(answer_read)
        if not committed:
            apply.kill()  # the open transaction dies with the connection
            restore.kill()
        feeder.join(timeout=10 if committed else _FEEDER_GRACE_SECONDS)  # a stopped one may be in a slow read
        restore.wait()
        apply.wait()
        restore_errors.join()
        apply_errors.join()
    if committed and apply.returncode == 0:
        return
    if stop is not None and stop.is_set():
        raise RestoreStopped("The restore was stopped before its COMMIT and rolled back.", transient=True)
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


def _reading_dump(read: Callable[[], T]) -> T:
    """Read from the dump's table of contents; reading the dump breaking off is a transient DatabaseError."""
    try:
        return read()
    except Fault:
        raise  # a database error, or a stored dump that failed its checks: already said in our terms
    except Exception as error:
        raise DatabaseError(f"reading the dump failed: {type(error).__name__}: {error}", transient=True) from error


class _Session:
    """The psql waiting for its next command: ask it one-line questions inside its transaction, and
    wait for things to happen while watching ``stop``."""

    def __init__(
        self, commands: int, answers: int, answer_fd: int, apply: subprocess.Popen[bytes], stop: threading.Event | None
    ) -> None:
        self._commands = commands
        self._answers = answers
        self._answer_fd = answer_fd
        self._apply = apply
        self._stop = stop
        self._configured = False

    def wait_for(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self._check_stop()
            time.sleep(_POLL_SECONDS)

    def ask(self, query: str) -> str | None:
        """The one-line answer to ``query``; None if psql died first."""
        setup = "" if self._configured else "\\pset tuples_only on\n\\pset format unaligned\n"
        self._configured = True
        if not self.send(f"{setup}{query} \\g /dev/fd/{self._answer_fd}\n"):
            return None
        line = b""
        while not line.endswith(b"\n"):
            self._check_stop()
            ready, _, _ = select.select([self._answers], [], [], _POLL_SECONDS)
            if not ready:
                if self._apply.poll() is not None:
                    return None
                continue
            chunk = os.read(self._answers, 65536)
            if not chunk:
                return None
            line += chunk
        return line.decode().strip()

    def send(self, commands: str) -> bool:
        """Write commands to psql; False if it has already exited (after an error in the script, say)."""
        try:
            os.write(self._commands, commands.encode())
        except BrokenPipeError:
            return False
        return True

    def _check_stop(self) -> None:
        if self._stop is not None and self._stop.is_set():
            raise RestoreStopped("The restore was stopped before its COMMIT and rolled back.", transient=True)


_POLL_SECONDS = 0.1
_FEEDER_GRACE_SECONDS = 0.5


def _check_loaded(
    session: _Session,
    parameters: ConnectionParameters,
    contents: DumpInfo,
    sequences: Mapping[str, tuple[int, bool]],
    row_counts: Mapping[str, int] | None,
) -> None:
    """In the restore's transaction: the dump's tables exist and hold the recorded rows, and its sequences
    have the values it sets. Raises RestoreCheckFailed naming what differs."""
    tables = ",".join(f"({_literal(schema)}, {_literal(table)})" for schema, table in sorted(contents.tables))
    answer = session.ask(_LOADED.format(tables=tables or "(NULL, NULL)"))
    if answer is None:
        return  # psql died: the restore fails with psql's reason
    found = json.loads(answer)
    counts: dict[str, int | None] = found["tables"]
    problems = [f"table {table} is missing" for table, rows in sorted(counts.items()) if rows is None]
    for table, recorded in sorted((row_counts or {}).items()):
        loaded = counts.get(table)
        if loaded is None and table not in counts:
            loaded = _count(session, table)
        if loaded != recorded:
            problems.append(f"{table}: {'no table' if loaded is None else loaded} rows loaded, {recorded} recorded")
    if sequences:
        values = ",".join(
            f"({_literal(name)}, {value}, {str(called).lower()})" for name, (value, called) in sequences.items()
        )
        answer = session.ask(_SEQUENCES.format(values=values))
        if answer:
            problems += [f"sequence {name} is not set as the dump sets it" for name in json.loads(answer)]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise RestoreCheckFailed(
            f"Restoring into {parameters.describe()} was rolled back before its COMMIT: the loaded database does not "
            f"hold what the backup holds ({shown}).",
            transient=False,
        )


def _count(session: _Session, table: str) -> int | None:
    """Rows of a table the dump holds no data for but the backup counted (an empty one, say)."""
    answer = session.ask(_COUNT.format(table=_literal(table)))
    return int(answer) if answer not in (None, "") else None


# Exact rows of each table of the dump, by its name as schema."table" (NULL when it does not exist).
_LOADED = """SELECT json_build_object('tables', coalesce(json_object_agg(format('%I.%I', e.s, e.t),
  CASE WHEN to_regclass(format('%I.%I', e.s, e.t)) IS NOT NULL THEN (xpath('/row/c/text()',
    query_to_xml(format('SELECT count(*) AS c FROM %I.%I', e.s, e.t), false, true, '')))[1]::text::bigint END)
  FILTER (WHERE e.s IS NOT NULL), '{{}}'))
FROM (VALUES {tables}) AS e(s, t)"""

_COUNT = """SELECT CASE WHEN to_regclass({table}) IS NOT NULL THEN (xpath('/row/c/text()',
  query_to_xml('SELECT count(*) AS c FROM ' || {table}, false, true, '')))[1]::text::bigint END"""

# The sequences whose value is not the one the dump sets (pg_sequences.last_value is NULL until called).
_SEQUENCES = """SELECT coalesce(json_agg(e.name), '[]') FROM (VALUES {values}) AS e(name, value, called)
WHERE to_regclass(e.name) IS NULL OR (SELECT s.last_value FROM pg_sequences s
  WHERE format('%I.%I', s.schemaname, s.sequencename)::regclass = to_regclass(e.name))
  IS DISTINCT FROM CASE WHEN e.called THEN e.value END"""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _transient(feed_errors: list[BaseException]) -> bool:
    """Reading the dump broke off: worth a retry, unless what broke it says it is not (a stored dump
    that failed its checks)."""
    if not feed_errors:
        return False
    return feed_errors[0].transient if isinstance(feed_errors[0], Fault) else True


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
