"""The capture catalog (table `captures`): partition per environment, row key = file-document uuid, one row
per captured file document; and each environment's latest capture run, in the partition `~runs`."""

from __future__ import annotations

from collections.abc import Iterator

from shared.adapters.tables import Row, RowTable
from shared.catalog.codec import Codec, from_iso, to_iso
from shared.catalog.repository import KeyOrderedRepository, Repository
from shared.domain.captures import CaptureRun, FileCapture

# Environment ids are lower-case letters, digits and hyphens: no partition of captures is called this.
_RUNS = "~runs"


def _to_row(capture: FileCapture) -> Row:
    properties = {
        "Namespace": capture.namespace,
        "Object": capture.object,
        "Size": capture.size,
        "Md5": capture.md5,
        "SourceEtag": capture.source_etag,
        "FirstReferred": to_iso(capture.first_referred),
        "LastReferred": to_iso(capture.last_referred),
        "GoneOn": to_iso(capture.gone_on),
    }
    return Row(capture.environment_id, capture.uuid, properties, capture.etag)


def _from_row(row: Row) -> FileCapture:
    return FileCapture(
        environment_id=row.partition_key,
        uuid=row.row_key,
        namespace=row["Namespace"],
        object=row["Object"],
        size=int(row["Size"]),
        md5=row["Md5"],
        first_referred=from_iso(row["FirstReferred"]),  # type: ignore[arg-type]
        source_etag=row.get("SourceEtag"),
        last_referred=from_iso(row.get("LastReferred")),
        gone_on=from_iso(row.get("GoneOn")),
        etag=row.etag,
    )


def _run_to_row(run: CaptureRun) -> Row:
    properties = {
        "RanOn": to_iso(run.ran_on),
        "Referred": run.referred,
        "New": run.new,
        "Gone": run.gone,
        "Missing": run.missing,
    }
    return Row(_RUNS, run.environment_id, properties, run.etag)


def _run_from_row(row: Row) -> CaptureRun:
    return CaptureRun(
        environment_id=row.row_key,
        ran_on=from_iso(row["RanOn"]),  # type: ignore[arg-type]
        referred=int(row.get("Referred") or 0),
        new=int(row.get("New") or 0),
        gone=int(row.get("Gone") or 0),
        missing=int(row.get("Missing") or 0),
        etag=row.etag,
    )


_CODEC = Codec(_to_row, _from_row, lambda capture: f"The capture of file document {capture.uuid}")
_RUN_CODEC = Codec(_run_to_row, _run_from_row, lambda run: f"The capture run of {run.environment_id}")


class CaptureCatalog:
    def __init__(self, table: RowTable) -> None:
        self._captures = KeyOrderedRepository(table, _CODEC)
        self._runs = Repository(table, _RUN_CODEC)

    def of_environment(self, environment_id: str) -> Iterator[FileCapture]:
        """Every capture of the environment, in uuid order (the order the database lists its uuids in)."""
        return self._captures.all(environment_id)

    def find(self, environment_id: str, file_uuid: str) -> FileCapture | None:
        return self._captures.load(environment_id, file_uuid)

    def add(self, capture: FileCapture) -> FileCapture:
        """Raises ``AlreadyExists`` when the file document was captured already."""
        return self._captures.insert(capture)

    def save(self, capture: FileCapture) -> FileCapture:
        """Write only if nobody changed the capture since it was read (its ETag), else ``StaleRecord``."""
        return self._captures.save(capture)

    def delete(self, capture: FileCapture) -> None:
        """Delete the capture as it was read (``StaleRecord`` when it changed since)."""
        self._captures.delete(capture)

    def latest_run(self, environment_id: str) -> CaptureRun | None:
        return self._runs.load(_RUNS, environment_id)

    def record_run(self, run: CaptureRun) -> CaptureRun:
        return self._runs.put(run)

    def forget_run(self, environment_id: str) -> None:
        self._runs.remove(_RUNS, environment_id)
