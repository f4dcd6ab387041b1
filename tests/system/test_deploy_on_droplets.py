"""The deploy bundle end to end: ansible-playbook against real Debian hosts with systemd as
PID 1 (systemd-nspawn droplets on loopback SSH ports), the daemon inside reading the simulator
on host loopback.

The same checks run on Debian 12 (bookworm, Python 3.11) and Debian 13 (trixie, Python 3.13):
the ``droplet`` fixture is module-scoped and parametrized, so pytest runs the whole sequence on
one release, then on the other, each droplet booted once. For each, the tests run in file
order and share the droplet: each step builds on the one before, as an operator's day would
(deploy over the earlier script, re-deploy, roll back to it, look, break, upgrade, roll back,
uninstall). A Debian 11 droplet (Python 3.9) is only ever refused, first.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from deploy_helpers import ANSIBLE_PLAYBOOK, ROOT, SERVICE, journal_tail, playbook, recap, unit
from release_helpers import copy_project

from binance_funding_sim import SimulatorConfig, SimulatorThread
from binance_funding_ws.clock import now_ms
from binance_funding_ws.history import parse_lines
from binance_funding_ws.state import StateFileError, decode_state
from daemon_helpers import wait_for
from droplet import Droplet, ensure_rootfs, skip_reason

# One droplet for the module, its tests in order: on one xdist worker.
# Tests without a release of their own (Debian 11's refusals) run together on one worker.
pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.xdist_group("droplet-deploy")]

STATE_FILE = "/home/trader/volume-spike-bot/.funding_state.json"
# Debian 12 and 13: Python 3.11 and 3.13, systemd 252 and 257.
RELEASES = ("bookworm", "trixie")


@pytest.fixture(scope="module")
def sim():
    with SimulatorThread(SimulatorConfig(tick=0.5, symbols=30)) as running:
        yield running


def boot(release: str, tmp_path_factory):
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    if not ANSIBLE_PLAYBOOK.exists():
        pytest.skip("ansible-playbook is not installed (./scripts/bootstrap.sh test)")
    rootfs = ensure_rootfs(release)
    return Droplet(tmp_path_factory.mktemp(release), rootfs, release=release)


# One group per release: with pytest-xdist's --dist loadgroup the two sequences run side by
# side on two workers, each in file order.
@pytest.fixture(
    scope="module",
    params=[pytest.param(release, marks=pytest.mark.xdist_group(release)) for release in RELEASES],
)
def droplet(request, tmp_path_factory):
    with boot(request.param, tmp_path_factory) as running:
        yield running


# Every check runs on both releases: Debian 13's Python 3.13 and systemd 257 may change any of
# them, and the two sequences run side by side on two workers.


@pytest.fixture(scope="module")
def inventory(droplet, sim, tmp_path_factory):
    path = tmp_path_factory.mktemp("inventory") / "hosts.yml"
    return droplet.write_inventory(
        path,
        funding_ws_url=sim.ws_url(),
        funding_watchdog_sec=5,  # so the hung-daemon test takes seconds, not minutes
        funding_verify_timeout=60,
    )


def state(droplet: Droplet):
    return decode_state(droplet.ssh("cat", STATE_FILE).stdout.encode())


def starts(droplet: Droplet) -> int:
    journal = droplet.ssh("journalctl", "-u", SERVICE, "--no-pager", "-o", "cat").stdout
    return journal.count("daemon started:")


class FileSampler:
    """Reads the droplet's state file over SSH in a loop, from a thread."""

    def __init__(self, droplet: Droplet) -> None:
        self.droplet = droplet
        self.samples: list = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        # Every 0.1 s: a shared SSH connection reads in ~10 ms, and a tighter loop would only
        # take CPU from the deploy it watches.
        while not self._stop.wait(0.1):
            out = self.droplet.ssh("cat", STATE_FILE, check=False).stdout
            try:
                self.samples.append(decode_state(out.encode()))
            except StateFileError:
                self.failures += 1

    def __enter__(self) -> FileSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def daemon_version(droplet: Droplet) -> str:
    binary = "/opt/binance-funding-ws/current/venv/bin/binance-funding-ws"
    return droplet.ssh(binary, "--version").stdout.split()[-1]


# -- a host the daemon cannot run on is refused before anything changes on it ------------------


@pytest.fixture(scope="module")
def bullseye(tmp_path_factory):
    """Debian 11: systemd and glibc, but Python 3.9."""
    with boot("bullseye", tmp_path_factory) as running:
        yield running


