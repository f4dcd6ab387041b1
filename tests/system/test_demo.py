"""The README's demo runs as written (in its quick mode) and shows what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_and_shows_the_file_filling_up_and_recovering(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--quick", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "simulator listening on ws://127.0.0.1:" in out
    assert "funding= 43 tickers= 42 no_ticker=['MATICUSDT']" in out
    assert "BTCUSDT via read_state()+fresh_funding(): mark " in out
    assert "reconnects=1" in out and "errors=6" in out
    assert "HEALTHY" in out and "daemon exited 0; state=stopped" in out
    assert "Traceback" not in out + result.stderr
