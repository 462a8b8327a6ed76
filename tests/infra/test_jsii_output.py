"""jsii's Node process's stderr reaches the developer as text: its end-of-life banner is not b'...'."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys

from infra.jsii_output import decode_jsii_stderr
from tests.conftest import REPO_ROOT

BANNER = (
    b"!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    b"!!  Node 20 is end-of-life and not supported anymore by this software since 2026-10-30.  !!\n"
)


def test_a_plain_line_from_node_is_written_as_text_and_console_output_as_before(monkeypatch):
    from jsii._kernel.providers import process

    # given jsii's stderr thread with our reader in place, and what Node writes: its banner (plain
    # lines) and a program's console output (jsii's JSON lines)
    assert decode_jsii_stderr()
    stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stderr", stderr)
    console = json.dumps({"stderr": base64.b64encode(b"console.error output\n").decode()}).encode() + b"\n"
    # when the thread reads them
    process.stderr_sink(io.BytesIO(BANNER + console))
    stderr.flush()
    # then each is written once, as the text it is
    assert stderr.buffer.getvalue() == BANNER + b"console.error output\n"  # type: ignore[attr-defined]


def test_placing_it_twice_wraps_jsiis_reader_once():
    from jsii._kernel.providers import process

    assert decode_jsii_stderr()
    first = process.stderr_sink
    assert decode_jsii_stderr()
    assert process.stderr_sink is first


def test_synthesis_prints_no_python_byte_strings():
    # given the CDK app as `make synth` imports it (jsii's Node process starts with aws_cdk)
    program = "import infra.app\nimport aws_cdk\naws_cdk.App()\n"
    finished = subprocess.run(  # noqa: S603 - our own interpreter and a literal program
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=True,
    )
    # then whatever Node says (the end-of-life banner, on a Node release jsii calls so) is text
    assert "b'" not in finished.stderr
