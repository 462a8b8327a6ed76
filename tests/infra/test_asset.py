"""The Lambda code asset: built without Docker, complete without boto3, cached by the hash of its inputs."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import asset
from infra.asset import AssetBuildError, AssetTarget, build_lambda_asset, runtime_requirements
from tests.conftest import REPO_ROOT

# What the Lambda Python runtime puts on sys.path besides the function's code: boto3 and its own deps.
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")


@pytest.fixture(scope="module")
def host_asset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The asset built for this interpreter (same builder, other target), so it can be imported here."""
    return build_lambda_asset(AssetTarget.for_this_interpreter(), build_root=tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def lambda_runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding only boto3 and its dependencies (links into this venv), like /var/runtime."""
    runtime = tmp_path_factory.mktemp("runtime")
    for name in RUNTIME_MODULES:
        module = importlib.import_module(name)
        assert module.__file__ is not None
        source = Path(module.__file__)
        source = source.parent if source.name == "__init__.py" else source
        (runtime / source.name).symlink_to(source)
    return runtime


def _handler_modules() -> list[str]:
    return sorted(f"{path.parent.name}.handler" for path in (REPO_ROOT / "functions").glob("*/handler.py"))


# Runs in `python -I -S -B`: no site-packages, PYTHONPATH or current directory (only what we add), no .pyc.
IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
asset, runtime, handlers = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path[0:0] = [asset, runtime]
import ledgerlink
modules = [m.name for m in pkgutil.walk_packages(ledgerlink.__path__, "ledgerlink.")]
for name in [*modules, *handlers, "aws_lambda_powertools", "aws_xray_sdk.core", "requests", "jsonschema"]:
    importlib.import_module(name)
from ledgerlink import schemas
schemas.validator("events/qbo.entity.changed.v1.json")
files = {n: getattr(m, "__file__", None) for n, m in sys.modules.items()}
print(json.dumps({"path": sys.path, "schemas_root": str(schemas.schemas_root()),
                  "imported": modules + handlers, "files": {n: f for n, f in files.items() if f}}))
"""


def test_the_asset_imports_every_module_and_handler_with_nothing_but_boto3_beside_it(
    host_asset: Path, lambda_runtime_dir: Path
) -> None:
    # given the asset built for this interpreter and a runtime folder holding only boto3 & co.
    handlers = _handler_modules()
    # when a clean interpreter imports every ledgerlink module and every handler from them alone
    completed = subprocess.run(  # noqa: S603 (fixed command line)
        [
            sys.executable,
            "-I",
            "-S",
            "-B",
            "-c",
            IMPORT_EVERYTHING,
            str(host_asset),
            str(lambda_runtime_dir),
            json.dumps(handlers),
        ],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "us-east-1"},
        check=False,
        cwd=host_asset,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout)
    # then the schemas come from the asset and every non-stdlib module from the asset or the runtime
    assert Path(result["schemas_root"]) == host_asset / "schemas"
    assert "ledgerlink.config" in result["imported"] and "ledgerlink.events" in result["imported"]
    assert all(str(REPO_ROOT) not in entry and ".venv" not in entry for entry in result["path"])
    stdlib = Path(os.__file__).parent
    for name, file in result["files"].items():
        location = Path(file)
        top = name.split(".")[0]
        if top in RUNTIME_MODULES[:3]:
            assert location.is_relative_to(lambda_runtime_dir), name
        elif not location.is_relative_to(stdlib):
            assert location.is_relative_to(host_asset), (name, file)


def test_the_asset_holds_sources_schemas_and_dependencies_but_not_the_runtimes_boto3(
    host_asset: Path,
) -> None:
    names = {path.name for path in host_asset.iterdir()}
    assert {
        "ledgerlink",
        "schemas",
        "aws_lambda_powertools",
        "aws_xray_sdk",
        "requests",
        "jsonschema",
    } <= names
    assert {path.name for path in (REPO_ROOT / "functions").iterdir() if path.is_dir()} - {
        "__pycache__"
    } <= names
    assert not names & {"boto3", "botocore", "s3transfer", "bin"}
    assert (host_asset / "schemas" / "events" / "qbo.entity.changed.v1.json").is_file()
    # and every environment's configuration file, where LEDGERLINK_CONFIG_FILE finds it
    assert (host_asset / "config" / "prod.toml").is_file()
    assert not list(host_asset.glob("ledgerlink/**/__pycache__"))


def test_runtime_requirements_are_the_project_dependencies_less_boto3() -> None:
    requirements = runtime_requirements(REPO_ROOT / "pyproject.toml")
    assert not [spec for spec in requirements if spec.startswith(("boto3", "botocore"))]
    assert any(spec.startswith("aws-lambda-powertools") for spec in requirements)
    assert any(spec.startswith("jsonschema") for spec in requirements)


