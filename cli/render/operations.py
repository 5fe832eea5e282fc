"""Long work (restores, drills) as steps: their bars while it runs, their table after, a restore's plan."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType

from cli.api.shapes import (
    FileProgressView,
    OperationView,
    PointInTimePlanView,
    PreflightCheckView,
    ProgressView,
    RestorePlanView,
    StepView,
)
from cli.render.tables import fixed, table
from cli.render.units import duration, parse, size, when


def files_text(files: FileProgressView | None) -> str:
    """A backup's or restore's file documents as the bars show them: '1,200 of 20,000 files, 3.1 MiB of
    51.0 MiB, about 1 min 20 s left'."""
    if not files or files["total"] is None:
        return ""
    parts = [f"{files['done']:,} of {files['total']:,} files"]
    if files["bytesTotal"] is not None:
        parts.append(f"{size(files['bytesDone'])} of {size(files['bytesTotal'])}")
    elif files["bytesDone"]:
        parts.append(size(files["bytesDone"]))
    eta = files["etaSeconds"]
    if eta is not None and files["done"] != files["total"]:
        parts.append(f"about {duration(eta)} left")
    return ", ".join(parts)


def load_text(progress: ProgressView) -> str:
    """A step's own tables and bytes, as a restore's database load reports them: 'tables 3 of 12, 40.0 MiB
    of 121.0 MiB'. Empty when it has neither."""
    parts = []
    if progress.get("tablesTotal") is not None:
        parts.append(f"tables {progress.get('tablesDone') or 0:,} of {progress.get('tablesTotal'):,}")
    if progress["bytesTotal"]:
        parts.append(f"{size(progress['bytesDone'] or 0)} of {size(progress['bytesTotal'])}")
    return ", ".join(parts)


def step_bar(step: StepView) -> tuple[float, str]:
    """A step's bar: by its file documents where it has them, else by its own progress; then what it does,
    with its tables and bytes ('loading the database: tables 3 of 12, 40.0 MiB of 121.0 MiB')."""
    progress = step["progress"]
    files = progress.get("files")
    percent = files["percent"] if files and files["done"] else progress["percent"]
    if step["status"] == "Finished":
        percent = 100
    doing = ": ".join(part for part in (progress["detail"], load_text(progress)) if part)
    detail = " ".join(part for part in (step["status"], files_text(files), doing) if part)
    return percent or 0, detail


def took(started: str | None, finished: str | None) -> str:
    if not started:
        return ""
    end = parse(finished) if finished else datetime.now(UTC)
    return duration((end - parse(started)).total_seconds())


def steps_table(document: OperationView) -> RenderableType:
    """Each step: its state, how far, its files, its attempts and how long it took."""
    steps = table("step", fixed("status"), "progress", fixed("took"), fixed("tries"))
    for step in document["steps"]:
        progress = step["progress"]
        percent = progress["percent"]
        shown = ", ".join(
            part
            for part in (
                f"{percent:.0f}%" if percent is not None and step["status"] != "Finished" else "",
                files_text(progress.get("files")),
                load_text(progress) if step["status"] != "Finished" else "",
            )
            if part
        )
        steps.add_row(
            step["title"], step["status"], shown, took(step["startedOn"], step["finishedOn"]), str(step["attempts"])
        )
    return steps


def operation_header(what: str, document: OperationView) -> list[str]:
    lines = [f"{what} {document['id']}: {document['status']}" + (" (undoing)" if document["undoing"] else "")]
    started, finished = document["createdOn"], document["finishedOn"]
    lines.append(
        f"started {when(started)}"
        + (f", ended {when(finished)} after {took(started, finished)}" if finished else f", {took(started, None)} ago")
    )
    if document["stalledSince"]:
        lines.append(f"its worker stopped checking in at {when(document['stalledSince'])}; it resumes by itself")
    return lines


def operation_view(what: str, document: OperationView) -> RenderableType:
    parts: list[Any] = [*operation_header(what, document), "", steps_table(document)]
    for warning in document["warnings"]:
        parts.append(f"warning: {warning}")
    if document["error"]:
        parts.append(error_line(document))
    return Group(*parts)


def error_line(document: OperationView) -> str:
    error = document["error"]
    if not error:
        return ""
    return f"{error['step']}: {error['message']}" if error["step"] else error["message"]


def checks_table(found: list[PreflightCheckView]) -> RenderableType:
    checks = table(fixed("check"), fixed("result"), "reason")
    for check in found:
        checks.add_row(check["name"], check["status"], check["reason"])
    return checks


def plan_view(plan: RestorePlanView) -> RenderableType:
    sizes = plan["sizes"]
    lines: list[Any] = [
        checks_table(plan["checks"]),
        "",
        f"dump {size(sizes['dumpSize'])}, database at backup time {size(sizes['databaseSize'])}, "
        f"file documents to copy: {sizes['filesToCopy']} ({size(sizes['bytesToCopy'])})",
    ]
    if plan["estimatedSeconds"] is not None:
        lines.append(f"estimated: {duration(plan['estimatedSeconds'])} to load the database. {plan['estimateBasis']}")
    for warning in plan["warnings"]:
        lines.append(f"warning: {warning}")
    if plan["stopNeeded"]:
        lines.append(f"stop it first: appbackups envs stop {plan['targetEnvironmentId']}")
    lines.append(f"plan: {plan['outcome']} (nothing was changed)")
    return Group(*lines)


def time_plan_view(plan: PointInTimePlanView) -> RenderableType:
    """A restore to a point in time: its checks, the window it was checked against, the estimate."""
    lines: list[Any] = [
        f"{plan['sourceEnvironmentId']} as of {when(plan['pointInTime'])} into {plan['targetEnvironmentId']}",
        checks_table(plan["checks"]),
        "",
        f"recovery window: {when(plan['earliest'])} … {when(plan['latest'])}",
    ]
    for gap in plan["gaps"]:
        lines.append(f"gap: {when(gap['start'])} … {when(gap['end'])}: {gap['reason']}")
    if plan["estimatedSeconds"] is not None:
        lines.append(f"estimated: {duration(plan['estimatedSeconds'])} to load the database. {plan['estimateBasis']}")
    for warning in plan["warnings"]:
        lines.append(f"warning: {warning}")
    if plan["stopNeeded"]:
        lines.append(f"stop it first: appbackups envs stop {plan['targetEnvironmentId']}")
    lines.append(f"plan: {plan['outcome']} (nothing was changed)")
    return Group(*lines)
