"""Builds the one Lambda code asset every LedgerLink function runs, without Docker.

The asset folder holds, side by side::

    ledgerlink/            the shared package (functions/ledgerlink)
    qbo_ingest/ ...        every functions/<lambda>/ folder that exists
    schemas/               the JSON schemas (ledgerlink.schemas looks for schemas/ beside the package)
    config/                every environment's configuration file (infra/config/<stage>.toml); each
                           function's LEDGERLINK_CONFIG_FILE names its stage's (ledgerlink.configfile)
    requests/ jsonschema/ aws_lambda_powertools/ ...   the runtime dependencies

The dependencies are ``pyproject.toml`` ``[project.dependencies]`` less what the Lambda runtime
already provides (boto3, botocore, s3transfer), installed by ``pip install --target`` as binary
wheels for the *target* platform and Python version, which need not be this machine's.

The folder is ``.build/lambda-<hash>/``, where the hash covers every input (sources, schemas, the
dependency list, the target, this builder's version): a second build with the same inputs returns
the existing folder at once. A build happens in a private temporary folder that is renamed into
place only when complete, so concurrent builds (parallel test workers) never see half an asset.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

REPO_ROOT: Final = Path(__file__).resolve().parent.parent

# Bump when the layout of the asset changes, so cached folders built the old way are not reused.
BUILDER_VERSION: Final = "1"

# Provided by the AWS Lambda Python runtime; shipping them would only add ~25 MB.
RUNTIME_PROVIDED: Final = frozenset({"boto3", "botocore", "s3transfer"})

_IGNORED_NAMES: Final = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
_IGNORED_SUFFIXES: Final = (".pyc", ".pyo")
_MARKER: Final = ".ledgerlink-asset.json"


class AssetBuildError(RuntimeError):
    """The asset could not be built; the message says which step failed and pip's last output lines."""


@dataclass(frozen=True)
class AssetTarget:
    """The interpreter the asset is built for: pip's ``--python-version`` and ``--platform`` values."""

    python_version: str
    platforms: tuple[str, ...]
    implementation: str = "cp"

    @classmethod
    def for_lambda(cls, *, python_version: str, architecture: str) -> AssetTarget:
        """A Lambda runtime (Amazon Linux 2023, glibc 2.34): ``architecture`` is ``arm64`` or ``x86_64``."""
        machine = {"arm64": "aarch64", "x86_64": "x86_64"}.get(architecture)
        if machine is None:
            raise ValueError(f"unknown Lambda architecture {architecture!r} (arm64 or x86_64)")
        return cls(python_version=python_version, platforms=_manylinux_platforms(machine))

    @classmethod
    def for_this_interpreter(cls) -> AssetTarget:
        """The interpreter running this code, so that a test can import the asset right here."""
        platform = sysconfig.get_platform()  # e.g. "linux-x86_64"
        if not platform.startswith("linux-"):
            raise ValueError(f"only Linux interpreters can run a Lambda asset, this one is {platform!r}")
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        return cls(python_version=version, platforms=_manylinux_platforms(platform.removeprefix("linux-")))

    def describe(self) -> str:
        return f"{self.implementation}{self.python_version.replace('.', '')}-{'+'.join(self.platforms)}"


def _manylinux_platforms(machine: str) -> tuple[str, ...]:
    # pip does not widen a manylinux_2_28 platform to older tags, so both are named: most wheels are
    # manylinux2014 (glibc 2.17), a few projects publish only manylinux_2_28.
    return (f"manylinux2014_{machine}", f"manylinux_2_28_{machine}")


def runtime_requirements(pyproject: Path) -> list[str]:
    """``[project.dependencies]`` of ``pyproject`` without the packages the Lambda runtime provides."""
    if not pyproject.is_file():
        raise AssetBuildError(f"{pyproject} is missing; the asset's dependencies are declared there")
    document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    declared = document.get("project", {}).get("dependencies", [])
    return [spec for spec in declared if _distribution_name(spec) not in RUNTIME_PROVIDED]


def _distribution_name(requirement: str) -> str:
    """The normalised (PEP 503) distribution name at the start of a requirement string."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise AssetBuildError(f"cannot read a package name from requirement {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def code_folders(repo_root: Path) -> list[Path]:
    """``functions/ledgerlink`` and every other ``functions/<name>/`` folder, sorted by name."""
    functions = repo_root / "functions"
    package = functions / "ledgerlink"
    if not (package / "__init__.py").is_file():
        raise AssetBuildError(f"{package} is not a Python package")
    return sorted(path for path in functions.iterdir() if path.is_dir() and path.name not in _IGNORED_NAMES)


def asset_roots(repo_root: Path) -> list[Path]:
    """Every folder whose files go into the asset, each landing at the asset's top under its own name."""
    return [*code_folders(repo_root), repo_root / "schemas", repo_root / "infra" / "config"]


