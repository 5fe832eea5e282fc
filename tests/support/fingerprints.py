"""What a database is, as a backup sees it: its schema as pg_dump writes it, each table's rows by digest,
each sequence's value. Two databases with equal fingerprints restore and back up alike."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

import psycopg

from shared.adapters.postgres.tools import postgres_tool, tool_dir

_NOISE = ("--", "SET ", "SELECT pg_catalog.set_config(", "\\restrict", "\\unrestrict")

_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE (c.relkind = 'r' OR (c.relkind = 'm' AND c.relispopulated))
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
ORDER BY 1
"""

_SEQUENCES = """
SELECT format('%I.%I', schemaname, sequencename), last_value FROM pg_sequences ORDER BY 1
"""


@dataclass(frozen=True)
class Fingerprint:
    schema: str  # pg_dump --schema-only --no-owner --no-privileges, without comments, SETs and blank lines
    tables: dict[str, tuple[int, str]] = field(default_factory=dict)  # rows and MD5 of the sorted rows' text
    sequences: dict[str, int | None] = field(default_factory=dict)  # last_value (None: never called)

    def differences(self, other: Fingerprint) -> list[str]:
        """What differs, in words a failing test can print; empty when equal."""
        found = []
        if self.schema != other.schema:
            found.append(f"schema differs:\n{_first_difference(self.schema, other.schema)}")
        for table in sorted(set(self.tables) | set(other.tables)):
            if self.tables.get(table) != other.tables.get(table):
                found.append(f"table {table}: {self.tables.get(table)} != {other.tables.get(table)}")
        for sequence in sorted(set(self.sequences) | set(other.sequences)):
            if self.sequences.get(sequence) != other.sequences.get(sequence):
                found.append(f"sequence {sequence}: {self.sequences.get(sequence)} != {other.sequences.get(sequence)}")
        return found


def normalised_schema(dsn: str) -> str:
    """The schema-only dump as text, with what differs between two equal databases left out."""
    with psycopg.connect(dsn) as connection:
        version = int(connection.info.server_version)
    dumped = subprocess.run(
        [
            postgres_tool("pg_dump", tool_dir(version)),
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--dbname",
            dsn,
        ],
        capture_output=True,
        check=True,
    ).stdout.decode()
    return "\n".join(line for line in dumped.splitlines() if line.strip() and not line.startswith(_NOISE))


def fingerprint(dsn: str) -> Fingerprint:
    with psycopg.connect(dsn) as connection:
        tables = {}
        for (table,) in connection.execute(_TABLES).fetchall():
            rows, digest = connection.execute(
                f"SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM {table} t"  # noqa: S608
            ).fetchone()
            tables[table] = (rows, digest)
        sequences = dict(connection.execute(_SEQUENCES).fetchall())
    return Fingerprint(normalised_schema(dsn), tables, sequences)


def _first_difference(left: str, right: str) -> str:
    for number, (a, b) in enumerate(zip(left.splitlines(), right.splitlines(), strict=False), start=1):
        if a != b:
            return f"line {number}:\n- {a}\n+ {b}"
    return f"one is longer ({len(left.splitlines())} lines against {len(right.splitlines())})"
