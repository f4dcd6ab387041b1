"""The deploy role's read-only looks at the host (the short Python programs it runs with
``raw`` as root) against hostile hosts: every answer is bounded, a link is never followed where
the look says so, a FIFO never blocks it, and nothing ends in a traceback.

The programs are taken from the role's YAML and run here, with this machine's Python, on real
files; the droplet tests run them on Debian 12 and 13 through Ansible.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

TASKS = Path(__file__).resolve().parents[2] / "playbooks/roles/funding/tasks"


def program(tasks_file: str, name: str) -> str:
    """The program the role keeps in the variable ``name`` of a task in ``tasks_file``."""

    def find(tasks: list[dict[str, Any]]) -> str | None:
        for task in tasks:
            if name in task.get("vars", {}):
                return task["vars"][name]
            found = find(task.get("block", []))
            if found is not None:
                return found
        return None

    found = find(yaml.safe_load((TASKS / tasks_file).read_text()))
    assert found is not None, f"{name} is not in {tasks_file}"
    return found


def look(source: str, *args: object) -> dict[str, Any]:
    """Run a look as the role does (``python -I -c``); it must answer with one JSON line."""
    done = subprocess.run(
        [sys.executable, "-I", "-c", source, *map(str, args)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return json.loads(done.stdout)


# -- what is installed: the release, its notify extra, current ----------------------------


def installed(release: Path, base: Path) -> dict[str, Any]:
    source = program("install.yml", "funding__installed_program")
    return look(source, release, release / "venv/.notify-extra", base / "current")


def test_a_fresh_host_has_nothing_installed(tmp_path):
    seen = installed(tmp_path / "releases/0.1.0-abc", tmp_path)
    assert seen == {
        "complete": False,
        "notify_extra": None,
        "current": {"exists": False, "islnk": False, "lnk_target": ""},
    }


def test_the_notify_marker_is_read_only_as_a_small_regular_file(tmp_path):
    release = tmp_path / "releases/r"
    (release / "venv").mkdir(parents=True)
    (release / ".complete").write_text("r\n")
    marker = release / "venv/.notify-extra"
    (tmp_path / "elsewhere").write_text("apprise-1.9.0-py3-none-any.whl\n")
    marker.symlink_to(tmp_path / "elsewhere")
    assert installed(release, tmp_path)["notify_extra"] is None  # a link is not followed
    marker.unlink()
    os.mkfifo(marker)  # would block an open without O_NONBLOCK
    assert installed(release, tmp_path)["notify_extra"] is None
    marker.unlink()
    marker.write_bytes(b"x" * (1 << 20) + b"\xff")
    seen = installed(release, tmp_path)
    assert seen["complete"] is True and len(seen["notify_extra"]) == 65536


def test_current_is_looked_at_without_following_it(tmp_path):
    (tmp_path / "current").symlink_to("releases/missing-release")  # dangling: still a link
    seen = installed(tmp_path / "releases/r", tmp_path)["current"]
    assert seen == {"exists": True, "islnk": True, "lnk_target": "releases/missing-release"}


# -- the installed releases -----------------------------------------------------------------


def releases(directory: Path) -> list[dict[str, Any]]:
    return look(program("install.yml", "funding__releases_program"), directory)["files"]


def test_releases_are_directories_only_and_at_most_1000(tmp_path):
    directory = tmp_path / "releases"
    directory.mkdir()
    for index in range(1200):
        (directory / f"0.1.{index}-abc").mkdir()
    (directory / "a-file").write_text("")
    (directory / "a-link").symlink_to(tmp_path)
    found = releases(directory)
    assert 0 < len(found) <= 1000
    assert all(Path(entry["path"]).name.startswith("0.1.") for entry in found)
    assert all(isinstance(entry["mtime"], float) for entry in found)


def test_no_releases_directory_is_an_empty_list(tmp_path):
    assert releases(tmp_path / "releases") == []


# -- the unit a deploy may replace -----------------------------------------------------------


def unit(path: Path) -> str | None:
    return look(program("unit_look.yml", "funding__unit_program"), path)["content"]


def test_the_unit_is_kept_only_from_a_regular_file_and_at_most_a_mib(tmp_path):
    path = tmp_path / "binance-funding-ws.service"
    assert unit(path) is None  # missing
    os.mkfifo(path)
    assert unit(path) is None  # a FIFO never blocks the deploy
    path.unlink()
    path.symlink_to("/dev/zero")
    assert unit(path) is None  # nor does a device behind a link
    path.unlink()
    target = tmp_path / "linked.service"  # `systemctl link` makes units links: followed
    target.write_bytes(b"[Service]\nExecStart=/usr/bin/earlier\n\xff" + b"#" * (2 << 20))
    path.symlink_to(target)
    content = unit(path)
    assert content is not None and content.startswith("[Service]\nExecStart=/usr/bin/earlier")
    assert len(content) == 1 << 20 and "\ufffd" in content  # cut, and bad bytes replaced


# -- each component of a directory's path ----------------------------------------------------


def components(directory: Path) -> list[dict[str, Any]]:
    results = look(program("safe_dir.yml", "funding__lstat_program"), directory)["results"]
    return [result["stat"] for result in results]


def test_each_component_is_looked_at_without_following_links(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    seen = components(tmp_path / "link" / "missing")
    assert seen[0]["path"] == "/" and seen[-1]["exists"] is False
    link = seen[-2]
    assert link["path"] == str(tmp_path / "link") and link["islnk"] is True
    assert link["lnk_target"] == str(tmp_path / "real") and link["isdir"] is False
