"""psql may exit (ON_ERROR_STOP) between our check that it runs and our next command: that is its error to
report, not a broken pipe of ours (a retried "Unexpected error" in CI)."""

import os
import subprocess
import sys

from shared.adapters.postgres.restore import _Session


def test_a_psql_that_has_exited_gets_no_command_and_no_answer():
    commands_read, commands_write = os.pipe()
    answers_read, answers_write = os.pipe()
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    os.close(commands_read)  # what psql's exit does to the pipe we write its commands into
    try:
        session = _Session(commands_write, answers_read, answers_write, exited, None)
        assert session.send("COMMIT;\n") is False
        assert session.ask("SELECT txid_current()") is None
    finally:
        for descriptor in (commands_write, answers_read, answers_write):
            os.close(descriptor)
