"""Archive benchmark: a Full Snapshot download against `tar czf` of the same data on local disk, and its
ingest as an upload, in one run. Method: bench/README.md."""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import requests

from bench.common import (
    Bench,
    LoadWatch,
    backup_through_api,
    bench_parser,
    bench_services,
    drop_database,
    generate_dataset,
    machine,
    peak_rss_mib,
    peak_rss_reset,
    register,
    write_results,
)
from shared.archives.fullsnapshot import tree_path
from shared.backups.layout import FILES, FileEntry, backup_folder
from shared.dumps.reader import DumpReader
from tests.support.restoring import operation_catalog

MIB = 1024 * 1024
# A minute-long job polled ten times a second would spend the two cores on answering the polls.
POLL_SECONDS = 0.5


def lay_out_on_disk(bench: Bench, details: dict, directory: Path) -> None:
    stores = bench.services.stores
    folder = backup_folder(details["namespace"], details["environmentId"], details["id"])
    (directory / "db").mkdir(parents=True)
    reader = DumpReader(stores.backups, stores.content, details["namespace"], folder)
    with open(directory / "db" / "db.backup", "wb") as dump:
        for chunk in reader.chunks():
            dump.write(chunk)
    (directory / ".metadata").write_text('{"modelVersion": "1.0.0"}')
    for line in stores.backups.read_lines(folder + FILES):
        if not line:
            continue
        entry = FileEntry.from_line(line)
        path = directory / tree_path(entry.uuid)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as target:
            for chunk in stores.content.read_chunks(entry.object):
                target.write(chunk)


def tar_czf(directory: Path, output: Path) -> float:
    subprocess.run(["sync"], check=False)
    started = time.perf_counter()
    subprocess.run(["tar", "czf", str(output), "-C", str(directory), "."], check=True)
    return time.perf_counter() - started


def download_through_api(bench: Bench, environment_id: str, backup_id: str) -> tuple[float, dict]:
    url = f"{bench.api}/environments/{environment_id}/backups/{backup_id}/download"
    started = time.perf_counter()
    requests.post(url, json={"dataType": "files_and_database"}, timeout=60).raise_for_status()
    while True:
        status = requests.get(url, params={"dataType": "files_and_database"}, timeout=60).json()
        if status["status"] != "Processing":
            break
        time.sleep(POLL_SECONDS)
    elapsed = time.perf_counter() - started
    if status["status"] != "Ready":
        raise RuntimeError(f"download failed: {status}")
    return elapsed, status


def upload_through_api(bench: Bench, environment_id: str, archive: Path) -> float:
    upload = requests.post(f"{bench.api}/environments/{environment_id}/uploads", timeout=60).json()
    from azure.storage.blob import BlobClient

    with open(archive, "rb") as content:
        BlobClient.from_blob_url(upload["uploadUrl"]).upload_blob(content, overwrite=True, max_concurrency=4)
    base = bench.api.removesuffix("/api")
    started = time.perf_counter()
    completed = requests.post(base + upload["completeUrl"], timeout=60)
    completed.raise_for_status()
    location = base + completed.headers["Location"]
    while True:
        details = requests.get(location, timeout=60).json()
        if details["status"] != "Processing":
            break
        time.sleep(POLL_SECONDS)
    elapsed = time.perf_counter() - started
    if details["status"] != "Finished":
        raise RuntimeError(f"upload failed: {details['statusMessage']}")
    return elapsed


def main(argv: list[str] | None = None) -> dict:
    arguments = bench_parser(__doc__).parse_args(argv)
    load = LoadWatch()
    with (
        tempfile.TemporaryDirectory(prefix="appbackups-bench-") as work,
        bench_services(Path(work), arguments.storage) as bench,
    ):
        print(f"generating {arguments.rows} rows and {arguments.files} file documents …", flush=True)
        dataset = generate_dataset(bench.services, rows=arguments.rows, files=arguments.files)
        try:
            source = f"bench-source-{uuid.uuid4().hex[:6]}"
            register(bench, source, f"bench-archive-{uuid.uuid4().hex[:4]}", dataset)
            _, details = backup_through_api(bench, source)
            input_bytes = details["dumpSize"] + details["filesSize"]
            layout = Path(work) / "layout"
            lay_out_on_disk(bench, details, layout)
            pid = bench.host.process.pid
            baseline_runs, download_runs, upload_runs, peaks = [], [], [], []
            archive = Path(work) / "download.tar.gz"
            for round_number in range(arguments.repeat):
                print(f"round {round_number + 1}: tar czf …", flush=True)
                baseline_runs.append(tar_czf(layout, Path(work) / "baseline.tar.gz"))
                print(f"round {round_number + 1}: download through the API …", flush=True)
                peak_rss_reset(pid)
                environment = f"bench-dl-{uuid.uuid4().hex[:6]}"
                seconds, status = download_through_api(bench, source, details["id"])
                peaks.append(peak_rss_mib(pid))
                download_runs.append(seconds)
                with requests.get(status["url"], timeout=600, stream=True) as response, open(archive, "wb") as target:
                    for chunk in response.iter_content(4 * MIB):
                        target.write(chunk)
                archive_bytes = archive.stat().st_size
                _expire_download(bench, source, details["id"])  # so that the next round builds it again
                print(f"round {round_number + 1}: upload ingest through the API …", flush=True)
                register(bench, environment, f"bench-ingest-{uuid.uuid4().hex[:6]}", dataset)
                peak_rss_reset(pid)
                upload_runs.append(upload_through_api(bench, environment, archive))
                peaks.append(peak_rss_mib(pid))
        finally:
            drop_database(dataset.database)
    baseline, download, upload = (statistics.median(runs) for runs in (baseline_runs, download_runs, upload_runs))
    results = {
        "benchmark": "archive",
        "machine": machine(),
        "loadAverage": load.figures(),
        "target": {"download_over_tar_czf_throughput": ">= 0.8"},
        "rows": arguments.rows,
        "files": arguments.files,
        "inputBytes": input_bytes,
        "archiveBytes": archive_bytes,
        "tarCzfSeconds": round(baseline, 2),
        "downloadSeconds": round(download, 2),
        "uploadIngestSeconds": round(upload, 2),
        "tarCzfMiBps": round(input_bytes / MIB / baseline, 1),
        "downloadMiBps": round(input_bytes / MIB / download, 1),
        "uploadIngestMiBps": round(input_bytes / MIB / upload, 1),
        "ratio_download_over_tar_czf": round(baseline / download, 3),
        "workerPeakRssMiB": round(max(peaks), 1),
        "runs": {
            "tarCzf": [round(v, 2) for v in baseline_runs],
            "download": [round(v, 2) for v in download_runs],
            "uploadIngest": [round(v, 2) for v in upload_runs],
        },
    }
    path = write_results("archive", results, arguments.results)
    print(
        f"tar czf {results['tarCzfMiBps']} MiB/s, download {results['downloadMiBps']} MiB/s "
        f"(ratio {results['ratio_download_over_tar_czf']}), upload ingest {results['uploadIngestMiBps']} MiB/s, "
        f"peak {results['workerPeakRssMiB']} MiB\nwritten to {path}"
    )
    return results


def _expire_download(bench: Bench, environment_id: str, backup_id: str) -> None:
    """Let the next round build the archive again: mark this one removed, as the clean-up would."""
    from dataclasses import replace

    download = bench.services.downloads.status(environment_id, backup_id, None)
    catalog = operation_catalog(bench.services)
    operation = catalog.get(download.operation.id)
    catalog.save(replace(operation, parameters={**operation.parameters, "archiveRemoved": True}))


if __name__ == "__main__":
    main()
