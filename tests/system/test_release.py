"""The droplet's release: built from the runtime distribution alone, and named after it.

``build_release.py`` is what ``deploy.yml`` runs on the controller; these tests run it as the
role does (for a Debian 12 x86_64 target) and read what it produced.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from release_helpers import BUILD, ROOT, build_release, copy_project

README = ROOT / "README.md"


def touch(path: Path) -> None:
    path.write_text(path.read_text() + "\n# an edit\n")


def test_only_daemon_sources_name_the_release(tmp_path):
    copy = copy_project(tmp_path)
    name = build_release.source_hash(copy)
    assert name == build_release.source_hash(ROOT)
    for elsewhere in (
        "monitor/funding_monitor/app.py",
        "simulator/binance_funding_sim/server.py",
        "tests/system/test_release.py",
        "README.md",
        "benchmarks/bench_daemon.py",
        "pyproject.toml",
    ):
        touch(copy / elsewhere)
    (copy / "daemon/build/lib").mkdir(parents=True)  # a local build's leftovers
    (copy / "daemon/build/lib/x.py").write_text("x = 1\n")
    assert build_release.source_hash(copy) == name
    touch(copy / "daemon/binance_funding_ws/market.py")
    assert build_release.source_hash(copy) != name


@pytest.mark.slow
def test_the_release_holds_the_runtime_and_its_two_dependencies_only(tmp_path):
    result = subprocess.run(
        [sys.executable, str(BUILD), "--project", str(ROOT), "--cache", str(tmp_path),
         "--python", "3.11", "--machine", "x86_64", "--libc", "glibc 2.36"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    release = json.loads(result.stdout)
    names = {wheel.split("-")[0].lower() for wheel in release["wheels"]}
    assert names == {"binance_funding_ws", "websockets", "msgspec"}
    (ours,) = (w for w in release["wheels"] if w.startswith("binance_funding_ws-"))
    files = zipfile.ZipFile(Path(release["dir"]) / ours).namelist()
    packages = {name.split("/")[0] for name in files if not name.startswith("binance_funding_ws-")}
    assert packages == {"binance_funding_ws"}, packages
    modules = [name for name in files if name.endswith(".py")]
    assert not [m for m in modules if "simulat" in m or "monitor" in m], modules
    entry_points = next(n for n in files if n.endswith("entry_points.txt"))
    assert (
        "funding-monitor"
        not in zipfile.ZipFile(Path(release["dir"]) / ours).read(entry_points).decode()
    )


def test_the_supported_python_range_is_stated_alike_everywhere():
    """daemon/ requires it, nox tests it, the role refuses below it, and the docs say it."""
    role = ROOT / "playbooks/roles/funding"
    oldest = "3.10"
    pyproject = tomllib.loads((ROOT / "daemon/pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == f">={oldest}"
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + oldest.replace(".", "")
    nox_versions = re.search(r"SUPPORTED = \[(.*)\]", (ROOT / "noxfile.py").read_text())[1]
    assert nox_versions == '"3.10", "3.11", "3.12", "3.13"'
    assert f'funding__python_min: "{oldest}"' in (role / "vars/main.yml").read_text()
    assert "funding__python_min" in (role / "tasks/preflight.yml").read_text()
    stated = f"CPython {oldest} or newer (3.10 to 3.13 tested"
    for document in (role / "meta/argument_specs.yml", role / "README.md", README):
        words = " ".join(document.read_text().replace("#", "").split())
        assert stated in words, document
        assert "Python ≥ 3.9" not in words and "3.9 or newer" not in words, document
