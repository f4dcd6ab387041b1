"""funding-monitor against a real OpenSSH server on a loopback port: config resolution,
host-key refusal, wrong keys, proxies, a server killed and restarted, a file replaced while
it is read."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time

import msgspec
import pytest

from binance_funding_ws.health import Summary
from binance_funding_ws.history import encode_sample
from funding_monitor.app import MonitorApp
from funding_monitor.history_tail import CHECK_BYTES, HistoryTail
from funding_monitor.panel import HostPanel
from funding_monitor.poller import Poller
from funding_monitor.sources import MAX_STATE_BYTES, RemoteSource, SourceError, Timeouts
from monitor_helpers import (
    SSHD,
    SshServer,
    audit_samples,
    free_port,
    keygen,
    wait_for,
    write_history,
    write_state,
)

pytestmark = pytest.mark.root
MONITOR = [sys.executable, "-m", "funding_monitor"]


@pytest.fixture
def sshd(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the SSH tests start sshd and log in as root")
    if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH server is not installed (apt-get install openssh-server)")
    server = SshServer(tmp_path).start()
    yield server
    server.kill()


@pytest.fixture
def setup(sshd, tmp_path):
    """A state file, a trusted known_hosts and an ssh config with the alias volspike-test."""
    state = tmp_path / "state.json"
    write_state(state, now=time.time())
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line())
    config = sshd.ssh_config(tmp_path / "ssh_config", known)
    return sshd, state, known, config


def once(config, state, *extra: str, host: str = "volspike-test"):
    result = subprocess.run(
        [*MONITOR, "--host", host, "--ssh-config", str(config), "--state-file", str(state),
         "--once", "--timeout", "5", *extra],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "Traceback" not in result.stdout + result.stderr
    return result


def test_once_over_ssh_through_the_config_alias(setup):
    _, state, _, config = setup
    result = once(config, state, "--json")
    assert result.returncode == 0, result.stdout
    facts = json.loads(result.stdout)
    assert facts["source"] == "volspike-test" and facts["funding_symbols"] == 30
    assert facts["state"] == "connected"


def test_once_on_a_fleet_prints_one_summary_per_host(setup):
    _, state, known, config = setup
    config.write_text(
        config.read_text() + f"Host deadhost\n  HostName 127.0.0.1\n  Port {free_port()}\n"
        f"  User root\n  UserKnownHostsFile {known}\n"
    )
    result = once(config, state, "--json", "--host", "deadhost")
    assert result.returncode == 2, "the worst host decides"
    summaries = msgspec.json.decode(result.stdout, type=list[Summary])
    assert [(s.source, s.verdict) for s in summaries] == [
        ("volspike-test", "HEALTHY"),
        ("deadhost", "UNREACHABLE"),
    ]
    assert "cannot connect to root@127.0.0.1" in summaries[1].error
    assert summaries[1].state is None and summaries[1].exit_code == 2
    text = once(config, state, "--host", "deadhost").stdout
    assert "funding-monitor: HEALTHY  (volspike-test)\n" in text
    assert "funding-monitor: UNREACHABLE  (deadhost)\n  problem     cannot connect" in text


def test_unknown_host_key_is_refused_with_its_fingerprint(setup):
    sshd, state, known, config = setup
    known.write_text("")
    result = once(config, state, "--json")
    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(sshd.host_key.with_suffix(".pub"))],
        capture_output=True, text=True, check=True,
    ).stdout.split()[1]  # fmt: skip
    assert "unknown host key" in error and fingerprint in error
    assert f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> ~/.ssh/known_hosts" in error
    assert known.read_text() == "", "never added silently"


def test_unknown_host_key_hint_is_an_ssh_command_that_works_as_printed(setup, tmp_path):
    sshd, state, _, _ = setup
    # No alias: the port and user come from --host, which `ssh 127.0.0.1` alone would lose.
    config = tmp_path / "bare_config"
    config.write_text(f"Host 127.0.0.1\n  UserKnownHostsFile {tmp_path / 'empty'}\n")
    result = once(config, state, "--json", host=f"root@127.0.0.1:{sshd.port}")
    error = json.loads(result.stdout)["error"]
    printed = error.split("connecting once with `", 1)[1].split("`", 1)[0]
    assert printed == f"ssh -p {sshd.port} root@127.0.0.1"
    # Run it as printed; the options only make it non-interactive and keep it off ~/.ssh.
    ssh, *target = shlex.split(printed)
    connected = subprocess.run(
        [ssh, "-F", "none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
         "-o", f"UserKnownHostsFile={tmp_path / 'trusted'}", "-i", str(sshd.client_key),
         *target, "true"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert connected.returncode == 0, connected.stderr


def test_changed_host_key_is_refused_loudly(setup, tmp_path):
    sshd, state, known, config = setup
    other = keygen(tmp_path / "other_host_key")
    key_type, key = other.with_suffix(".pub").read_text().split()[:2]
    known.write_text(f"[127.0.0.1]:{sshd.port} {key_type} {key}\n")
    result = once(config, state)
    assert result.returncode == 2 and "HOST KEY CHANGED" in result.stdout
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}'" in result.stdout


def test_wrong_key_is_a_clear_authentication_error(setup, tmp_path):
    sshd, state, known, _ = setup
    stranger = keygen(tmp_path / "stranger")
    config = sshd.ssh_config(tmp_path / "ssh_config2", known, identity=stranger)
    result = once(config, state, "--json")
    assert result.returncode == 2
    assert "authentication failed for root@127.0.0.1" in json.loads(result.stdout)["error"]


def test_unreachable_host_is_exit_2(setup, tmp_path):
    sshd, state, _, config = setup
    sshd.kill()
    result = once(config, state)
    assert result.returncode == 2 and "cannot connect to root@127.0.0.1" in result.stdout


def test_missing_remote_file_is_exit_2(setup, tmp_path):
    _, _, _, config = setup
    result = once(config, tmp_path / "nope.json")
    assert result.returncode == 2 and "no such file" in result.stdout


def test_remote_fifo_and_oversized_file_are_refused_before_reading(setup, tmp_path):
    _, _, _, config = setup
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    result = once(config, fifo)
    assert result.returncode == 2 and f"volspike-test:{fifo}: not a regular file" in result.stdout
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(MAX_STATE_BYTES + 1)  # sparse; reading it would move 64 MiB over SSH
    result = once(config, big, "--json")
    assert result.returncode == 2
    assert json.loads(result.stdout)["error"] == (
        f"volspike-test:{big}: {MAX_STATE_BYTES + 1} bytes, more than a state file can be (64 MiB)"
    )


def test_proxy_jump_one_hop_and_proxy_command(setup, tmp_path):
    sshd, state, known, _ = setup
    jump_config = tmp_path / "jump_config"
    jump_config.write_text(
        sshd.ssh_config(tmp_path / "base", known, alias="jumpbox").read_text()
        + sshd.ssh_config(tmp_path / "base2", known, alias="behind", extra="  ProxyJump jumpbox\n")
        .read_text()
    )  # fmt: skip
    assert once(jump_config, state, host="behind").returncode == 0
    proxy = (
        f"  ProxyCommand ssh -i {sshd.client_key} -p {sshd.port} -o BatchMode=yes "
        f"-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes -W %h:%p root@127.0.0.1\n"
    )
    proxy_config = sshd.ssh_config(tmp_path / "proxy_config", known, extra=proxy)
    assert once(proxy_config, state).returncode == 0


def test_file_replaced_while_read_never_tears(setup):
    _, state, _, config = setup
    source = RemoteSource("volspike-test", str(state), "binance-funding-ws",
                          Timeouts(5, 5), config)  # fmt: skip
    stop = threading.Event()

    def replace_forever() -> None:
        flip = 0
        while not stop.is_set():
            write_state(state, now=time.time(), symbols=300 + flip)  # size changes each time
            flip = (flip + 1) % 7

    writer = threading.Thread(target=replace_forever)
    writer.start()
    reads = 0
    try:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            try:
                doc = source.read_state()
            except SourceError as exc:  # pragma: no cover - the assertion explains
                raise AssertionError(f"torn or failed read: {exc}") from None
            if doc is not None:
                reads += 1
                assert 300 <= len(doc.funding) <= 306
    finally:
        stop.set()
        writer.join()
        source.close()
    assert reads >= 5


def test_sshd_killed_and_restarted_mid_session_the_monitor_recovers(setup):
    sshd, state, _, config = setup

    async def scenario() -> None:
        source = RemoteSource("volspike-test", str(state), "binance-funding-ws",
                              Timeouts(2, 2), config)  # fmt: skip
        app = MonitorApp([Poller(source, 0.3)])
        async with app.run_test(size=(100, 30)) as pilot:
            view = app.hosts[0].view
            await wait_for(pilot, lambda: view.connected and view.document is not None, "connected")
            sshd.kill()
            await wait_for(pilot, lambda: not view.connected, "the drop noticed")
            banner = str(app.screen.query_one(HostPanel).query_one("#banner").render())
            assert "DISCONNECTED since" in banner
            assert app.screen.query_one("#funding").row_count == 30, "old data stays visible"
            sshd.start()
            write_state(state, now=time.time(), symbols=12)
            await wait_for(pilot, lambda: view.connected and len(view.document.funding) == 12,
                       "reconnected with the new file", timeout=40)  # fmt: skip
            assert "DISCONNECTED" not in str(
                app.screen.query_one(HostPanel).query_one("#banner").render()
            )

    asyncio.run(scenario())


def test_once_over_ssh_reads_the_history_remotely(setup, tmp_path):
    _, state, _, config = setup
    history = tmp_path / "audit.jsonl"
    write_history(history, audit_samples(time.time()))
    result = once(config, state, "--json", "--history", str(history))
    assert result.returncode == 0, result.stdout
    report = json.loads(result.stdout)["history"]
    assert report["history"] == f"volspike-test:{history}"
    assert (report["verdict"], report["samples"], len(report["outages"])) == ("NOT_SAFE", 1380, 2)
    # By default the role's path for the unit: none here, which is no error.
    result = once(config, state, "--service", "bfws-monitor-test")
    assert result.returncode == 0
    assert result.stdout.endswith(
        "  audit 24 h  no audit history (funding_audit_enabled?) at "
        "volspike-test:/var/lib/bfws-monitor-test/audit.jsonl\n"
    )
    assert "audit 24 h" not in once(config, state, "--no-history").stdout


def test_remote_history_is_read_once_then_only_what_was_appended(setup, tmp_path):
    _, _, _, config = setup
    history = tmp_path / "audit.jsonl"
    samples = audit_samples(time.time(), gap=False, outage=False)
    write_history(tmp_path / "audit.jsonl.1", samples[:1000])  # rotated 440 minutes ago
    write_history(history, samples[1000:-1])
    source = RemoteSource("volspike-test", str(tmp_path / "state.json"), "binance-funding-ws",
                          Timeouts(5, 5), config)  # fmt: skip
    tail = HistoryTail(str(history), source)
    since = int(time.time() * 1000) - 86_400_000
    try:
        assert len(tail.read(since).samples) == 1439
        whole = history.stat().st_size + (tmp_path / "audit.jsonl.1").stat().st_size
        assert tail.bytes_read == whole, "both files, once"
        assert len(tail.read(since).samples) == 1439 and tail.bytes_read == whole, "unchanged"
        line = encode_sample(samples[-1])
        with history.open("ab") as handle:
            handle.write(line)
        assert [s.at for s in tail.read(since).samples] == [s.at for s in samples]
        assert tail.bytes_read == whole + len(line) + CHECK_BYTES
        fifo = tmp_path / "fifo.jsonl"
        os.mkfifo(fifo)
        with pytest.raises(SourceError, match=f"volspike-test:{fifo}: not a regular file"):
            HistoryTail(str(fifo), source).read(since)
    finally:
        source.close()