def test_the_lambda_target_is_the_topologys_runtime_and_architecture() -> None:
    target = AssetTarget.for_lambda(python_version="3.14", architecture="arm64")
    assert target.python_version == "3.14"
    assert target.platforms == ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
    with pytest.raises(ValueError, match="unknown Lambda architecture 'arm'"):
        AssetTarget.for_lambda(python_version="3.14", architecture="arm")


# --- caching, on a tiny project without dependencies (no pip involved) --------------------------------


def _tiny_project(root: Path, dependencies: list[str] | None = None) -> Path:
    (root / "functions" / "ledgerlink").mkdir(parents=True)
    (root / "functions" / "ledgerlink" / "__init__.py").write_text('"""tiny"""\n')
    (root / "functions" / "ledgerlink" / "__pycache__").mkdir()
    (root / "functions" / "ledgerlink" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"stale")
    (root / "functions" / "qbo_ingest").mkdir()
    (root / "functions" / "qbo_ingest" / "handler.py").write_text(
        "def lambda_handler(event, context):\n    return 1\n"
    )
    (root / "functions" / "hubspot_deal_sync").mkdir()
    (root / "schemas" / "events").mkdir(parents=True)
    (root / "schemas" / "events" / "a.json").write_text("{}")
    (root / "infra" / "config").mkdir(parents=True)
    (root / "infra" / "config" / "dev.toml").write_text("version = 1\n")
    (root / "pyproject.toml").write_text(
        "[project]\nname='tiny'\ndependencies = " + json.dumps(dependencies or ["boto3>=1.40"]) + "\n"
    )
    return root


def test_a_second_build_with_the_same_inputs_reuses_the_folder(tmp_path: Path) -> None:
    # given a built asset
    project = _tiny_project(tmp_path / "project")
    target = AssetTarget.for_this_interpreter()
    first = build_lambda_asset(target, repo_root=project, build_root=tmp_path / "build")
    marker = first / ".ledgerlink-asset.json"
    stamp = marker.stat().st_mtime_ns
    # when built again with nothing changed
    second = build_lambda_asset(target, repo_root=project, build_root=tmp_path / "build")
    # then the same folder comes back untouched, and no staging folder is left behind
    assert second == first and marker.stat().st_mtime_ns == stamp
    assert [path.name for path in (tmp_path / "build").iterdir()] == [first.name]
    assert (first / "qbo_ingest" / "handler.py").is_file()
    assert (first / "hubspot_deal_sync").is_dir()
    assert (first / "schemas" / "events" / "a.json").is_file()
    assert not (first / "ledgerlink" / "__pycache__").exists()


def test_changing_a_source_a_schema_or_the_target_makes_a_new_asset(tmp_path: Path) -> None:
    project = _tiny_project(tmp_path / "project")
    target = AssetTarget.for_this_interpreter()
    original = build_lambda_asset(target, repo_root=project, build_root=tmp_path / "build")
    (project / "functions" / "qbo_ingest" / "handler.py").write_text(
        "def lambda_handler(event, context):\n    return 2\n"
    )
    changed_source = build_lambda_asset(target, repo_root=project, build_root=tmp_path / "build")
    (project / "schemas" / "events" / "a.json").write_text('{"title": "b"}')
    changed_schema = build_lambda_asset(target, repo_root=project, build_root=tmp_path / "build")
    other_target = asset.inputs_hash(
        AssetTarget.for_lambda(python_version="3.14", architecture="arm64"), repo_root=project
    )
    assert len({original, changed_source, changed_schema}) == 3
    assert other_target not in {original.name, changed_source.name, changed_schema.name}
    assert (changed_source / "qbo_ingest" / "handler.py").read_text().endswith("return 2\n")


def test_a_failing_pip_names_the_step_and_leaves_no_half_built_asset(tmp_path: Path) -> None:
    # given a project with a dependency and a pip that fails
    project = _tiny_project(tmp_path / "project", dependencies=["requests>=2.32"])
    failing_pip = [sys.executable, "-c", "import sys; sys.stderr.write('no index reachable'); sys.exit(3)"]
    # when the asset is built / then the error says which step failed and what pip said
    with pytest.raises(
        AssetBuildError, match=r"pip could not resolve the runtime dependencies \(exit 3\)"
    ) as raised:
        build_lambda_asset(
            AssetTarget.for_this_interpreter(),
            repo_root=project,
            build_root=tmp_path / "build",
            pip_command=failing_pip,
        )
    assert "no index reachable" in str(raised.value)
    assert list((tmp_path / "build").iterdir()) == []


def test_a_checkout_without_the_shared_package_is_refused(tmp_path: Path) -> None:
    (tmp_path / "functions" / "qbo_ingest").mkdir(parents=True)
    with pytest.raises(AssetBuildError, match="functions/ledgerlink is not a Python package"):
        build_lambda_asset(
            AssetTarget.for_this_interpreter(), repo_root=tmp_path, build_root=tmp_path / "build"
        )
