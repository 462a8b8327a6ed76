"""What the jsii runtime (the Node process behind aws-cdk-lib) writes to stderr, shown as text.

jsii's Python side reads its Node process's stderr line by line: a JSON line is console output it
decodes and writes, and any other line it prints as Python bytes. Node's own warnings are such
lines; on a Node release jsii calls end-of-life (or untested), ``make synth`` and the CDK tests show
its eleven-line banner as ``b'!!  Node 20 is end-of-life ...  !!\\n'``. :func:`decode_jsii_stderr`
hands those lines to jsii's own console path, so the banner is printed once, as the text it is.

Not silenced: it says the Node release in use will stop working with aws-cdk-lib; upgrade Node to
one of the releases it lists. jsii's runtime does read ``JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION``
(a comma-separated list of Node major versions whose end-of-life banner it leaves out: ``20``), which
a developer who has seen it may set; the variable is jsii's, found in its runtime (``@jsii/check-node``)
and its repository's discussion, not in the CDK's documentation (unverified beyond jsii 1.142).

This wraps the reader jsii's stderr thread reads (``jsii._kernel.providers.process.stderr_sink``, a
private name): where that name is missing (another jsii), nothing changes. Call it before anything
imports ``aws_cdk`` (which starts the Node process).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import IO, Any

_WRAPPED = "_ledgerlink_decodes_plain_lines"


class _PlainLinesAsConsole:
    """A reader of the Node process's stderr that turns each non-JSON line into the JSON console line
    jsii decodes and writes (``{"stderr": <base64>}``); JSON lines pass unchanged."""

    def __init__(self, reader: IO[bytes]) -> None:
        self._reader = reader

    def readline(self) -> bytes:
        line = self._reader.readline()
        if not line:
            return line
        try:
            if isinstance(json.loads(line), dict):
                return line
        except ValueError:
            pass
        return json.dumps({"stderr": base64.b64encode(line).decode("ascii")}).encode("ascii") + b"\n"


def decode_jsii_stderr() -> bool:
    """Make jsii write its Node process's plain stderr lines as text; True when it is in place."""
    try:
        from jsii._kernel.providers import process
    except ImportError:  # no jsii (the Lambda asset, a machine without the CDK)
        return False
    original: Callable[[IO[bytes]], None] | None = getattr(process, "stderr_sink", None)
    if original is None:
        return False
    if getattr(original, _WRAPPED, False):
        return True

    def stderr_sink(reader: IO[bytes]) -> None:
        original(_PlainLinesAsConsole(reader))  # type: ignore[arg-type]

    sink: Any = stderr_sink
    setattr(sink, _WRAPPED, True)
    process.stderr_sink = sink
    return True
