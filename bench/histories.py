"""The long run of the histories (tests/support/histories.py): random seeds, one after another, for N minutes, on
an Azurite of its own and the local PostgreSQL. Writes what it tried and found — histories, steps by rule,
failures with the history Hypothesis shrank them to, durations — to bench/results/histories.json, again every
minute, so a run stopped early still leaves its figures.

    .venv/bin/python -m bench.histories --minutes 120 [--steps 25] [--per-seed 5]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import tempfile
import threading
import time
import traceback
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import ADMIN_DSN, RESULTS, create_database, drop_database
from shared.bootstrap import build_services
from shared.config import STORAGE_CONNECTION, Settings
from tests.support.histories import World, run_histories, steps_of
from tools import azurite
from tools.provision import provision

WRITE_EVERY_SECONDS = 60.0


class Run:
    """The figures so far, written whole each time."""

    def __init__(self, world: World, out: Path, minutes: float, steps: int, per_seed: int) -> None:
        self.world = world
        self.out = out
        self.started = time.monotonic()
        self.started_on = datetime.now(UTC)
        self.settings = {"minutes": minutes, "steps": steps, "perSeed": per_seed}
        self.code = code_version()
        self.seeds: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        self.finished = False
        self.lock = threading.Lock()

    def to_json(self) -> dict[str, Any]:
        return {
            "startedOn": self.started_on.isoformat(),
            "writtenOn": datetime.now(UTC).isoformat(),
            "secondsRun": round(time.monotonic() - self.started, 1),
            "finished": self.finished,
            "settings": self.settings,
            "code": self.code,
            **self.world.tally.to_json(),
            "seeds": self.seeds,
            "failures": self.failures,
        }

    def write(self) -> None:
        with self.lock:
            document = self.to_json()
            self.out.parent.mkdir(parents=True, exist_ok=True)
            partial = self.out.with_suffix(".json.partial")
            partial.write_text(json.dumps(document, indent=2) + "\n")
            partial.replace(self.out)


def code_version() -> dict[str, Any]:
    """The commit the run ran, and the product files changed in the working tree since it."""
    root = Path(__file__).resolve().parent.parent

    def git(*arguments: str) -> str:
        return subprocess.run(["git", *arguments], cwd=root, capture_output=True, text=True, check=False).stdout

    changed = [line[3:] for line in git("status", "--porcelain", "--", "shared").splitlines() if line.strip()]
    return {"commit": git("rev-parse", "HEAD").strip(), "changedFiles": changed}


def failure_of(error: BaseException) -> dict[str, Any]:
    """The error and the shrunk history Hypothesis printed for it (its notes: the steps, as code)."""
    notes = [str(note) for note in getattr(error, "__notes__", [])]
    return {
        "error": "".join(traceback.format_exception_only(error)).strip(),
        "history": "\n".join(notes),
        "steps": steps_of(notes),  # for tests.support.histories.replay: the regression test
        "traceback": "".join(traceback.format_exception(error))[-6000:],
    }


def run(
    minutes: float,
    *,
    steps: int = 25,
    per_seed: int = 5,
    histories: int | None = None,
    out: Path | None = None,
    connection_string: str | None = None,
) -> dict[str, Any]:
    """Seeds until ``minutes`` have passed (or ``histories`` histories have run); the figures, also written.
    With ``connection_string``, on that Azurite (provisioned) instead of one of its own."""
    out = out or RESULTS / "histories.json"
    created: list[str] = []

    def new_database() -> str:
        name = f"appbackups_hist_{uuid.uuid4().hex[:10]}"
        create_database(name)
        created.append(name)
        return name

    def forget_database(name: str) -> None:
        drop_database(name)
        if name in created:
            created.remove(name)

    with tempfile.TemporaryDirectory(prefix="bench-histories-") as work:
        storage = None
        if connection_string is None:
            storage = azurite.start(Path(work) / "azurite", log_file=Path(work) / "azurite.log")
            connection_string = storage.connection_string
        stop_writing = threading.Event()
        try:
            services = build_services(Settings.from_environ({STORAGE_CONNECTION: connection_string}))
            provision(services.clients)
            world = World(connection_string, ADMIN_DSN, new_database, forget_database)
            figures = Run(world, out, minutes, steps, per_seed)

            def write_every_minute() -> None:
                while not stop_writing.wait(WRITE_EVERY_SECONDS):
                    figures.write()

            threading.Thread(target=write_every_minute, daemon=True).start()
            deadline = time.monotonic() + minutes * 60
            try:
                while time.monotonic() < deadline and (histories is None or world.tally.histories < histories):
                    seed_value = random.getrandbits(32)
                    began, histories_before = time.monotonic(), world.tally.histories
                    entry: dict[str, Any] = {"seed": seed_value, "outcome": "passed"}
                    try:
                        run_histories(
                            world, examples=per_seed, steps=steps, seed_value=seed_value, remember_failures=False
                        )
                    except Exception as error:
                        entry["outcome"] = "failed"
                        figures.failures.append({"seed": seed_value, **failure_of(error)})
                    entry["seconds"] = round(time.monotonic() - began, 1)
                    entry["histories"] = world.tally.histories - histories_before
                    figures.seeds.append(entry)
                    figures.write()
                figures.finished = True
            finally:
                figures.write()
            return figures.to_json()
        finally:
            stop_writing.set()
            for name in list(created):
                drop_database(name)
            if storage is not None:
                storage.stop()


def stop(signum: int, frame: object) -> None:
    """SIGTERM ends the run as Ctrl-C does: the figures so far are written, the databases dropped."""
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, required=True, help="how long to run")
    parser.add_argument("--steps", type=int, default=25, help="steps per history, at most")
    parser.add_argument("--per-seed", type=int, default=5, help="histories per seed (Hypothesis examples)")
    parser.add_argument("--histories", type=int, default=None, help="stop after this many histories")
    parser.add_argument("--out", type=Path, default=None, help="where to write (bench/results/histories.json)")
    arguments = parser.parse_args()
    signal.signal(signal.SIGTERM, stop)
    try:
        figures = run(
            arguments.minutes,
            steps=arguments.steps,
            per_seed=arguments.per_seed,
            histories=arguments.histories,
            out=arguments.out,
        )
    except KeyboardInterrupt:
        print(f"stopped early; the figures so far are in {arguments.out or RESULTS / 'histories.json'}")
        raise SystemExit(130) from None
    print(json.dumps({key: figures[key] for key in ("histories", "stepsByRule", "backupsChecked")}, indent=2))
    print(f"{len(figures['failures'])} failures; written to {arguments.out or RESULTS / 'histories.json'}")


if __name__ == "__main__":
    main()
