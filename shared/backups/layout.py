"""Where a backup's data lives, and the format of its file list.

snapshots/{namespace}/{environment}/{backup}/db.backup     pg_dump -Fc -O -x output
snapshots/{namespace}/{environment}/{backup}/files.jsonl   one FileEntry per line, in uuid byte order
snapshots/{namespace}/{environment}/{backup}/rows.json     exact row counts per table, as of the dump's snapshot
snapshots/{namespace}/{environment}/{backup}/manifest.json the summary, written last
content/{namespace}/{uuid}/{md5}                             one file document's content, written once

A content object's name carries the MD5 of its content, so one name never stands for two
contents, and every backup of the namespace that needs the same file shares the object.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.adapters.blobs import BlobStore
from shared.adapters.errors import BlobNotFound
from shared.domain.backups import Backup

DUMP = "db.backup"
FILES = "files.jsonl"
MANIFEST = "manifest.json"
ROWS = "rows.json"
MANIFEST_FORMAT = "appbackups/1"


def manifest_head(
    backup: Backup, finished_on: datetime, model_version: str | None, deployment_package: str | None
) -> dict[str, Any]:
    """The fields every backup's manifest begins with, whoever made the backup."""
    return {
        "format": MANIFEST_FORMAT,
        "snapshotId": backup.id,
        "environmentId": backup.environment_id,
        "namespace": backup.namespace,
        "tier": backup.tier.value,
        "createdOn": backup.created_on.isoformat(),
        "finishedOn": finished_on.isoformat(),
        "modelVersion": model_version,
        "deploymentPackage": deployment_package,
    }


def backup_folder(namespace: str, environment_id: str, backup_id: str) -> str:
    return f"{namespace}/{environment_id}/{backup_id}/"


def content_object(namespace: str, file_uuid: str, md5: str) -> str:
    return f"{namespace}/{file_uuid}/{md5}"


@dataclass(frozen=True)
class FileEntry:
    uuid: str
    size: int
    md5: str
    object: str
    source_etag: str | None = None

    def to_line(self) -> bytes:
        document: dict[str, Any] = {"uuid": self.uuid, "size": self.size, "md5": self.md5, "object": self.object}
        if self.source_etag:
            document["sourceEtag"] = self.source_etag
        return json.dumps(document, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> FileEntry:
        document = json.loads(line)
        return cls(
            uuid=document["uuid"],
            size=int(document["size"]),
            md5=document["md5"],
            object=document["object"],
            source_etag=document.get("sourceEtag"),
        )


def read_file_list(store: BlobStore, backup: Backup, *, missing_ok: bool = False) -> Iterator[FileEntry]:
    """A backup's file list, streamed, in uuid order. With ``missing_ok`` a backup without one (its data
    was removed, perhaps while it was being read) has none; otherwise its absence is an error."""
    name = backup_folder(backup.namespace, backup.environment_id, backup.id) + FILES
    try:
        for line in store.read_lines(name):
            if line.strip():
                yield FileEntry.from_line(line)
    except BlobNotFound:
        if not missing_ok:
            raise


def read_row_counts(store: BlobStore, backup: Backup) -> dict[str, int] | None:
    """The exact row counts per table recorded with a backup; None for one made without them (an upload)."""
    name = backup_folder(backup.namespace, backup.environment_id, backup.id) + ROWS
    try:
        document = json.loads(store.read_bytes(name))
    except BlobNotFound:
        return None
    return {str(table): int(count) for table, count in document["tables"].items()}
