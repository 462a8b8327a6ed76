"""`make bench`: run every tests/bench/bench_*.py module's ``main()`` and record the numbers.

Contract for a benchmark module: ``main() -> dict`` of JSON-serialisable numbers (and short labels),
measured, never asserted. This runner imports each module in turn (sorted by name), calls ``main()``,
prints the combined result and writes it to ``docs/bench/latest.json`` together with the machine it
ran on, so numbers from different runs can be compared. A module that raises is recorded with its
error and the runner exits non-zero after running the others.

Usage: ``python tests/bench/run.py [name ...]`` (names like ``ingest`` select ``bench_ingest.py``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent.parent
OUTPUT = REPO_ROOT / "docs" / "bench" / "latest.json"


def _import_paths() -> None:
    # The same import roots as pytest (pyproject: pythonpath = [".", "functions", "local"]).
    for root in (REPO_ROOT / "local", REPO_ROOT / "functions", REPO_ROOT):
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))


def discover(selected: list[str]) -> list[Path]:
    modules = sorted(BENCH_DIR.glob("bench_*.py"))
    if not selected:
        return modules
    wanted = {name.removeprefix("bench_").removesuffix(".py") for name in selected}
    return [path for path in modules if path.stem.removeprefix("bench_") in wanted]


def run_module(path: Path) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location(f"tests.bench.{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    started = time.perf_counter()
    result = module.main()
    if not isinstance(result, dict):
        raise TypeError(f"{path.name}: main() must return a dict, got {type(result).__name__}")
    return {**result, "bench_seconds": round(time.perf_counter() - started, 2)}


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }


def main(argv: list[str]) -> int:
    _import_paths()
    results: dict[str, Any] = {}
    failed = False
    for path in discover(argv):
        name = path.stem.removeprefix("bench_")
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        try:
            results[name] = run_module(path)
        except Exception as error:  # noqa: BLE001 - one broken benchmark must not hide the others' numbers
            traceback.print_exc()
            results[name] = {"error": f"{type(error).__name__}: {error}"}
            failed = True
    if argv and OUTPUT.exists():
        # A partial run updates its own entries and keeps the other benchmarks' last numbers.
        previous = json.loads(OUTPUT.read_text(encoding="utf-8")).get("benchmarks", {})
        results = {**previous, **results}
    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "benchmarks": results,
    }
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2, sort_keys=True))
    print(f"written to {OUTPUT.relative_to(REPO_ROOT)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
