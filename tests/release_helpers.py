"""What the release tests share: the role's build script and a copy of the project."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "playbooks/roles/funding/files/build_release.py"
sys.path.insert(0, str(BUILD.parent))
import build_release  # noqa: E402, F401  (a script of the role, not a package; re-exported)

# What a copy leaves out: environments, caches and build products, nothing of the sources.
# (.nox's sessions run beside the suite: their temporary files come and go during a copy.)
IGNORE = shutil.ignore_patterns(
    ".venv", ".nox", ".git", "__pycache__", "*.egg-info", "build", ".*cache", ".hypothesis"
)


def copy_project(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(ROOT, copy, ignore=IGNORE)
    return copy