def refusal_line(result: subprocess.CompletedProcess[str]) -> str:
    (line,) = [ln for ln in result.stdout.splitlines() if "refusing to deploy" in ln][:1]
    return line


def test_python_3_9_is_refused_in_one_line_and_nothing_changes(bullseye, tmp_path):
    inventory = bullseye.write_inventory(tmp_path / "hosts.yml")
    result = playbook("deploy.yml", inventory)
    counts = recap(result)
    assert result.returncode != 0 and counts["changed"] == 0 and counts["failed"] == 1
    line = refusal_line(result)
    assert "refusing to deploy to volspike-do: /usr/bin/python3 is CPython 3.9;" in line
    assert "needs CPython 3.10 or newer" in line and "set funding_python" in line
    for path in (
        "/opt/binance-funding-ws",
        "/etc/binance-funding-ws",
        f"/etc/systemd/system/{SERVICE}",
    ):
        assert bullseye.ssh("test", "-e", path, check=False).returncode == 1
    assert bullseye.ssh("id", "trader", check=False).returncode == 1


def test_a_host_without_the_named_python_is_refused_in_one_line(bullseye, tmp_path):
    # No python3 at all: the preflight looks with raw, which needs none.
    bullseye.ssh("sh", "-c", "rm /usr/bin/python3 /usr/bin/python3.9")
    inventory = bullseye.write_inventory(tmp_path / "hosts.yml")
    result = playbook("deploy.yml", inventory)
    assert result.returncode != 0 and recap(result)["changed"] == 0
    line = refusal_line(result)
    assert "refusing to deploy to volspike-do: no /usr/bin/python3 found;" in line
    assert "needs CPython 3.10 or newer" in line


# -- Debian 12 and 13 -----------------------------------------------------------------------------


def test_rollback_refuses_when_nothing_was_deployed(inventory):
    result = playbook("rollback.yml", inventory)
    assert result.returncode != 0
    assert "nothing to roll back to" in result.stdout


# The earlier script as the user's droplet runs it: same unit name, user and state file.
EARLIER_SCRIPT = ROOT / "tests/earlier_script.py"
REPLACED_UNIT = f"/opt/binance-funding-ws/replaced/{SERVICE}"
EARLIER_EXEC = f"/usr/bin/python3 /usr/local/lib/earlier-funding/earlier_script.py {STATE_FILE}"
EARLIER_UNIT = f"""[Unit]
Description=Binance funding rates to a JSON file (the earlier script)
After=network-online.target

[Service]
User=trader
ExecStart={EARLIER_EXEC}
Restart=always

[Install]
WantedBy=multi-user.target
"""
# What a reader of the state file sees, every 0.2 s, run on the droplet as the bot's user.
SAMPLER = """
import json, sys, time
path, out = sys.argv[1], sys.argv[2]
with open(out, "a") as log:
    while True:
        at = time.time()
        try:
            with open(path, "rb") as file:
                doc = json.loads(file.read())
            sample = {"format": "ours" if "schema_version" in doc else "earlier",
                      "funding": len(doc["funding"])}
        except FileNotFoundError:
            sample = {"problem": "missing"}
        except (ValueError, KeyError, TypeError) as exc:
            sample = {"problem": "unreadable: %r" % exc}
        log.write(json.dumps(dict(sample, at=at)) + "\\n")
        log.flush()
        time.sleep(max(0.0, at + 0.2 - time.time()))
"""
SAMPLES = "/var/tmp/state-samples.jsonl"
CURRENT = "/opt/binance-funding-ws/current/venv"


def run_the_earlier_script(droplet: Droplet) -> None:
    """The earlier install: its user, its directory, its unit, running and writing."""
    droplet.ssh("useradd", "--create-home", "--shell", "/bin/bash", "trader")
    droplet.ssh("install", "-d", "-o", "trader", "-g", "trader", str(Path(STATE_FILE).parent))
    droplet.ssh("install", "-d", "/usr/local/lib/earlier-funding")
    script = "/usr/local/lib/earlier-funding/earlier_script.py"
    droplet.ssh("tee", script, input=EARLIER_SCRIPT.read_text())
    droplet.ssh("tee", f"/etc/systemd/system/{SERVICE}", input=EARLIER_UNIT)
    droplet.ssh("systemctl", "enable", "--now", SERVICE)
    wait_for(lambda: earlier_funding(droplet), 30, "the earlier script's first write", step=0.2)


