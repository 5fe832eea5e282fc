"""HTTP end to end through a running DevHost serving the fixture app (tests/support/devhost_app)."""

from __future__ import annotations

import concurrent.futures
import errno
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devhost import DevHost
from tests.support.devhost_fixture import make_app_dir, read_records
from tests.support.polling import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def record_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("records") / "records.jsonl"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, record_file: Path) -> Iterator[DevHost]:
    app_dir = make_app_dir(tmp_path_factory.mktemp("app"), {"DEVHOST_FIXTURE_RECORD": str(record_file)})
    devhost = DevHost(app_dir, port=0, timers=False, queues=False).start()
    try:
        yield devhost
    finally:
        devhost.stop(timeout=10)


def exchange(host: DevHost, request: bytes) -> tuple[bytes, bytes]:
    """Send raw bytes, read until the server closes the connection; the response head and body."""
    with socket.create_connection(("127.0.0.1", host.port), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return head, body


def get_problem(response: requests.Response) -> dict[str, object]:
    assert response.headers["Content-Type"] == "application/problem+json"
    return response.json()


def test_request_reaches_the_function_with_route_query_headers_and_body(host: DevHost) -> None:
    response = requests.post(
        f"{host.api_url}/echo/a/b%20c?x=1&x=2&empty=&q=hello%20world",
        data=b'{"hello": "world"}',
        headers={"X-Custom": "value", "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["X-Echo"] == "yes"
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert int(response.headers["Content-Length"]) == len(response.content)
    seen = response.json()
    assert seen["method"] == "POST"
    assert seen["url"] == f"{host.url}/api/echo/a/b%20c?x=1&x=2&empty=&q=hello%20world"
    assert seen["params"] == {"x": "1", "empty": "", "q": "hello world"}
    assert seen["route_params"] == {"rest": "a/b c"}
    assert seen["headers"]["x-custom"] == "value"
    assert seen["body"] == '{"hello": "world"}'


def test_chunked_request_body(host: DevHost) -> None:
    response = requests.put(f"{host.api_url}/echo/x", data=iter([b"part one, ", b"part two"]), timeout=10)
    assert response.status_code == 200
    assert response.json()["body"] == "part one, part two"
    assert response.json()["method"] == "PUT"


def test_a_malformed_chunked_body_is_a_400_problem(host: DevHost) -> None:
    head, body = exchange(
        host, b"PUT /api/echo/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
    )
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"Content-Type: application/problem+json" in head
    assert json.loads(body)["code"] == "invalid_request"


def test_clients_that_keep_their_connection_alive_are_served_request_after_request(host: DevHost) -> None:
    with requests.Session() as session:
        for number in range(3):
            assert session.get(f"{host.api_url}/items/{number}", timeout=10).text == f"item {number}"
    # The whole answer, then the server closes the connection (werkzeug's server does not keep it alive).
    head, body = exchange(host, b"GET /api/items/9 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"Connection: close" in head
    assert body == b"item 9"


def test_a_literal_route_beats_a_parameter_and_the_method_picks_the_function(host: DevHost) -> None:
    assert requests.get(f"{host.api_url}/items/new", timeout=10).text == "new item form"
    assert requests.get(f"{host.api_url}/Items/NEW", timeout=10).text == "new item form"
    assert requests.get(f"{host.api_url}/items/42", timeout=10).text == "item 42"
    assert requests.get(f"{host.api_url}/items/blue%20shoes", timeout=10).text == "item blue shoes"
    assert requests.delete(f"{host.api_url}/items/42", timeout=10).text == "deleted item 42"
    # items/new takes GET only: a DELETE goes on to items/{id}
    assert requests.delete(f"{host.api_url}/items/new", timeout=10).text == "deleted item new"


def test_wrong_method_is_405_with_allow_header(host: DevHost) -> None:
    response = requests.post(f"{host.api_url}/items/42", timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == "DELETE, GET"
    body = get_problem(response)
    assert body["type"] == "about:blank"
    assert body["title"] == "Method Not Allowed"
    assert body["status"] == 405
    assert body["code"] == "method_not_allowed"
    assert "POST" in str(body["detail"])


def test_head_is_405_for_a_get_only_function_and_has_no_body(host: DevHost) -> None:
    response = requests.head(f"{host.api_url}/items/42", timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == "DELETE, GET"
    assert response.content == b""


def test_unknown_route_is_404_problem(host: DevHost) -> None:
    for url in (f"{host.api_url}/nothing/here", f"{host.url}/not-under-the-prefix", f"{host.api_url}/items/42/parts"):
        response = requests.get(url, timeout=10)
        assert response.status_code == 404
        body = get_problem(response)
        assert (body["status"], body["code"], body["title"]) == (404, "route_not_found", "Not Found")


def test_status_headers_and_content_type_from_the_response(host: DevHost) -> None:
    response = requests.post(f"{host.api_url}/created", data=b"payload", timeout=10)
    assert response.status_code == 201
    assert response.headers["Location"] == "/api/items/7"
    assert response.headers["Content-Type"] == "application/vnd.test+json"
    assert response.content == b"payload"


def test_async_function_and_charset(host: DevHost) -> None:
    response = requests.get(f"{host.api_url}/async/World", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=latin-1"
    assert response.text == "hello World"


def test_function_returning_a_string_and_settings_from_local_settings(host: DevHost) -> None:
    response = requests.get(f"{host.api_url}/setting", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.text == "from local.settings.json"


def test_exception_is_500_without_details_and_traceback_goes_to_the_log(
    host: DevHost, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="devhost"):
        response = requests.get(f"{host.api_url}/boom", timeout=10)
    assert response.status_code == 500
    body = get_problem(response)
    assert (body["status"], body["code"], body["title"]) == (500, "function_failed", "Internal Server Error")
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    assert "Executed 'Functions.boom' (Failed, RuntimeError, Trigger=httpTrigger" in caplog.text
    assert "secret internal detail" in caplog.text  # the traceback is in the host log


def test_invocation_log_line(host: DevHost, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="devhost"):
        requests.get(f"{host.api_url}/items/7", timeout=10)
    lines = [record.getMessage() for record in caplog.records if "Functions.item_by_id" in record.getMessage()]
    assert len(lines) == 1
    assert lines[0].startswith("Executed 'Functions.item_by_id' (Succeeded, Trigger=httpTrigger, Id=")
    assert "Duration=" in lines[0]


def test_requests_are_served_concurrently(host: DevHost) -> None:
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: requests.get(f"{host.api_url}/slow?seconds=1", timeout=10), range(4)))
    elapsed = time.monotonic() - started
    assert [response.text for response in responses] == ["done"] * 4
    assert elapsed < 2.5, f"four 1-second requests took {elapsed:.1f}s: not concurrent"


def test_admin_api_runs_a_timer_function(host: DevHost, record_file: Path) -> None:
    response = requests.post(f"{host.url}/admin/functions/tick", json={"input": ""}, timeout=10)
    assert response.status_code == 202
    entries = wait_for(lambda: [e for e in read_records(record_file) if e["fn"] == "tick"], timeout=5)
    assert entries[-1]["past_due"] is False


def test_admin_api_runs_a_queue_function_with_the_input_as_message_body(host: DevHost, record_file: Path) -> None:
    response = requests.post(f"{host.url}/admin/functions/WORK", json={"input": "from admin"}, timeout=10)
    assert response.status_code == 202
    entry = wait_for(
        lambda: next((e for e in read_records(record_file) if e.get("body") == "from admin"), None), timeout=5
    )
    assert entry["fn"] == "work"
    assert entry["dequeue_count"] == 1


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/admin/functions/nope", {"input": ""}, 404, "function_not_found"),
        ("POST", "/admin/functions/echo", {"input": ""}, 400, "not_runnable"),
        ("POST", "/admin/functions/tick", ["not", "an", "object"], 400, "invalid_request"),
        ("POST", "/admin/functions/tick", {"input": 5}, 400, "invalid_request"),
        ("GET", "/admin/functions/tick", None, 405, "method_not_allowed"),
    ],
)
def test_admin_api_errors(host: DevHost, method: str, path: str, body: object, status: int, code: str) -> None:
    response = requests.request(method, f"{host.url}{path}", data=json.dumps(body) if body else None, timeout=10)
    assert response.status_code == status
    assert get_problem(response)["code"] == code


def test_a_port_in_use_is_an_os_error_for_the_caller(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        devhost = DevHost(make_app_dir(tmp_path / "app"), port=busy.getsockname()[1], timers=False, queues=False)
        with pytest.raises(OSError, match="in use") as caught:
            devhost.start()
    assert caught.value.errno == errno.EADDRINUSE


def test_stop_closes_idle_connections_and_leaves_no_thread_behind(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    devhost = DevHost(make_app_dir(tmp_path / "app"), port=0, timers=False, queues=False).start()
    idle = socket.create_connection(("127.0.0.1", devhost.port), timeout=10)  # a browser's preconnect, say
    try:
        assert requests.get(f"{devhost.api_url}/items/1", timeout=10).text == "item 1"
        assert devhost.stop(timeout=5)
        assert idle.recv(1) == b""  # closed by the host, not left waiting for a request
    finally:
        idle.close()
    wait_for(lambda: set(threading.enumerate()) <= before, timeout=5)
