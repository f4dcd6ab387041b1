"""``audit --heartbeat-file PATH``: the heartbeat URL (a secret: its path is the check's key)
read from a file, so a deploy never puts it on the audit's command line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from binance_funding_ws.cli import build_parser
from binance_funding_ws.tools import notify

SECRET_URL = "https://hc-ping.example/3f1c9a7e-secret-key"


def options(tmp_path: Path, *extra: str) -> notify.NotifyOptions | None:
    args = build_parser().parse_args(["audit", "--history", str(tmp_path / "audit.jsonl"), *extra])
    return notify.notify_options(args)


def heartbeat_file(tmp_path: Path, text: str, mode: int = 0o640) -> Path:
    path = tmp_path / "heartbeat.url"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_heartbeat_url_is_read_from_its_file(tmp_path):
    path = heartbeat_file(tmp_path, f"# the push URL of the check\n\n{SECRET_URL}\n")
    found = options(tmp_path, "--heartbeat-file", str(path))
    assert found is not None and found.heartbeat_url == SECRET_URL


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("", "0 URLs; a heartbeat file holds one"),
        (f"{SECRET_URL}\n{SECRET_URL}/2\n", "2 URLs; a heartbeat file holds one"),
        ("ftp://hc-ping.example/3f1c9a7e-secret-key\n", "line 1: must be an http"),
    ],
)
def test_a_heartbeat_file_without_one_http_url_is_refused_without_its_secret(tmp_path, text, said):
    path = heartbeat_file(tmp_path, text)
    with pytest.raises(notify.NotifyConfigError) as caught:
        options(tmp_path, "--heartbeat-file", str(path))
    assert said in str(caught.value) and "secret-key" not in str(caught.value)


def test_a_world_writable_or_linked_heartbeat_file_is_refused(tmp_path):
    path = heartbeat_file(tmp_path, SECRET_URL + "\n", mode=0o666)
    with pytest.raises(notify.NotifyConfigError, match="world-writable"):
        options(tmp_path, "--heartbeat-file", str(path))
    path.chmod(0o640)
    link = tmp_path / "link.url"
    os.symlink(path, link)
    with pytest.raises(notify.NotifyConfigError):
        options(tmp_path, "--heartbeat-file", str(link))


def test_heartbeat_url_and_heartbeat_file_together_are_refused(tmp_path):
    path = heartbeat_file(tmp_path, SECRET_URL + "\n")
    with pytest.raises(notify.NotifyConfigError, match="not both"):
        options(tmp_path, "--heartbeat-file", str(path), "--heartbeat-url", SECRET_URL)
