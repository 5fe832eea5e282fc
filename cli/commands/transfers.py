"""appbackups download and appbackups upload: archives between this machine and storage, through the SAS
URLs the API hands out; an interrupted one is resumed by the same command."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from cli.api.shapes import DataType, DownloadView
from cli.client import FAILED, ApiError
from cli.commands.backups import Env, backup_path, finish
from cli.journal import UploadJournal
from cli.render.units import size, when
from cli.session import current, emit, err, fail, out
from cli.transfers import BLOCK, StaleBlocks, download_file, upload_file
from cli.watch import follow_backup, poll, waiting_with_cancel


def bytes_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
    )


def _prepared(environment: str, backup_id: str, data_type: DataType) -> DownloadView:
    """The archive, once it is Ready (preparing it first if need be)."""
    session = current()
    api = session.api
    document = api.prepare_download(environment, backup_id, data_type)
    expected = document.get("expectedSize")
    if expected is not None and not session.as_json:
        about = "about " if document.get("expectedSizeIsEstimate", True) else ""
        err.print(f"the archive is {about}{size(expected)}{' (an estimate)' if about else ''}")
    if document["status"] != "Ready":

        def follow(interrupted: threading.Event) -> DownloadView:
            with err.status("preparing the archive") as status:

                def show(document: DownloadView) -> None:
                    progress = document.get("progress")
                    status.update(f"preparing the archive: {(progress['percent'] if progress else None) or 0:.0f}%")

                return poll(
                    lambda: api.download(environment, backup_id, data_type),
                    done=lambda document: document["status"] != "Processing",
                    on_update=show,
                    interrupted=interrupted,
                    what="the archive",
                )

        document = waiting_with_cancel(
            "download", follow, lambda: api.cancel_download(environment, backup_id, data_type)
        )
    if document["status"] != "Ready":
        error = document.get("error")
        message = error["message"] if error else document["status"]
        raise ApiError(f"the download is {document['status']}: {message}", exit_code=FAILED)
    return document


def download(
    backup: str,
    env: Env = None,
    database_only: Annotated[bool, typer.Option("--database-only", help="The dump alone (.backup).")] = False,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="File to write (default: the archive's name).")
    ] = None,
) -> None:
    """Prepare a download (Full Snapshot .tar.gz, or the dump alone), wait for it, fetch it. Fetched in
    parallel blocks; interrupted, the same command goes on from what FILE.part holds."""
    session = current()
    data_type: DataType = "database_only" if database_only else "files_and_database"
    try:
        environment, backup_id = backup_path(backup, env)
        document = _prepared(environment, backup_id, data_type)
        target = file or Path(document.get("fileName") or f"{backup_id}.tar.gz")
        url = document.get("url")
        if not url:
            raise ApiError("the download is Ready but has no URL", exit_code=FAILED)
        with bytes_progress() as progress:
            task = progress.add_task(f"downloading {target.name}", total=document.get("size"))
            download_file(
                url,
                target,
                on_start=lambda total: progress.update(task, total=total),
                on_progress=lambda n: progress.advance(task, n),
                sha256=document.get("sha256"),
            )
    except ApiError as error:
        fail(error)
    except KeyboardInterrupt:
        err.print("interrupted; the same command goes on from where it stopped")
        raise typer.Exit(130) from None
    if session.as_json:
        emit({**document, "path": str(target)})
    else:
        until = when(document.get("expiresOn"))
        out.print(f"saved {target} ({size(target.stat().st_size)}); the link stays valid until {until}")


def upload(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    env: Annotated[str, typer.Option("--env", "-e", help="The environment the backup is for.")],
    comment: Annotated[str, typer.Option(help="The new backup's comment (default: Uploaded FILE).")] = "",
    wait: Annotated[bool, typer.Option(help="Wait until the new backup is Finished or refused.")] = False,
) -> None:
    """Upload a Full Snapshot .tar.gz (or a dump) as a new backup of an environment. Sent in parallel blocks;
    interrupted, the same command resumes it (while its upload URL lasts)."""
    session = current()
    api = session.api
    journal = UploadJournal(file, env, comment)
    try:
        if journal.resumable():
            err.print(f"resuming the upload of {file.name}")
        else:
            started = api.start_upload(env, file.name, comment)
            journal.begin(started["uploadId"], started["uploadUrl"], started["expiresOn"], BLOCK)
        _send(journal, file)
        accepted = api.complete_upload(env, journal.upload_id)
        journal.forget()
        document = accepted["backup"]
        if wait:
            document = follow_backup(env, accepted["backupId"])
    except ApiError as error:
        if journal.resumable():
            err.print("the same command resumes the upload")
        fail(error)
    except KeyboardInterrupt:
        err.print("interrupted; the same command resumes the upload")
        raise typer.Exit(130) from None
    if wait:
        finish(document)
    elif session.as_json:
        emit(document)
    else:
        out.print(f"uploaded; backup {document['id']} is being checked: appbackups backups show {env}/{document['id']}")


def _send(journal: UploadJournal, file: Path) -> None:
    total = file.stat().st_size
    block_size = journal.block_size
    with bytes_progress() as progress:
        task = progress.add_task(f"uploading {file.name}", total=total)
        for attempt in range(2):
            staged = journal.staged if attempt == 0 else set()
            sent = sum(min(block_size, total - index * block_size) for index in staged)
            progress.update(task, completed=sent)
            try:
                upload_file(
                    journal.upload_url,
                    file,
                    on_progress=lambda n: progress.advance(task, n),
                    block_size=block_size,
                    staged=staged,
                    on_staged=journal.record,
                )
                return
            except StaleBlocks:
                journal.restart()
