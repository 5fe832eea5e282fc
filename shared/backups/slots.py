"""Backup slots per database server: at most N backups read one server at once, so that a night of many
environments on a few shared servers does not overwhelm them (docs/decisions/0018).

A server has N slot rows in the schedules table (partition ``slots~<host>:<port>``). A backup takes a free
one with an ETag-guarded write naming its operation, and gives it back when its dump is done. A slot is
held only while its operation holds its own lease and runs its dump step: a worker that dies frees its
slot when its operation's lease runs out, with no renewal of its own."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from shared.adapters.tables import Row, RowChanged, RowExists, RowTable, iterate
from shared.clock import Clock
from shared.domain.environments import DatabaseConnection
from shared.domain.operations import Operation, StepStatus

logger = logging.getLogger("appbackups.backup")

PARTITION_PREFIX = "slots~"
SLOT_STEP = "dump"  # the step that reads the database: the slot is held while it runs


def server_of(database: DatabaseConnection) -> str:
    """How a slot names a database server: ``host:port``, the host in lower case."""
    return f"{database.host.lower()}:{database.port}"


def _partition(server: str) -> str:
    return PARTITION_PREFIX + "".join("_" if char in "/\\#?" else char for char in server)


def _row_key(index: int) -> str:
    return f"{index:04d}"


@dataclass(frozen=True)
class SlotHolder:
    server: str
    index: int
    operation_id: str
    taken_on: str


def holds_slot(operation: Operation | None, now: datetime) -> bool:
    """The operation still uses the slot it took: it is open, its worker's lease is live, and it runs its dump."""
    if operation is None or not operation.open or not operation.leased(now):
        return False
    try:
        return operation.step(SLOT_STEP).status is StepStatus.RUNNING
    except KeyError:
        return False


class ServerSlots:
    def __init__(
        self,
        table: RowTable,
        find_operation: Callable[[str], Operation | None],
        per_server: int,
        clock: Clock,
    ) -> None:
        self._table = table
        self._find_operation = find_operation
        self.per_server = per_server
        self._clock = clock

    def take(self, server: str, operation_id: str) -> int | None:
        """A slot on ``server`` for the operation (the one it holds already, after a repeat), or None when all
        are held by live backups. ``per_server`` 0 means no limit (slot -1)."""
        if self.per_server <= 0:
            return -1
        partition = _partition(server)
        rows = {row.row_key: row for row in iterate(self._table, partition)}
        wanted = [_row_key(index) for index in range(self.per_server)]
        for key in wanted:
            row = rows.get(key)
            if row is not None and row.get("OperationId") == operation_id:
                return int(key)
        now = self._clock()
        for key in wanted:
            row = rows.get(key)
            claimed = Row(partition, key, {"OperationId": operation_id, "TakenOn": now.isoformat()})
            try:
                if row is None:
                    self._table.insert(claimed)
                    return int(key)
                holder = row.get("OperationId")
                if holder and holds_slot(self._find_operation(holder), now):
                    continue
                self._table.replace(claimed, row.etag)
                if holder:
                    logger.info("slot %s on %s: operation %s no longer held it", key, server, holder)
                return int(key)
            except (RowExists, RowChanged):
                continue  # another backup took it just now
        return None

    def release(self, server: str, operation_id: str) -> None:
        """Give back the operation's slot on ``server`` (nothing if it holds none)."""
        if self.per_server <= 0:
            return
        for row in iterate(self._table, _partition(server)):
            if row.get("OperationId") == operation_id:
                with contextlib.suppress(RowChanged):  # taken over meanwhile: not ours any more
                    self._table.replace(Row(row.partition_key, row.row_key, {"OperationId": ""}), row.etag)

    def holders(self, server: str) -> list[SlotHolder]:
        """The slots of ``server`` held by live backups now."""
        now = self._clock()
        held = []
        for row in iterate(self._table, _partition(server)):
            holder = row.get("OperationId")
            if holder and int(row.row_key) < self.per_server and holds_slot(self._find_operation(holder), now):
                held.append(SlotHolder(server, int(row.row_key), holder, row.get("TakenOn", "")))
        return held
