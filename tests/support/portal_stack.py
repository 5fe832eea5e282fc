"""A private stack for the Backups page: its own Azurite, the demo seed (unique databases) and the app in
the development host. The demo environments have fixed ids, so the page's test cannot share the session's
storage with the API tests.

Also runnable by hand, to look at the page while working on it:

    .venv/bin/python -m tests.support.portal_stack      # prints the page's URL; Ctrl-C stops everything
"""

from __future__ import annotations

import contextlib
import signal
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shared.bootstrap import build_services
from shared.config import STORAGE_CONNECTION, Settings
from tests.support.apphost import AppHost, start_app_host
from tools import azurite as azurite_launcher
from tools.provision import provision
from tools.seed_demo import ADMIN_DSN, drop, seed


@dataclass(frozen=True)
class PortalStack:
    host: AppHost
    azurite: azurite_launcher.Azurite
    database_prefix: str

    @property
    def api(self) -> str:
        return self.host.api

    @property
    def page_url(self) -> str:
        return f"{self.host.api}/portal"


@contextlib.contextmanager
def portal_stack(work_dir: Path, admin_dsn: str = ADMIN_DSN, *, queues: bool = True) -> Iterator[PortalStack]:
    """Start Azurite, seed the demo namespace into fresh databases, serve the app; stop and drop it all after.
    ``queues=False``: the host serves the page and the API but runs no queued work (a test starts a worker)."""
    database_prefix = f"appbackups_portal_{uuid.uuid4().hex[:8]}"
    storage = azurite_launcher.start(work_dir / "azurite", log_file=work_dir / "azurite.log")
    host: AppHost | None = None
    try:
        settings = Settings.from_environ(
            {STORAGE_CONNECTION: storage.connection_string, "APPBACKUPS_DEVELOPMENT_MODE": "true"}
        )
        services = build_services(settings)
        provision(services.clients)
        seed(services, admin_dsn=admin_dsn, database_prefix=database_prefix)
        host = start_app_host(storage.connection_string, work_dir / "devhost.log", queues=queues)
        yield PortalStack(host, storage, database_prefix)
    finally:
        if host is not None:
            host.stop()
        storage.stop()
        drop(admin_dsn, database_prefix)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="appbackups-portal-") as directory, portal_stack(Path(directory)) as stack:
        print(stack.page_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
