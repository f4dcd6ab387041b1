"""The notify extra's wheelhouse (``build_release.py --extra notify``): apprise and what it
needs, beside the release and apart from it, so turning notifications on never renames the
release (which would restart the daemon)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from release_helpers import BUILD, ROOT, copy_project

TARGET = ("--python", "3.11", "--machine", "x86_64", "--libc", "glibc 2.36")


def build(project: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BUILD), "--project", str(project), "--cache", str(cache),
         *TARGET, *extra],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def names(wheels: list[str]) -> set[str]:
    return {wheel.split("-")[0].lower() for wheel in wheels}


@pytest.mark.slow
def test_the_notify_extra_is_a_wheelhouse_of_its_own_and_keeps_the_release_name(tmp_path):
    extra = build(ROOT, tmp_path, "--extra", "notify")
    assert extra.returncode == 0, extra.stderr
    notify = json.loads(extra.stdout)
    release = json.loads(build(ROOT, tmp_path).stdout)
    assert notify["release"] == release["release"] and notify["extra"] == "notify"
    assert notify["dir"] != release["dir"] and not release["built"]  # built once, reused
    assert names(release["wheels"]) == {"binance_funding_ws", "websockets", "msgspec"}
    added = names(notify["wheels"])
    assert "apprise" in added and "requests" in added
    assert not added & names(release["wheels"])  # the release's wheels are copied once
    for wheel in notify["wheels"]:
        assert (Path(notify["dir"]) / wheel).is_file()


@pytest.mark.slow
def test_an_extra_the_runtime_does_not_declare_is_refused(tmp_path):
    copy = copy_project(tmp_path)
    pyproject = copy / "daemon/pyproject.toml"
    text = pyproject.read_text()
    start = text.index("[project.optional-dependencies]")
    pyproject.write_text(text[:start] + text[text.index("[project.scripts]") :])
    result = build(copy, tmp_path / "cache", "--extra", "notify")
    assert result.returncode != 0 and "has no extra 'notify'" in result.stderr
    assert not list((tmp_path / "cache").glob("*/*-notify"))
