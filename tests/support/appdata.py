"""A scratch app environment for tests: a Mendix-like database and its file documents in Azurite."""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import ContainerClient

from shared.bootstrap import Services
from shared.contracts.environments import EnvironmentBody
from shared.domain.access import SYSTEM
from shared.domain.environments import Environment
from tools.seed_demo import SCHEMA


@dataclass
class ScratchApp:
    services: Services
    environment_id: str
    namespace: str
    dsn: str
    container: ContainerClient
    prefix: str
    files: dict[str, bytes] = field(default_factory=dict)  # referenced file documents, by uuid
    next_id: int = 1

    @property
    def environment(self) -> Environment:
        return self.services.environments.get(self.environment_id)

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=True)

    def add_document(
        self,
        content: bytes | None = None,
        *,
        has_contents: bool = True,
        delete_after_download: bool = False,
        upload: bool = True,
    ) -> str:
        file_uuid = str(uuid.uuid4())
        content = os.urandom(1000 + self.next_id) if content is None else content
        with self.connect() as connection:
            connection.execute(
                'INSERT INTO "system$filedocument" (id, "__uuid__", name, size, hascontents, deleteafterdownload) '
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (self.next_id, file_uuid, f"file-{self.next_id}", len(content), has_contents, delete_after_download),
            )
        self.next_id += 1
        if upload:
            self.container.upload_blob(self.prefix + file_uuid, content, overwrite=True)
        if has_contents and not delete_after_download:
            self.files[file_uuid] = content
        return file_uuid

    def add_orphan_blob(self) -> str:
        file_uuid = str(uuid.uuid4())
        self.container.upload_blob(self.prefix + file_uuid, b"nobody refers to me", overwrite=True)
        return file_uuid

    def add_customers(self, count: int, start: int = 1) -> None:
        with self.connect() as connection, connection.cursor() as cursor:
            cursor.executemany(
                'INSERT INTO "sales$customer" (id, name, email) VALUES (%s, %s, %s)',
                [(number, f"Customer {number}", f"c{number}@example.com") for number in range(start, start + count)],
            )

    def table_contents(self, dsn: str | None = None) -> dict[str, list[tuple]]:
        return table_contents(dsn or self.dsn)

    def stored_files(self) -> dict[str, str]:
        """The app's file store as it is: each blob under its prefix (name without it) and its MD5."""
        return {
            blob.name.removeprefix(self.prefix): md5_hex(self.container.download_blob(blob.name).readall())
            for blob in self.container.list_blobs(name_starts_with=self.prefix)
        }

    def referenced_files(self) -> dict[str, str]:
        """What the app's database refers to: each file document's uuid and the MD5 of its content."""
        return {file_uuid: md5_hex(content) for file_uuid, content in self.files.items()}


def table_contents(dsn: str) -> dict[str, list[tuple]]:
    """Every user table's rows, sorted, keyed by table name: equal means the same data."""
    with psycopg.connect(dsn) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
            )
        ]
        return {
            table: sorted(connection.execute(f"SELECT * FROM {table}").fetchall(), key=repr)  # noqa: S608
            for table in tables
        }


def md5_hex(content: bytes) -> str:
    return hashlib.md5(content, usedforsecurity=False).hexdigest()


def create_scratch_app(
    services: Services,
    database: str,
    admin_dsn: str,
    *,
    namespace: str | None = None,
    state: str = "Running",
    documents: int = 5,
    customers: int = 10,
) -> ScratchApp:
    dsn = psycopg.conninfo.make_conninfo(admin_dsn, dbname=database)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(SCHEMA)
    suffix = uuid.uuid4().hex[:8]
    container_name = f"files-{suffix}"
    container = services.clients.blob_service.get_container_client(container_name)
    with contextlib.suppress(ResourceExistsError):
        container.create_container()
    environment_id = f"app-{suffix}"
    namespace = namespace or f"ns-{suffix}"
    admin = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    body = EnvironmentBody.model_validate(
        {
            "namespace": namespace,
            "appName": "scratch",
            "displayName": f"Scratch {suffix}",
            "state": state,
            "database": {
                "host": admin.get("host", "127.0.0.1"),
                "port": int(admin.get("port", 5432)),
                "database": database,
                "user": admin.get("user", "postgres"),
            },
            "files": {"container": container_name, "prefix": "docs/"},
            "modelVersion": "1.0.0",
            "deploymentPackage": "scratch_1.0.0.mda",
        }
    )
    services.environments.put(environment_id, body.to_registration(), SYSTEM)
    app = ScratchApp(services, environment_id, namespace, dsn, container, "docs/")
    for _ in range(documents):
        app.add_document()
    app.add_customers(customers)
    return app


def source_and_target(
    services: Services,
    database_factory: Callable[[], str],
    admin_dsn: str,
    *,
    documents: int = 6,
    target_documents: int = 3,
    customers: int = 10,
) -> tuple[ScratchApp, ScratchApp]:
    """A source environment (Running) and a restore target (Stopped) in one namespace."""
    source = create_scratch_app(services, database_factory(), admin_dsn, documents=documents, customers=customers)
    target = create_scratch_app(
        services, database_factory(), admin_dsn, namespace=source.namespace, state="Stopped", documents=target_documents
    )
    return source, target


NO_CREATEDB_ROLE = "appbackups_nocreatedb"


def ensure_role_without_createdb(admin_dsn: str) -> str:
    """A login role that may not CREATE DATABASE; made once, safe when two test workers race to make it."""
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (NO_CREATEDB_ROLE,)).fetchone():
            with contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
                connection.execute(f"CREATE ROLE {NO_CREATEDB_ROLE} LOGIN NOCREATEDB")
    return NO_CREATEDB_ROLE