def earlier_funding(droplet: Droplet, path: str = STATE_FILE) -> dict:
    out = droplet.ssh("cat", path, check=False).stdout
    try:
        doc = json.loads(out)
    except ValueError:
        return {}
    return doc.get("funding", {}) if "schema_version" not in doc else {}


def earlier_processes(droplet: Droplet) -> str:
    """The earlier script's processes, if any (the bracket keeps pgrep's own line out)."""
    return droplet.ssh("pgrep", "-a", "-f", "[e]arlier_script.py", check=False).stdout


class Sampler:
    """SAMPLER as a transient unit on the droplet (user trader) while the block runs."""

    def __init__(self, droplet: Droplet) -> None:
        self.droplet = droplet
        self.samples: list[dict] = []

    def __enter__(self) -> Sampler:
        self.droplet.ssh("tee", "/var/tmp/sampler.py", input=SAMPLER)
        self.droplet.ssh("rm", "-f", SAMPLES)
        self.droplet.ssh(
            "systemd-run", "--unit=state-sampler", "--uid=trader", "--quiet",
            "/usr/bin/python3", "/var/tmp/sampler.py", STATE_FILE, SAMPLES,
        )  # fmt: skip
        wait_for(lambda: self._read(), 30, "the first sample", step=0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        # The daemon's first second is part of the switch: five samples more.
        seen = len(self._read())
        wait_for(lambda: len(self._read()) >= seen + 5, 30, "five more samples", step=0.2)
        self.droplet.ssh("systemctl", "stop", "state-sampler", check=False)
        self.samples = self._read()

    def _read(self) -> list[dict]:
        out = self.droplet.ssh("cat", SAMPLES, check=False).stdout
        return [json.loads(line) for line in out.splitlines() if line.endswith("}")]


def test_a_deploy_over_the_earlier_script_loses_nothing_and_installs_a_hardened_service(
    droplet, inventory
):
    run_the_earlier_script(droplet)
    with Sampler(droplet) as sampler:
        result = playbook("deploy.yml", inventory)
    assert result.returncode == 0
    assert recap(result)["failed"] == 0
    # A reader never found the file missing, unreadable or without funding, through the switch.
    problems = [s for s in sampler.samples if "problem" in s or s["funding"] == 0]
    assert problems == [], problems
    formats = [s["format"] for s in sampler.samples]
    assert formats[0] == "earlier" and formats[-1] == "ours", "the switch was not sampled"
    times = [sample["at"] for sample in sampler.samples]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    print(f"{len(gaps) + 1} samples, the longest gap {max(gaps):.2f} s")
    # The user's last file is kept, named for what it is; the earlier writer's temporary is gone.
    directory = str(Path(STATE_FILE).parent)
    kept = droplet.ssh("sh", "-c", f"ls -A {directory}").stdout.split()
    (pre,) = [name for name in kept if name.startswith(".funding_state.json.pre-")]
    assert not [name for name in kept if "corrupt" in name or name == ".funding_state.tmp"], kept
    assert set(earlier_funding(droplet, f"{directory}/{pre}")) == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    journal = droplet.ssh("journalctl", "-u", SERVICE, "--no-pager", "-o", "cat").stdout
    assert "imported" in journal and pre in journal
    # The unit it replaced is kept for rollback.yml.
    replaced = droplet.ssh("cat", REPLACED_UNIT).stdout
    assert replaced == EARLIER_UNIT
    # And what it installed: one writer, ours, hardened, connected.
    props = unit(droplet)
    assert props["ActiveState"] == "active" and props["User"] == "trader"
    command = droplet.ssh("ps", "-o", "user=,args=", "-p", props["MainPID"]).stdout.split()
    assert command[0] == "trader" and command[-2:] == [f"{CURRENT}/bin/binance-funding-ws", "run"]
    assert not earlier_processes(droplet)
    doc = state(droplet)
    assert doc.connection_status.state == "connected"
    assert now_ms() - doc.updated_at < 10_000 and len(doc.funding) == 33
    mode = droplet.ssh("stat", "-c", "%U %a", STATE_FILE).stdout.split()
    assert mode == ["trader", "644"]
    assert "HEALTHY" in result.stdout  # deploy ends by showing the verified status


def test_exposure_is_2_or_lower(droplet):
    out = droplet.ssh("systemd-analyze", "security", SERVICE, "--no-pager").stdout
    exposure = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", out)[1])
    assert exposure <= 2.0, out[-3000:]


def test_a_second_deploy_changes_nothing_and_keeps_the_process(droplet, inventory):
    before = unit(droplet)["MainPID"]
    result = playbook("deploy.yml", inventory)
    assert result.returncode == 0 and recap(result)["changed"] == 0
    assert unit(droplet)["MainPID"] == before


def test_the_droplet_gets_the_runtime_only(droplet):
    venv = "/opt/binance-funding-ws/current/venv"
    listing = droplet.ssh("sh", "-c", f"ls {venv}/lib/python3*/site-packages").stdout.split()
    assert "binance_funding_ws" in listing
    unwanted = ("binance_funding_sim", "funding_monitor", "textual", "paramiko", "rich")
    assert not [name for name in listing if name.startswith(unwanted)], listing
    commands = droplet.ssh("ls", f"{venv}/bin").stdout.split()
    assert "binance-funding-ws" in commands and "funding-monitor" not in commands
    help_text = droplet.ssh(f"{venv}/bin/binance-funding-ws", "--help").stdout
    assert "status" in help_text and "compare" in help_text and "simulate" not in help_text


def test_a_change_outside_the_daemon_redeploys_nothing(droplet, inventory, tmp_path):
    copy = copy_project(tmp_path)
    for elsewhere in ("monitor/funding_monitor/app.py", "simulator/binance_funding_sim/server.py"):
        path = copy / elsewhere
        path.write_text(path.read_text() + "\n# edited outside the daemon\n")
    before = unit(droplet)["MainPID"]
    result = playbook("deploy.yml", inventory, "-e", f"funding_project_dir={copy}")
    assert result.returncode == 0 and recap(result)["changed"] == 0
    assert unit(droplet)["MainPID"] == before


def test_check_diff_runs_cleanly_on_a_deployed_host(droplet, inventory):
    result = playbook("deploy.yml", inventory, "--check", "--diff")
    assert result.returncode == 0 and recap(result)["changed"] == 0


def test_rollback_without_an_earlier_release_of_ours_puts_the_earlier_unit_back(droplet, inventory):
    result = playbook("rollback.yml", inventory)
    said = " ".join(result.stdout.split())
    assert result.returncode == 0 and "had no earlier release of ours: put back" in said
    assert droplet.ssh("cat", f"/etc/systemd/system/{SERVICE}").stdout == EARLIER_UNIT
    wait_for(lambda: unit(droplet)["ActiveState"] == "active", 30, "the earlier unit running")
    command = droplet.ssh("ps", "-o", "args=", "-p", unit(droplet)["MainPID"]).stdout.strip()
    assert command == EARLIER_EXEC
    wait_for(lambda: earlier_funding(droplet), 30, "the earlier script writing again", step=0.2)
    # The next test's deploy brings ours back (one start of ours, a new process).


def test_a_changed_variable_restarts_exactly_once(droplet, inventory):
    before_pid, before_starts = unit(droplet)["MainPID"], starts(droplet)
    result = playbook("deploy.yml", inventory, "-e", "funding_stall_timeout=20")
    assert result.returncode == 0 and recap(result)["changed"] >= 1
    assert unit(droplet)["MainPID"] != before_pid
    assert starts(droplet) == before_starts + 1
    assert not earlier_processes(droplet)  # ours again, over the unit the rollback put back
    env = droplet.ssh("cat", "/etc/binance-funding-ws/daemon.env").stdout
    assert "FUNDING_WS_STALL_TIMEOUT=20" in env
    # Back to the inventory's settings for the following tests.
    assert playbook("deploy.yml", inventory).returncode == 0


def test_logs_playbook_prints_journal_lines(inventory):
    result = playbook("logs.yml", inventory, "-e", "funding_logs_lines=5")
    assert result.returncode == 0
    lines = [line for line in result.stdout.splitlines() if "binance-funding-ws[" in line]
    assert 1 <= len(lines) <= 5, result.stdout
    assert not any(line.strip().startswith(("{", '"stdout')) for line in lines)


def test_status_playbook_reports_healthy_also_through_a_sudo_user(droplet, inventory, tmp_path):
    result = playbook("status.yml", inventory)
    assert result.returncode == 0
    assert "active (running)" in result.stdout and "HEALTHY" in result.stdout
    assert "binance-funding-ws is healthy" in result.stdout
    sudo_inventory = droplet.write_inventory(tmp_path / "sudo.yml", user="deployer")
    assert playbook("status.yml", sudo_inventory).returncode == 0


def test_funding_monitor_reads_the_droplet_like_ssh_does(droplet, tmp_path):
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host volspike-do\n  HostName 127.0.0.1\n  Port {droplet.ssh_port}\n  User root\n"
        f"  IdentityFile {droplet.key_path}\n  UserKnownHostsFile {droplet.known_hosts}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "funding_monitor", "--host", "volspike-do", "--ssh-config",
         str(config), "--once", "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    facts = json.loads(result.stdout)
    assert result.returncode == 0, facts
    assert facts["service"].startswith("active (running) since")  # systemctl show, over SSH
    assert facts["state"] == "connected" and facts["funding_symbols"] == 33


def test_compare_playbook_reports_the_live_file_against_rest(inventory, sim):
    result = playbook("compare.yml", inventory, "-e", f"funding_compare_rest_url={sim.rest_url()}")
    assert result.returncode == 0 and "MISMATCH" not in result.stdout
    assert "33 compared" in result.stdout
    sim.call("diverge", "BTCUSDT", lastFundingRate="0.01000000")
    try:
        result = playbook(
            "compare.yml", inventory, "-e", f"funding_compare_rest_url={sim.rest_url()}"
        )
    finally:
        sim.call("clear_divergence")
    assert result.returncode != 0 and "MISMATCH BTCUSDT: funding rate" in result.stdout


def test_a_hung_daemon_is_restarted_by_the_watchdog(droplet):
    props = unit(droplet)
    restarts = int(props["NRestarts"])
    droplet.ssh("kill", "-STOP", props["MainPID"])
    wait_for(
        lambda: (
            unit(droplet)["NRestarts"] != str(restarts) and unit(droplet)["ActiveState"] == "active"
        ),
        60,
        "systemd to kill the stopped daemon and start a new one",
        step=1,
    )
    journal = droplet.ssh("journalctl", "-u", SERVICE, "--no-pager", "-n", "50").stdout
    assert "Watchdog timeout" in journal
    wait_for(lambda: state(droplet).connection_status.state == "connected", 30, "reconnected")


def test_an_upgrade_then_rollback_runs_the_previous_release(droplet, inventory, tmp_path):
    newer = tmp_path / "project"
    ignore = shutil.ignore_patterns("*.egg-info", "build", "__pycache__")
    shutil.copytree(ROOT / "daemon", newer / "daemon", ignore=ignore)
    pyproject = newer / "daemon/pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "0.1.1"'))
    init = newer / "daemon/binance_funding_ws/__init__.py"
    init.write_text(init.read_text().replace('__version__ = "0.1.0"', '__version__ = "0.1.1"'))
    before = len(state(droplet).funding)
    with FileSampler(droplet) as sampler:  # what the bot sees while the release changes
        result = playbook("deploy.yml", inventory, "-e", f"funding_project_dir={newer}")
    assert result.returncode == 0
    assert daemon_version(droplet) == "0.1.1"
    pids = {doc.connection_status.pid for doc in sampler.samples}
    assert len(pids) >= 2, "no sample was taken across the restart"
    assert sampler.failures == 0
    assert min(len(doc.funding) for doc in sampler.samples) >= before  # warm start
    pid = unit(droplet)["MainPID"]
    result = playbook("rollback.yml", inventory)
    assert result.returncode == 0 and "rolled back from 0.1.1-" in result.stdout
    assert daemon_version(droplet) == "0.1.0"
    assert unit(droplet)["MainPID"] != pid
    assert state(droplet).connection_status.state == "connected"


def test_a_state_directory_swapped_for_a_link_is_refused_and_its_target_stays_root(
    droplet, inventory
):
    # The service user owns its home, so it can replace the state directory by a
    # link to a root-owned directory; a redeploy must not follow it and hand the target over.
    state_dir = str(Path(STATE_FILE).parent)
    target = "/var/lib/root-owned-target"  # stands for /etc without risking the droplet
    droplet.ssh("install", "-d", "-o", "root", "-g", "root", "-m", "0755", target)
    # Stopped first: a running daemon's private mount of the directory is beside the point.
    droplet.ssh("systemctl", "stop", SERVICE)
    as_trader(droplet, f"mv {state_dir} {state_dir}.real && ln -s {target} {state_dir}")
    try:
        result = playbook("deploy.yml", inventory)
        said = " ".join((result.stdout + result.stderr).split())  # YAML output wraps lines
        assert result.returncode != 0
        assert f"refusing to deploy: {state_dir} is a symbolic link (to {target})" in said
        assert droplet.ssh("stat", "-c", "%U:%G %a", target).stdout.split() == ["root:root", "755"]
        assert droplet.ssh("ls", "-A", target).stdout == ""
    finally:
        as_trader(droplet, f"rm {state_dir} && mv {state_dir}.real {state_dir}")
    result = playbook("deploy.yml", inventory)  # the directory is real again: all is well
    assert result.returncode == 0, journal_tail(droplet)
    assert state(droplet).connection_status.state == "connected"


def as_trader(droplet: Droplet, script: str) -> None:
    droplet.ssh("runuser", "-u", "trader", "--", "sh", "-c", script)


# -- the audit: a sample of the state file on a timer, the report, the metrics ------------------

AUDIT = "binance-funding-ws-audit"
HISTORY = "/var/lib/binance-funding-ws/audit.jsonl"
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"  # Debian's node_exporter textfile directory
METRICS = f"{TEXTFILE_DIR}/binance-funding-ws.prom"  # root's link to the audit's own file:
AUDIT_METRICS = "/var/lib/binance-funding-ws/binance-funding-ws.prom"  # beside the history


@pytest.fixture(scope="module")
def audit_inventory(inventory, sim, tmp_path_factory):
    """The inventory with a quick audit against the simulator, and metrics."""
    hosts = json.loads(inventory.read_text())
    hosts["funding_ws"]["hosts"]["volspike-do"].update(
        funding_audit_interval=2,
        funding_audit_compare_every=4,
        funding_audit_rest_url=sim.rest_url(),
        funding_metrics_textfile_dir=TEXTFILE_DIR,
    )
    path = tmp_path_factory.mktemp("audit") / "hosts.yml"
    path.write_text(json.dumps(hosts))
    return path


def audit_history(droplet: Droplet) -> list:
    out = droplet.ssh("cat", HISTORY, check=False).stdout
    return parse_lines(out.encode().splitlines(keepends=True)).samples


def judged_coverage(samples: list) -> list:
    return [
        s.compare
        for s in samples
        if s.compare is not None and s.compare.error is None and s.compare.coverage_error is None
    ]


def test_a_root_textfile_directory_stays_roots_and_gets_a_root_link_to_the_metrics(
    droplet, audit_inventory
):
    # node_exporter's directory as an operator has it: root's, 0750, with root's own apt.prom.
    # The service user must get nothing in it: it could fake any metric, or plant links for
    # root's own textfile jobs to write through.
    droplet.ssh("install", "-d", "-o", "root", "-g", "root", "-m", "0750", TEXTFILE_DIR)
    droplet.ssh("sh", "-c", f"echo 'apt_upgrades_pending 0' > {TEXTFILE_DIR}/apt.prom")
    result = playbook("deploy.yml", audit_inventory)
    assert result.returncode == 0
    stat = droplet.ssh("stat", "-c", "%U:%G %a", TEXTFILE_DIR).stdout.split()
    assert stat == ["root:root", "750"]
    assert sorted(droplet.ssh("ls", "-A", TEXTFILE_DIR).stdout.split()) == [
        "apt.prom",
        "binance-funding-ws.prom",
    ]
    assert droplet.ssh("cat", f"{TEXTFILE_DIR}/apt.prom").stdout == "apt_upgrades_pending 0\n"
    assert droplet.ssh("stat", "-c", "%U %F", METRICS).stdout.strip() == "root symbolic link"
    assert droplet.ssh("readlink", METRICS).stdout.strip() == AUDIT_METRICS
    # Exported: read through the link, as node_exporter's textfile collector reads (docs/alerts.md).
    wait_for(
        lambda: "binance_funding_ws_connected 1" in droplet.ssh("cat", METRICS, check=False).stdout,
        60,
        "the audit's metrics, read through the textfile directory",
        step=1,
    )
    assert droplet.ssh("stat", "-c", "%U", AUDIT_METRICS).stdout.strip() == "trader"
    planted = f"touch {TEXTFILE_DIR}/fake.prom"
    assert droplet.ssh("runuser", "-u", "trader", "--", "sh", "-c", planted, check=False).returncode


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """What a deploy that one check refused said (Ansible's YAML output wraps its lines)."""
    assert result.returncode != 0 and recap(result)["failed"] == 1
    return " ".join((result.stdout + result.stderr).split())


def test_a_history_directory_swapped_for_a_link_is_refused_and_its_target_stays_root(
    droplet, audit_inventory
):
    # The history in a directory of the user's home: the user can make its directory a link to
    # a root-only directory; the deploy must not follow it and hand the target over.
    link, target = "/home/trader/audit", "/var/lib/root-only-target"
    droplet.ssh("install", "-d", "-o", "root", "-g", "root", "-m", "0700", target)
    as_trader(droplet, f"ln -s {target} {link}")
    try:
        history = ("-e", f"funding_audit_history={link}/audit.jsonl")
        said = refused(playbook("deploy.yml", audit_inventory, *history))
        assert f"refusing to deploy: {link} is a symbolic link (to {target})" in said
        assert "set funding_audit_history to a path without it" in said
        assert droplet.ssh("stat", "-c", "%U:%G %a", target).stdout.split() == ["root:root", "700"]
        assert droplet.ssh("ls", "-A", target).stdout == ""
    finally:
        as_trader(droplet, f"rm {link}")
    # The audit that was there runs on, with its history where it was.
    assert droplet.ssh("systemctl", "is-active", f"{AUDIT}.timer").stdout.strip() == "active"


def test_an_existing_history_directory_of_roots_keeps_its_owner_and_the_deploy_says_why(
    droplet, audit_inventory
):
    kept = "/var/lib/roots-own-directory"
    droplet.ssh("install", "-d", "-o", "root", "-g", "root", "-m", "0750", kept)
    history = ("-e", f"funding_audit_history={kept}/audit.jsonl")
    said = refused(playbook("deploy.yml", audit_inventory, *history))
    why = f"refusing to deploy: {kept}, the directory of funding_audit_history, belongs to root"
    assert why in said
    assert droplet.ssh("stat", "-c", "%U:%G %a", kept).stdout.split() == ["root:root", "750"]


def test_the_audit_samples_on_a_timer_as_the_service_user(droplet, audit_inventory):
    result = playbook("deploy.yml", audit_inventory)
    assert result.returncode == 0
    started = now_ms()
    samples = wait_for(
        lambda: (
            (found := audit_history(droplet))
            and len([s for s in found if s.at > started]) >= 3
            and judged_coverage([s for s in found if s.at > started])
            and found
        ),
        120,  # coverage is judged once the feed has been connected for funding_max_age
        "three samples and a compare round with coverage",
        step=1,
    )
    latest = samples[-1]
    assert latest.readable and latest.state == "connected" and latest.interval_s == 2
    assert latest.daemon_alive is True  # the hardened audit can still tell the daemon is there
    last_round = judged_coverage(samples)[-1]
    assert last_round.compared + len(last_round.stale) + len(last_round.moving) == 33
    assert last_round.mismatched == {} and last_round.missing == [] and last_round.listed == 32
    assert droplet.ssh("stat", "-c", "%U %a", HISTORY).stdout.split() == ["trader", "644"]
    show = droplet.ssh("systemctl", "show", f"{AUDIT}.service", "--property=User").stdout
    assert show.strip() == "User=trader"
    assert droplet.ssh("systemctl", "is-active", f"{AUDIT}.timer").stdout.strip() == "active"
    metrics = droplet.ssh("cat", METRICS).stdout
    assert "binance_funding_ws_connected 1" in metrics
    assert "binance_funding_ws_funding_symbols 33" in metrics
    journal = droplet.ssh("journalctl", "-u", f"{AUDIT}.service", "--no-pager", "-o", "cat")
    assert "Finished" not in journal.stdout  # LogLevelMax=notice: no line pair per sample


def test_the_audit_unit_exposure_is_2_or_lower(droplet):
    out = droplet.ssh("systemd-analyze", "security", f"{AUDIT}.service", "--no-pager").stdout
    exposure = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", out)[1])
    print(f"{AUDIT}.service exposure {exposure}")
    assert exposure <= 2.0, out[-3000:]


def test_a_rerun_with_the_audit_changes_nothing(droplet, audit_inventory):
    result = playbook("deploy.yml", audit_inventory)
    assert result.returncode == 0 and recap(result)["changed"] == 0
    checked = playbook("deploy.yml", audit_inventory, "--check", "--diff")
    assert checked.returncode == 0 and recap(checked)["changed"] == 0


def test_report_playbook_prints_the_report_and_fails_only_when_strict(audit_inventory):
    # The history holds the whole file's day: the watchdog kill, the upgrade and the rollback.
    result = playbook("report.yml", audit_inventory, "-e", "funding_report_since=1h")
    assert result.returncode == 0, "anything but SAFE is a report, not a failure"
    verdict = re.search(r"binance-funding-ws report: (\w+)", result.stdout)[1]
    assert verdict in ("NOT_YET", "NOT_SAFE") and "restart(s)" in result.stdout
    strict = playbook("report.yml", audit_inventory, "-e", '{"funding_report_strict": true}')
    assert strict.returncode != 0 and "keep the bot's REST fallback" in strict.stdout
    recent = ("-e", "funding_report_since=20s", "-e", "funding_report_min_period=10s")
    safe = playbook("report.yml", audit_inventory, *recent, "-e", '{"funding_report_strict": true}')
    assert safe.returncode == 0 and "report: SAFE" in safe.stdout


def test_disabling_the_audit_removes_it_and_keeps_its_history(droplet, audit_inventory, inventory):
    kept = len(audit_history(droplet))
    result = playbook("deploy.yml", audit_inventory, "-e", '{"funding_audit_enabled": false}')
    assert result.returncode == 0
    for kind in ("service", "timer"):
        show = droplet.ssh("systemctl", "show", f"{AUDIT}.{kind}", "--property=LoadState")
        assert show.stdout.strip() == "LoadState=not-found"
    assert len(audit_history(droplet)) >= kept
    assert droplet.ssh("test", "-L", METRICS, check=False).returncode == 1  # the link is gone
    assert droplet.ssh("ls", "-A", TEXTFILE_DIR).stdout.split() == ["apt.prom"]  # root's stays
    # Back to the inventory's settings (the audit on, at its defaults) for the tests that follow.
    assert playbook("deploy.yml", inventory).returncode == 0
    assert droplet.ssh("systemctl", "is-active", f"{AUDIT}.timer").stdout.strip() == "active"


def test_uninstall_removes_the_service_and_keeps_the_state_file(droplet, inventory):
    result = playbook("uninstall.yml", inventory)
    said = " ".join(result.stdout.split())
    assert result.returncode == 0
    assert unit(droplet)["LoadState"] == "not-found"
    # All of ours goes; the earlier script's unit, kept when ours first replaced it, stays.
    assert droplet.ssh("ls", "-A", "/opt/binance-funding-ws").stdout.split() == ["replaced"]
    assert droplet.ssh("cat", REPLACED_UNIT).stdout == EARLIER_UNIT
    assert f"the unit the first deploy replaced kept: {REPLACED_UNIT}" in said
    doc = state(droplet)
    assert doc.connection_status.state == "stopped"  # the daemon's last word, kept
    again = playbook("uninstall.yml", inventory)
    assert again.returncode == 0, "uninstalling twice is harmless"


def test_uninstall_leaves_a_unit_that_is_not_ours_running_and_keeps_its_copy(droplet, inventory):
    # The earlier script's unit back in place and running, as rollback.yml leaves a host with
    # no earlier release of ours (tested above), here put back by hand: ours is gone already.
    droplet.ssh("cp", REPLACED_UNIT, f"/etc/systemd/system/{SERVICE}")
    droplet.ssh("systemctl", "daemon-reload")
    droplet.ssh("systemctl", "start", SERVICE)
    earlier_pid = unit(droplet)["MainPID"]
    assert earlier_pid != "0"
    result = playbook("uninstall.yml", inventory)
    said = " ".join(result.stdout.split())
    assert result.returncode == 0
    assert f"{SERVICE} is not ours (the unit the first deploy replaced" in said
    assert unit(droplet)["ActiveState"] == "active" and unit(droplet)["MainPID"] == earlier_pid
    assert droplet.ssh("cat", f"/etc/systemd/system/{SERVICE}").stdout == EARLIER_UNIT
    assert droplet.ssh("ls", "-A", "/opt/binance-funding-ws").stdout.split() == ["replaced"]
    assert droplet.ssh("cat", REPLACED_UNIT).stdout == EARLIER_UNIT
