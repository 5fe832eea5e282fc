"""Seed the demo namespace: two environments with Mendix-like databases and file documents.

Idempotent: what already exists is left as it is, so `make run` can be run again and again.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import uuid
from dataclasses import dataclass, fields, replace

import psycopg
from azure.core.exceptions import ResourceExistsError
from psycopg import sql

from shared.bootstrap import Services, build_services
from shared.config import Settings
from shared.contracts.environments import DatabaseConnectionBody, EnvironmentBody, FileLocationBody, PointInTimeBody
from shared.domain.access import SYSTEM
from shared.domain.environments import Environment, EnvironmentState, Registration

DEMO_NAMESPACE = "demo"
DEMO_FILES_CONTAINER = "demo-files"
ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"

SCHEMA = """
CREATE TABLE "mendixsystem$version" (versionnumber varchar(20), lastsyncdate timestamp);
CREATE TABLE "system$filedocument" (
    id bigint PRIMARY KEY,
    "__uuid__" varchar(36) UNIQUE,
    name varchar(400),
    size bigint NOT NULL DEFAULT -1,
    hascontents boolean NOT NULL DEFAULT false,
    deleteafterdownload boolean NOT NULL DEFAULT false,
    changeddate timestamp NOT NULL DEFAULT now()
);
CREATE TABLE "sales$customer" (
    id bigint PRIMARY KEY,
    name varchar(200) NOT NULL,
    email varchar(200),
    createddate timestamp NOT NULL DEFAULT now()
);
CREATE TABLE "sales$order" (
    id bigint PRIMARY KEY,
    customer bigint REFERENCES "sales$customer"(id),
    total numeric(12, 2) NOT NULL,
    status varchar(20) NOT NULL,
    invoice bigint REFERENCES "system$filedocument"(id)
);
CREATE INDEX "idx_sales$order_customer" ON "sales$order"(customer);
"""


@dataclass(frozen=True)
class DemoEnvironment:
    id: str
    display_name: str
    state: EnvironmentState
    model_version: str
    deployment_package: str
    seed: int
    customers: int
    documents: int
    point_in_time: bool = False  # registered with point-in-time recovery when the seed names an archived server


DEMO_ENVIRONMENTS = (
    DemoEnvironment(
        "demo-production", "Production", EnvironmentState.RUNNING, "1.4.0", "demo-app_1.4.0.42.mda", 1, 25, 12, True
    ),
    DemoEnvironment(
        "demo-acceptance", "Acceptance", EnvironmentState.STOPPED, "1.5.0", "demo-app_1.5.0.7.mda", 2, 8, 5
    ),
)


def database_name(prefix: str, environment: DemoEnvironment) -> str:
    return f"{prefix}_{environment.id.removeprefix('demo-')}"


def _file_body(rng: random.Random, index: int) -> bytes:
    size = rng.choice((512, 4096, 65536, 300_000)) + index
    return rng.randbytes(size)


def _create_database(admin_dsn: str, name: str) -> bool:
    """Create the database if missing; True when it was created."""
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def _populate(dsn: str, environment: DemoEnvironment) -> list[tuple[str, bytes, bool]]:
    """Create the schema and rows; returns (uuid, content, should-have-a-blob) per document."""
    rng = random.Random(environment.seed)
    documents: list[tuple[str, bytes, bool]] = []
    with psycopg.connect(dsn) as connection:
        connection.execute(SCHEMA)
        connection.execute('INSERT INTO "mendixsystem$version" VALUES (%s, now())', (environment.model_version,))
        for number in range(1, environment.documents + 1):
            file_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            content = _file_body(rng, number)
            has_contents = number != 2  # document 2 never got contents
            delete_after_download = number == 3  # a temporary export, not part of a backup
            connection.execute(
                'INSERT INTO "system$filedocument" (id, "__uuid__", name, size, hascontents, deleteafterdownload) '
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (number, file_uuid, f"document-{number}.bin", len(content), has_contents, delete_after_download),
            )
            documents.append((file_uuid, content, has_contents))
        for number in range(1, environment.customers + 1):
            connection.execute(
                'INSERT INTO "sales$customer" (id, name, email) VALUES (%s, %s, %s)',
                (number, f"Customer {number}", f"customer{number}@example.com"),
            )
            invoice = number if number <= environment.documents and number not in (2, 3) else None
            connection.execute(
                'INSERT INTO "sales$order" (id, customer, total, status, invoice) VALUES (%s, %s, %s, %s, %s)',
                (number, number, round(rng.uniform(10, 5000), 2), rng.choice(["Open", "Paid", "Shipped"]), invoice),
            )
    # One blob that no database row refers to: it must never be part of a backup.
    orphan = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    documents.append((orphan, b"orphaned file document", True))
    return documents


def _upload_files(services: Services, prefix: str, documents: list[tuple[str, bytes, bool]]) -> None:
    container = services.clients.blob_service.get_container_client(DEMO_FILES_CONTAINER)
    with contextlib.suppress(ResourceExistsError):
        container.create_container()
    for file_uuid, content, has_blob in documents:
        if has_blob:
            container.upload_blob(f"{prefix}{file_uuid}", content, overwrite=True)


def seed(
    services: Services,
    *,
    admin_dsn: str = ADMIN_DSN,
    database_prefix: str = "appbackups_demo",
    point_in_time_server: str | None = None,
) -> list[str]:
    """Seed the demo environments; returns the ids of the environments registered. With
    ``point_in_time_server`` (the archive's name for the server of ``admin_dsn``), demo-production is
    registered with point-in-time recovery. A registration an earlier seed made on another server (or without
    point-in-time recovery) is moved to this one, the rest of it as it is now."""
    admin = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    for environment in DEMO_ENVIRONMENTS:
        name = database_name(database_prefix, environment)
        files_prefix = f"{environment.id}/"
        if _create_database(admin_dsn, name):
            dsn = psycopg.conninfo.make_conninfo(admin_dsn, dbname=name)
            _upload_files(services, files_prefix, _populate(dsn, environment))
        body = EnvironmentBody(
            namespace=DEMO_NAMESPACE,
            app_name="demo-app",
            display_name=environment.display_name,
            state=environment.state,
            database=DatabaseConnectionBody(
                host=str(admin.get("host", "127.0.0.1")),
                port=int(admin.get("port", 5432)),
                database=name,
                user=str(admin.get("user", "postgres")),
            ),
            files=FileLocationBody(container=DEMO_FILES_CONTAINER, prefix=files_prefix),
            model_version=environment.model_version,
            deployment_package=environment.deployment_package,
            point_in_time=PointInTimeBody(server=point_in_time_server)
            if point_in_time_server and environment.point_in_time
            else None,
        )
        registration = body.to_registration()
        existing = services.environment_catalog.find(environment.id)
        if existing is None:
            services.environments.put(environment.id, registration, SYSTEM)
        elif _moved(existing, registration):
            services.environments.put(environment.id, _as_registered(existing, registration), SYSTEM)
    return [environment.id for environment in DEMO_ENVIRONMENTS]


def _moved(existing: Environment, wanted: Registration) -> bool:
    """Registered, idle, and on another database or archive than the seed's."""
    return (
        existing.registered
        and existing.active_restore_id is None
        and (existing.database, existing.point_in_time) != (wanted.database, wanted.point_in_time)
    )


def _as_registered(existing: Environment, wanted: Registration) -> Registration:
    """The registration as it is now, on the seed's database and archive."""
    current = Registration(**{field.name: getattr(existing, field.name) for field in fields(Registration)})
    return replace(current, database=wanted.database, point_in_time=wanted.point_in_time)


def drop(admin_dsn: str = ADMIN_DSN, database_prefix: str = "appbackups_demo") -> None:
    """Drop the demo databases (tests use this to clean up)."""
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        for environment in DEMO_ENVIRONMENTS:
            name = database_name(database_prefix, environment)
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--admin-dsn", default=ADMIN_DSN)
    parser.add_argument("--database-prefix", default="appbackups_demo")
    arguments = parser.parse_args()
    registered = seed(
        build_services(Settings.from_environ()),
        admin_dsn=arguments.admin_dsn,
        database_prefix=arguments.database_prefix,
    )
    print("seeded:", ", ".join(registered))


if __name__ == "__main__":
    main()
