"""The service's blob containers, as stores, and the way to an environment's own file store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.adapters.blobs import BlobStore
from shared.domain.environments import Environment


@dataclass
class Stores:
    backups: BlobStore
    content: BlobStore
    archives: BlobStore
    uploads: BlobStore
    maintenance: BlobStore
    file_store: Callable[[Environment], BlobStore]
