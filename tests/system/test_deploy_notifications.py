"""Notifications deployed by the funding role, end to end: ansible-playbook against a real
Debian 12 droplet (systemd-nspawn, sharing the host's network), the audit notifying a real
webhook receiver on host loopback through Apprise (``json://127.0.0.1:PORT/<secret path>``)
and fetching a heartbeat URL there.

The tests run in file order and share one droplet: deploy without notifications, turn them on,
re-run, change the list, break it, turn them off, as an operator would.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from deploy_helpers import ANSIBLE_PLAYBOOK, SERVICE, playbook, recap, unit

from binance_funding_sim import SimulatorConfig, SimulatorThread
from daemon_helpers import wait_for
from droplet import Droplet, ensure_rootfs, free_port, skip_reason

# One droplet for the module, its tests in order: on one xdist worker.
pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.xdist_group("droplet-notify")]

AUDIT = "binance-funding-ws-audit.service"
NOTIFY_FILE = "/etc/binance-funding-ws/notify.urls"
HEARTBEAT_FILE = "/etc/binance-funding-ws/heartbeat.url"
VENV = "/opt/binance-funding-ws/current/venv"
HISTORY = "/var/lib/binance-funding-ws/audit.jsonl"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: str


class Receiver:
    """A webhook receiver and heartbeat endpoint on host loopback that records every request."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                with receiver._lock:
                    receiver.requests.append(Request(self.command, self.path, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = do_HEAD = _record

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def at(self, path: str, method: str | None = None) -> list[Request]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r.path == path and (method is None or r.method == method)
            ]

    def test_messages(self, path: str) -> list[Request]:
        return [r for r in self.at(path, "POST") if "test from volspike-do" in r.body]


# Each secret is the path of its URL: what Apprise's privacy mode would leave in clear.
SECRETS = {name: f"s3cr3t-{name}-{secrets.token_hex(8)}" for name in ("a", "b", "hb", "typo")}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture(scope="module")
def sim():
    with SimulatorThread(SimulatorConfig(tick=0.5, symbols=30)) as running:
        yield running


@pytest.fixture(scope="module")
def droplet(tmp_path_factory):
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    if not ANSIBLE_PLAYBOOK.exists():
        pytest.skip("ansible-playbook is not installed (./scripts/bootstrap.sh test)")
    ensure_rootfs()
    with Droplet(tmp_path_factory.mktemp("droplet")) as running:
        yield running


@pytest.fixture(scope="module")
def inventory(droplet, sim, tmp_path_factory):
    path = tmp_path_factory.mktemp("inventory") / "hosts.yml"
    return droplet.write_inventory(
        path,
        funding_ws_url=sim.ws_url(),
        funding_verify_timeout=60,
        # Every 5 s: a few heartbeats and audit runs within a test, without an audit
        # process every other second for the whole module (CPU the other droplets need).
        funding_audit_interval=5,
        funding_audit_compare_every=600,
        funding_audit_rest_url=sim.rest_url(),
    )


# Everything ansible-playbook printed in this module, to search for secrets at the end.
OUTPUTS: list[str] = []


def deploy(inventory: Path, tmp_path: Path, *flags: str, **variables: object):
    """deploy.yml -v with the variables in a file (as ansible-vault would give them)."""
    extra = tmp_path / f"vars-{len(OUTPUTS)}.json"
    extra.write_text(json.dumps(variables))
    result = playbook("deploy.yml", inventory, "-v", *flags, "-e", f"@{extra}")
    OUTPUTS.append(result.stdout + result.stderr)
    return result


def webhook(receiver: Receiver, name: str) -> str:
    return f"json://127.0.0.1:{receiver.port}/{SECRETS[name]}"


def heartbeat(receiver: Receiver) -> str:
    return f"http://127.0.0.1:{receiver.port}/{SECRETS['hb']}"


def has_apprise(droplet: Droplet) -> bool:
    probe = droplet.ssh(f"{VENV}/bin/python", "-c", "import apprise", check=False)
    return probe.returncode == 0


def current_release(droplet: Droplet) -> str:
    return droplet.ssh("readlink", "/opt/binance-funding-ws/current").stdout.strip()


class Before:
    """What the first deploy left, for the later steps to compare with."""

    release = ""
    daemon_pid = ""


def test_without_notifications_apprise_stays_off_the_droplet(droplet, inventory, tmp_path):
    result = deploy(inventory, tmp_path)
    assert result.returncode == 0 and recap(result)["failed"] == 0
    assert not has_apprise(droplet)
    listing = droplet.ssh("sh", "-c", f"ls {VENV}/lib/python3*/site-packages").stdout.split()
    assert not [name for name in listing if name.lower().startswith(("apprise", "requests"))]
    for path in (NOTIFY_FILE, HEARTBEAT_FILE):
        assert droplet.ssh("test", "-e", path, check=False).returncode == 1
    assert "--notify" not in droplet.ssh("systemctl", "cat", AUDIT).stdout
    Before.release, Before.daemon_pid = current_release(droplet), unit(droplet)["MainPID"]


def test_configuring_notifications_writes_the_secret_files_and_sends_one_test_message(
    droplet, inventory, receiver, tmp_path
):
    result = deploy(
        inventory,
        tmp_path,
        funding_notify_urls=[webhook(receiver, "a")],
        funding_heartbeat_url=heartbeat(receiver),
    )
    assert result.returncode == 0 and recap(result)["failed"] == 0
    for path in (NOTIFY_FILE, HEARTBEAT_FILE):
        owner = droplet.ssh("stat", "-c", "%U:%G %a", path).stdout.split()
        assert owner == ["root:trader", "640"], path
    assert len(receiver.test_messages(f"/{SECRETS['a']}")) == 1
    assert has_apprise(droplet)
    # apprise joined the running release: same release, the daemon untouched.
    assert current_release(droplet) == Before.release
    assert unit(droplet)["MainPID"] == Before.daemon_pid
    unit_text = droplet.ssh("systemctl", "cat", AUDIT).stdout
    assert f"--notify-file {NOTIFY_FILE}" in unit_text and "--digest-at 08:00" in unit_text


def test_the_audit_reads_the_heartbeat_url_from_its_file(receiver):
    wait_for(
        lambda: len(receiver.at(f"/{SECRETS['hb']}")) >= 2,
        120,
        "two heartbeats after healthy samples",
        step=0.5,
    )


def test_a_rerun_with_the_same_list_changes_nothing_and_sends_nothing(
    droplet, inventory, receiver, tmp_path
):
    result = deploy(
        inventory,
        tmp_path,
        funding_notify_urls=[webhook(receiver, "a")],
        funding_heartbeat_url=heartbeat(receiver),
    )
    assert result.returncode == 0 and recap(result)["changed"] == 0
    assert len(receiver.test_messages(f"/{SECRETS['a']}")) == 1
    check = deploy(
        inventory,
        tmp_path,
        "--check",
        "--diff",
        funding_notify_urls=[webhook(receiver, "a")],
        funding_heartbeat_url=heartbeat(receiver),
    )
    assert check.returncode == 0 and recap(check)["changed"] == 0


def test_a_changed_list_sends_exactly_one_test_message(droplet, inventory, receiver, tmp_path):
    result = deploy(
        inventory,
        tmp_path,
        funding_notify_urls=[webhook(receiver, "b")],
        funding_heartbeat_url=heartbeat(receiver),
    )
    assert result.returncode == 0 and recap(result)["failed"] == 0
    assert len(receiver.test_messages(f"/{SECRETS['b']}")) == 1
    assert len(receiver.test_messages(f"/{SECRETS['a']}")) == 1  # the old URL got no more
    assert unit(droplet)["MainPID"] == Before.daemon_pid


def test_a_refused_test_message_fails_the_deploy_naming_the_masked_service(
    droplet, inventory, receiver, tmp_path
):
    closed = free_port()  # nothing listens there: the service refuses
    typo = f"json://127.0.0.1:{closed}/{SECRETS['typo']}"
    result = deploy(
        inventory, tmp_path, funding_notify_urls=[typo], funding_heartbeat_url=heartbeat(receiver)
    )
    assert result.returncode != 0
    assert "the test notification was not delivered" in result.stdout
    assert f"json://127.0.0.1:{closed}" in result.stdout or "json://127.0.0.1" in result.stdout
    # The same list again: the failed test is not forgotten, it is sent (and refused) again.
    again = deploy(
        inventory, tmp_path, funding_notify_urls=[typo], funding_heartbeat_url=heartbeat(receiver)
    )
    assert again.returncode != 0 and "the test notification was not delivered" in again.stdout
    fixed = deploy(
        inventory,
        tmp_path,
        funding_notify_urls=[webhook(receiver, "b")],
        funding_heartbeat_url=heartbeat(receiver),
    )
    assert fixed.returncode == 0
    assert len(receiver.test_messages(f"/{SECRETS['b']}")) == 2


def test_the_audit_unit_stays_hardened(droplet):
    out = droplet.ssh("systemd-analyze", "security", AUDIT, "--no-pager").stdout
    exposure = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", out)[1])
    print(f"{AUDIT} exposure with notifications {exposure}")
    assert exposure <= 2.0, out[-3000:]


def test_the_secrets_appear_nowhere_but_in_their_files(droplet):
    # The process list, sampled while the audit runs (every 5 s), and the command line it runs.
    process_lists: list[str] = []

    def caught_the_audit() -> bool:
        process_lists.append(droplet.ssh("ps", "-eo", "user,args", "--no-headers").stdout)
        return len(process_lists) >= 20 and any(
            "binance-funding-ws audit" in listing for listing in process_lists
        )

    wait_for(caught_the_audit, 180, "the audit in the process list", step=0.05)
    exec_start = droplet.ssh("systemctl", "show", AUDIT, "--property=ExecStart").stdout
    places = {
        "ansible output": "\n".join(OUTPUTS),
        "journal": droplet.ssh("journalctl", "--no-pager", "-o", "verbose").stdout,
        "history": droplet.ssh("sh", "-c", f"cat {HISTORY}*").stdout,
        "process list": "\n".join(process_lists),
        "unit": droplet.ssh("systemctl", "cat", AUDIT, "binance-funding-ws-audit.timer").stdout,
        "ExecStart": exec_start,
        "daemon environment": droplet.ssh("cat", "/etc/binance-funding-ws/daemon.env").stdout,
    }
    assert "--notify-file" in exec_start and "--heartbeat-url-file" in exec_start
    for place, text in places.items():
        for name, secret in SECRETS.items():
            assert secret not in text, f"secret {name} in the {place}"


def test_turning_notifications_off_removes_apprise_and_keeps_the_daemon(
    droplet, inventory, tmp_path
):
    result = deploy(inventory, tmp_path)
    assert result.returncode == 0 and recap(result)["failed"] == 0
    assert not has_apprise(droplet)
    for path in (NOTIFY_FILE, HEARTBEAT_FILE):
        assert droplet.ssh("test", "-e", path, check=False).returncode == 1
    assert "--notify" not in droplet.ssh("systemctl", "cat", AUDIT).stdout
    assert current_release(droplet) == Before.release
    assert unit(droplet)["MainPID"] == Before.daemon_pid
    assert droplet.ssh("systemctl", "is-active", SERVICE).stdout.strip() == "active"
    again = deploy(inventory, tmp_path)
    assert again.returncode == 0 and recap(again)["changed"] == 0
