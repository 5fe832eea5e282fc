"""The CLI's global options (--url, --key, --token, --json, --output, …) before and after the command,
against a small local HTTP server that records what it receives."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import typer

from cli import app as cli_app

ITEMS = [
    {
        "id": "demo-production",
        "namespace": "demo",
        "displayName": "Production",
        "state": "Running",
        "modelVersion": "1.0",
        "deploymentPackage": None,
    }
]


class Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        Recorder.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        body = json.dumps({"items": ITEMS}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Recorder.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}/api"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def fresh_environment(monkeypatch):
    for name in ("APPBACKUPS_URL", "APPBACKUPS_FUNCTION_KEY", "APPBACKUPS_TOKEN", "APPBACKUPS_PRINCIPAL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APPBACKUPS_CONFIG", "/nonexistent/appbackups.toml")


@dataclass
class Result:
    exit_code: int
    stdout: str
    output: str


@pytest.fixture
def run(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")

    def invoke(*arguments: str) -> Result:
        with pytest.raises(SystemExit) as exited:
            cli_app.command().main(list(arguments), prog_name="appbackups")
        captured = capsys.readouterr()
        code = exited.value.code
        return Result(code if isinstance(code, int) else 1, captured.out, captured.out + captured.err)

    return invoke


@pytest.mark.parametrize(
    "arguments",
    [
        ("--url", "{api}", "--key", "K1", "--token", "T1", "--json", "envs", "list"),
        ("envs", "list", "--url", "{api}", "--key", "K1", "--token", "T1", "--json"),
        ("--url", "{api}", "--key", "K1", "envs", "list", "-o", "json", "--token", "T1"),
        ("--url", "{api}", "envs", "list", "--output", "json", "--key=K1", "--token=T1"),
    ],
    ids=["before", "after", "mixed", "long-form"],
)
def test_the_global_options_work_before_and_after_the_command(api, run, arguments):
    result = run(*(argument.format(api=api) for argument in arguments))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == ITEMS
    (request,) = Recorder.seen
    assert request["path"] == "/api/environments"
    assert (request["x-functions-key"], request["authorization"]) == ("K1", "Bearer T1")


def test_the_later_option_wins(api, run):
    result = run("--json", "envs", "list", "--url", api, "--output", "table")
    assert result.exit_code == 0, result.output
    assert "demo-production" in result.stdout
    assert not result.stdout.lstrip().startswith("[")
    result = run("--key", "early", "envs", "list", "--url", api, "--key", "late", "--json")
    assert result.exit_code == 0, result.output
    assert Recorder.seen[-1]["x-functions-key"] == "late"


def test_an_unknown_output_format_is_a_usage_error(api, run):
    result = run("envs", "list", "--url", api, "-o", "yaml")
    assert result.exit_code == 2
    assert "yaml" in result.output
    assert Recorder.seen == []


def test_every_command_takes_the_global_options():
    root = cli_app.command()
    for leaf in cli_app.leaves(root):
        options = {opt for param in leaf.params for opt in param.opts}
        assert {"--url", "--key", "--token", "--principal", "--config", "--json", "--output", "-o"} <= options, (
            leaf.name
        )


def test_a_command_may_not_shadow_a_global_option(monkeypatch):
    shadowing = typer.Typer()

    @shadowing.command("clash")
    def clash(output: str = typer.Option("x", "--output")) -> None:
        return

    @shadowing.command("other")
    def other() -> None:
        return

    monkeypatch.setattr(cli_app, "app", _with_callback(shadowing))
    with pytest.raises(RuntimeError, match="'clash' defines --output"):
        cli_app.command()


def _with_callback(typer_app: typer.Typer) -> typer.Typer:
    typer_app.callback()(cli_app.configure)
    return typer_app


def test_shell_completion_covers_commands_and_options_after_them(monkeypatch, capsys):
    for words, cword, expected in (
        ("appbackups backups li", "2", "list"),
        ("appbackups envs list --ou", "3", "--output"),
    ):
        monkeypatch.setenv("_APPBACKUPS_COMPLETE", "complete_bash")
        monkeypatch.setenv("COMP_WORDS", words)
        monkeypatch.setenv("COMP_CWORD", cword)
        with pytest.raises(SystemExit) as exited:
            cli_app.command()(prog_name="appbackups")
        assert exited.value.code == 0
        assert expected in capsys.readouterr().out.split()
