"""Building tar.gz archives (good and bad) for upload tests."""

from __future__ import annotations

import gzip
import io
import json
import tarfile


def tar_gz(entries: list[tuple[str, bytes | tarfile.TarInfo]], *, level: int = 6) -> bytes:
    """entries: (path, content) for regular files, or (path, TarInfo) for anything else."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path, content in entries:
            if isinstance(content, tarfile.TarInfo):
                content.name = path
                archive.addfile(content)
            else:
                info = tarfile.TarInfo(path)
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), compresslevel=level)


def special(kind: bytes, *, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo("x")
    info.type = kind
    info.linkname = linkname
    return info


def metadata(**fields: str) -> bytes:
    return json.dumps({"modelVersion": "1.0.0", **fields}).encode()