def inputs_hash(target: AssetTarget, *, repo_root: Path = REPO_ROOT) -> str:
    """A digest of everything that goes into the asset; equal digests mean interchangeable assets."""
    folders = asset_roots(repo_root)
    digest = hashlib.sha256()
    manifest = {
        "builder": BUILDER_VERSION,
        "target": [target.implementation, target.python_version, *target.platforms],
        "requirements": runtime_requirements(repo_root / "pyproject.toml"),
    }
    digest.update(json.dumps(manifest, sort_keys=True).encode())
    for root in folders:
        for path in _source_files(root):
            digest.update(str(path.relative_to(repo_root)).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def build_lambda_asset(
    target: AssetTarget,
    *,
    repo_root: Path = REPO_ROOT,
    build_root: Path | None = None,
    pip_command: Sequence[str] | None = None,
) -> Path:
    """The asset folder for ``target``, built now or reused from an earlier build with the same inputs."""
    build_root = build_root or repo_root / ".build"
    folder = build_root / f"lambda-{inputs_hash(target, repo_root=repo_root)}"
    if (folder / _MARKER).is_file():
        return folder
    build_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=build_root))
    try:
        _copy_sources(repo_root, staging)
        requirements = runtime_requirements(repo_root / "pyproject.toml")
        if requirements:
            _install_requirements(requirements, target, staging, pip_command or [sys.executable, "-m", "pip"])
        (staging / _MARKER).write_text(
            json.dumps({"target": target.describe(), "requirements": requirements}, indent=2) + "\n",
            encoding="utf-8",
        )
        try:
            staging.rename(folder)
        except OSError:
            # Another build with the same inputs finished first; its folder is identical.
            if not (folder / _MARKER).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _copy_sources(repo_root: Path, destination: Path) -> None:
    for root in asset_roots(repo_root):
        if not root.is_dir():
            raise AssetBuildError(f"{root} is missing; the asset needs it")
        for path in _source_files(root):
            # functions/<name>/..., schemas/... and infra/config/... all land at the top of the asset.
            target = destination / path.relative_to(root.parent)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        # Folders that hold no file yet (a Lambda still being written) are created all the same.
        (destination / root.name).mkdir(exist_ok=True)


def _source_files(root: Path) -> Iterable[Path]:
    if not root.is_dir():
        return []
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and not _IGNORED_NAMES.intersection(path.relative_to(root).parts)
        and not path.name.endswith(_IGNORED_SUFFIXES)
    )


def _install_requirements(
    requirements: Sequence[str], target: AssetTarget, destination: Path, pip_command: Sequence[str]
) -> None:
    """Resolve for the target platform, drop what the runtime provides, install the rest with --no-deps.

    Resolving first matters: aws-xray-sdk depends on botocore, so a plain install would ship it.
    """
    target_options = [
        "--implementation",
        target.implementation,
        "--python-version",
        target.python_version,
        "--only-binary=:all:",
        *(option for platform in target.platforms for option in ("--platform", platform)),
    ]
    report = destination.parent / f"{destination.name}.report.json"
    try:
        _run_pip(
            [
                *pip_command,
                "install",
                "--dry-run",
                "--ignore-installed",
                "--quiet",
                "--report",
                str(report),
                "--target",
                str(destination),
                *target_options,
                *requirements,
            ],
            step="resolve the runtime dependencies",
        )
        resolved = json.loads(report.read_text(encoding="utf-8"))["install"]
    finally:
        report.unlink(missing_ok=True)
    pins = [
        f"{item['metadata']['name']}=={item['metadata']['version']}"
        for item in resolved
        if _distribution_name(item["metadata"]["name"]) not in RUNTIME_PROVIDED
    ]
    _run_pip(
        [
            *pip_command,
            "install",
            "--no-deps",
            "--no-compile",
            "--quiet",
            "--target",
            str(destination),
            *target_options,
            *sorted(pins),
        ],
        step="install the runtime dependencies",
    )
    # Console scripts of the dependencies (jsonschema, normalizer) have no use inside a Lambda.
    shutil.rmtree(destination / "bin", ignore_errors=True)


def _run_pip(command: Sequence[str], *, step: str) -> None:
    environment = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    completed = subprocess.run(  # noqa: S603 (a fixed pip command line, no shell)
        list(command), capture_output=True, text=True, env=environment, check=False
    )
    if completed.returncode != 0:
        tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-15:])
        raise AssetBuildError(f"pip could not {step} (exit {completed.returncode}):\n{tail}")
