# syntax=docker/dockerfile:1
# appbackups: the function app image. The official Azure Functions Python image, the PostgreSQL client
# tools (pg_dump, pg_restore, psql) from the PostgreSQL Global Development Group (PGDG) repository,
# the runtime dependencies (requirements.txt) and the app. infra/README.md builds it with
# `az acr build`; `docker build -t appbackups .` works the same where a Docker engine exists.
FROM mcr.microsoft.com/azure-functions/python:4-python3.11

# PostgreSQL client majors, installed side by side under /usr/lib/postgresql/<major>/bin.
# pg_dump refuses a server newer than itself, so PG_DEFAULT (first on PATH) is the newest major:
# it must be at least the major of every server the service backs up. The other majors are there
# for APPBACKUPS_POSTGRES_BIN_DIR (infra/README.md, PostgreSQL client).
ARG PG_MAJORS="16 17 18"
ARG PG_DEFAULT=18

# MALLOC_ARENA_MAX=2: glibc would give each thread of the copy pools a malloc arena of its own, and the
# worker's resting memory would keep every arena's high-water mark from job to job (README, bench.soak).
ENV AzureWebJobsScriptRoot=/home/site/wwwroot \
    MALLOC_ARENA_MAX=2 \
    AzureFunctionsJobHost__Logging__Console__IsEnabled=true \
    PATH=/usr/lib/postgresql/${PG_DEFAULT}/bin:${PATH} \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# bash for the RUN steps: the package list below is an array (no word splitting of unquoted strings), and
# pipefail so that a failing command on the left of a pipe fails the build.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# The PGDG repository is configured the way postgresql.org documents it for Debian: with the
# script and signing key that ship in Debian's own postgresql-common package (no key download).
# hadolint DL3008 (pin apt versions) is ignored here: the client majors are pinned by PG_MAJORS, and the
# PGDG and Debian repositories keep only their latest minor release, so a pinned minor would stop building
# at its next update.
# hadolint ignore=DL3008
RUN set -eux; \
    export DEBIAN_FRONTEND=noninteractive; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates postgresql-common; \
    /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y; \
    packages=(); \
    for major in ${PG_MAJORS}; do packages+=("postgresql-client-${major}"); done; \
    apt-get install -y --no-install-recommends "${packages[@]}"; \
    rm -rf /var/lib/apt/lists/*; \
    for tool in pg_dump pg_restore psql; do \
        [[ "$("${tool}" --version)" == *"(PostgreSQL) ${PG_DEFAULT}."* ]]; \
    done

# Dependencies first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt /requirements.txt
RUN python -m pip install -r /requirements.txt

# The app: .dockerignore lets in only function_app.py, host.json, requirements.txt, functions/ and shared/.
COPY . /home/site/wwwroot
