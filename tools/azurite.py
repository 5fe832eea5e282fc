"""Start and stop a private Azurite (the Azure Storage emulator from npm)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite"

# Azurite's well-known development account; it is public and only valid against the emulator.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def connection_string(blob_port: int, queue_port: int, table_port: int) -> str:
    base = "http://127.0.0.1"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={base}:{blob_port}/{ACCOUNT_NAME};"
        f"QueueEndpoint={base}:{queue_port}/{ACCOUNT_NAME};"
        f"TableEndpoint={base}:{table_port}/{ACCOUNT_NAME};"
    )


@dataclass
class Azurite:
    blob_port: int
    queue_port: int
    table_port: int
    process: subprocess.Popen[bytes] | None

    @property
    def connection_string(self) -> str:
        return connection_string(self.blob_port, self.queue_port, self.table_port)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start(
    data_dir: Path,
    *,
    blob_port: int | None = None,
    queue_port: int | None = None,
    table_port: int | None = None,
    log_file: Path | None = None,
    timeout: float = 30.0,
    in_memory: bool = False,
) -> Azurite:
    """Start Azurite on the given (or free) ports with its data under ``data_dir`` (or, ``in_memory``,
    held in its process only: what the scale benchmark uses, so that disk is not what it measures)."""
    if not AZURITE_BIN.exists():
        raise RuntimeError(f"{AZURITE_BIN} is missing: run 'npm ci' (or 'make setup') first")
    if shutil.which("node") is None:
        raise RuntimeError("node is not on PATH; Azurite needs Node.js")
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = [blob_port or free_port(), queue_port or free_port(), table_port or free_port()]
    command = [
        str(AZURITE_BIN),
        "--location", str(data_dir),
        "--blobHost", "127.0.0.1", "--blobPort", str(ports[0]),
        "--queueHost", "127.0.0.1", "--queuePort", str(ports[1]),
        "--tableHost", "127.0.0.1", "--tablePort", str(ports[2]),
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--loose",
        "--silent",
    ]  # fmt: skip
    if in_memory:  # Azurite refuses a --location with it
        command[1:3] = ["--inMemoryPersistence"]
    output = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ.copy()
    )
    if log_file:
        output.close()  # type: ignore[union-attr]
    azurite = Azurite(ports[0], ports[1], ports[2], process)
    deadline = time.monotonic() + timeout
    while not all(port_open(port) for port in ports):
        if process.poll() is not None:
            raise RuntimeError(f"Azurite exited with code {process.returncode} (see {log_file or 'its output'})")
        if time.monotonic() > deadline:
            azurite.stop()
            raise RuntimeError("Azurite did not open its ports in time")
        time.sleep(0.1)
    return azurite
