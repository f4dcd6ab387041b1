"""What the droplet tests share: running a playbook against a droplet and reading its outcome."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from droplet import Droplet

ROOT = Path(__file__).resolve().parent.parent
SERVICE = "binance-funding-ws.service"
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")


def playbook(name: str, inventory: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    result = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), f"playbooks/{name}", *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        # A session of its own is an autogroup of its own: the kernel (sched_autogroup_enabled)
        # shares the CPU between sessions first, and the droplet's side of the deploy runs in
        # sessions of their own (one per SSH command). In the suite's session, the
        # controller's half of every deploy waited behind all the other tests.
        start_new_session=True,
    )
    print(result.stdout[-6000:], result.stderr[-3000:])
    return result


def recap(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    match = re.search(r"volspike-do\s*:\s*(.*)", result.stdout.split("PLAY RECAP")[-1])
    assert match, result.stdout
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match[1])}


def unit(droplet: Droplet) -> dict[str, str]:
    props = "ActiveState,SubState,MainPID,NRestarts,User,LoadState"
    out = droplet.ssh("systemctl", "show", SERVICE, f"--property={props}").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def journal_tail(droplet: Droplet, lines: int = 40) -> str:
    """The unit's and systemd's last journal lines: what a failed start says, for a message."""
    return droplet.ssh(
        "journalctl", "-u", SERVICE, "-u", "init.scope", "-n", str(lines), "--no-pager", check=False
    ).stdout
