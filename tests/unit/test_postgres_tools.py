from shared.adapters.postgres.dump import failure_reason
from shared.adapters.postgres.tools import tool_dir


def install(root, *majors):
    for major in majors:
        bin_dir = root / str(major) / "bin"
        bin_dir.mkdir(parents=True)
        for tool in ("pg_dump", "pg_restore", "psql"):
            (bin_dir / tool).write_text("")


def test_a_configured_directory_wins(tmp_path):
    install(tmp_path, 16, 17)
    assert tool_dir(160004, "/opt/pg/bin", root=tmp_path) == "/opt/pg/bin"


def test_the_servers_own_major_is_preferred(tmp_path):
    install(tmp_path, 15, 16, 17)
    assert tool_dir(160004, root=tmp_path) == str(tmp_path / "16" / "bin")


def test_else_the_closest_newer_client(tmp_path):
    install(tmp_path, 14, 17, 18)
    assert tool_dir(160004, root=tmp_path) == str(tmp_path / "17" / "bin")
    assert tool_dir(190000, root=tmp_path) is None  # nothing new enough here: whatever PATH has


def test_without_a_server_the_newest_client(tmp_path):
    install(tmp_path, 15, 18, 16)
    assert tool_dir(None, root=tmp_path) == str(tmp_path / "18" / "bin")
    assert tool_dir(None, root=tmp_path / "missing") is None


def test_a_failed_dump_is_explained_by_its_error_line_not_the_query_it_quotes() -> None:
    stderr = (
        "pg_dump: error: query failed: FATAL:  terminating connection due to administrator command\n"
        "pg_dump: detail: Query was: SELECT p.tableoid, p.oid FROM pg_proc p\n"
        "  OR p.proacl IS DISTINCT FROM pip.initprivs)\n"
    )
    assert failure_reason(stderr, 1) == (
        "pg_dump: error: query failed: FATAL:  terminating connection due to administrator command"
    )
    assert failure_reason("", 2) == "exit code 2"
    assert failure_reason("pg_dump: something odd\n", 1) == "pg_dump: something odd"
