"""Build a release on the controller: the project's wheel plus its dependencies' wheels for
the target's Python and platform, so the droplet installs with ``pip --no-index``.

Prints one JSON object: ``{"release": ..., "version": ..., "dir": ..., "wheels": [...],
"built": bool}``. A release holds only the runtime distribution (``daemon/`` of the project:
the daemon, the reader API and the host tools) and its two dependencies. It is named
``<version>-<hash of daemon/>`` and built once per target platform; later runs reuse the cache
(``built: false``). So a deploy with nothing changed in ``daemon/`` reports nothing changed,
whatever else in the repository did (the monitor, the simulator, tests, docs).

``--extra NAME`` (``notify``: apprise) builds the wheels an optional extra of the runtime
distribution adds, into a wheelhouse of its own beside the release's (``<platform>-<extra>``),
and prints that one instead. The release's name and wheels stay the same whether or not an
extra is wanted: turning notifications on installs apprise into the running release's
virtualenv and never makes a new release (which would restart the daemon).

Run with the controller's Ansible Python (it has pip): ansible passes the target facts.
"""

from __future__ import annotations

import argparse
import email.parser
import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

RUNTIME = "daemon"  # the runtime distribution's directory in the project
# What the runtime wheel is built from; build products and caches beside them are not sources.
SOURCES = ("pyproject.toml", "README.md", "binance_funding_ws")
# Optional extras of the runtime distribution a deploy may add (daemon/pyproject.toml).
EXTRAS = ("notify",)


def source_hash(project: Path) -> str:
    """A hash of the runtime distribution's sources (paths and contents)."""
    root = project / RUNTIME
    digest = hashlib.sha256()
    for top in SOURCES:
        path = root / top
        files = [path] if path.is_file() else sorted(path.rglob("*"))
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts:
                digest.update(str(file.relative_to(root)).encode() + b"\0")
                digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def platform_tags(machine: str, libc: str) -> list[str]:
    """Every manylinux tag a glibc target accepts, newest first.

    pip does not expand ``--platform manylinux_2_36_x86_64`` to the older tags a wheel may
    carry (msgspec ships ``manylinux_2_17``, websockets ``manylinux_2_5``), so all are passed.
    """
    if not libc.startswith("glibc"):
        raise SystemExit(f"unsupported target C library {libc!r}: only glibc is supported")
    major, minor = (int(part) for part in libc.split()[1].split(".")[:2])
    if major != 2:
        raise SystemExit(f"unexpected glibc version {libc!r}")
    tags = [f"manylinux_2_{m}_{machine}" for m in range(minor, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags += [f"{name}_{machine}" for glibc, name in legacy.items() if minor >= glibc]
    return tags


def pip(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"pip {args[0]} failed:\n{tail}")


def download_for_target(
    requirement: str, dest: Path, python: str, platforms: list[str], pip_args: list[str]
) -> None:
    """Binary wheels of ``requirement`` and its dependencies for the target's CPython and
    platform, not the controller's."""
    pip(
        "download",
        "--quiet",
        "--only-binary=:all:",
        "--dest",
        str(dest),
        "--python-version",
        python,
        "--implementation",
        "cp",
        "--abi",
        f"cp{python.replace('.', '')}",
        *(f"--platform={tag}" for tag in platforms),
        *pip_args,
        requirement,
    )


def build(
    project: Path, target: Path, python: str, platforms: list[str], pip_args: list[str]
) -> None:
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(staging), str(project / RUNTIME))
        (wheel,) = staging.glob("binance_funding_ws-*.whl")
        download_for_target(str(wheel), staging, python, platforms, pip_args)
        staging.rename(target)  # complete releases only: a failed build leaves no cache entry
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def provided_extras(wheel: Path) -> set[str]:
    """The extras a wheel's metadata declares (``Provides-Extra``)."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.BytesHeaderParser().parsebytes(archive.read(name))
    return set(metadata.get_all("Provides-Extra") or [])


def build_extra(
    release: Path, target: Path, extra: str, python: str, platforms: list[str], pip_args: list[str]
) -> None:
    """The wheels ``binance-funding-ws[extra]`` needs beyond the release's own."""
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        (wheel,) = release.glob("binance_funding_ws-*.whl")
        if extra not in provided_extras(wheel):  # pip would only warn, and add nothing
            raise SystemExit(f"{wheel.name} has no extra {extra!r}")
        download_for_target(f"{wheel}[{extra}]", staging, python, platforms, pip_args)
        for already in release.glob("*.whl"):  # the release's wheels are copied once, there
            (staging / already.name).unlink(missing_ok=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--python", required=True, help="target Python, e.g. 3.11")
    parser.add_argument("--machine", required=True, help="target machine, e.g. x86_64")
    parser.add_argument("--libc", required=True, help='target libc, e.g. "glibc 2.36"')
    parser.add_argument("--pip-arg", action="append", default=[])
    parser.add_argument(
        "--extra", choices=EXTRAS, help="print the wheels this extra adds (built when missing)"
    )
    args = parser.parse_args()

    project = args.project.resolve()
    pyproject = project / RUNTIME / "pyproject.toml"
    version = tomllib.loads(pyproject.read_text())["project"]["version"]
    release = f"{version}-{source_hash(project)}"
    platforms = platform_tags(args.machine, args.libc)
    target = args.cache / release / f"cp{args.python.replace('.', '')}-{platforms[0]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with (args.cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two hosts of one play build the same release once
        built = not target.is_dir()
        if built:
            build(project, target, args.python, platforms, args.pip_arg)
        if args.extra:
            release_dir = target
            target = target.with_name(f"{target.name}-{args.extra}")
            built = not target.is_dir()
            if built:
                build_extra(release_dir, target, args.extra, args.python, platforms, args.pip_arg)
    wheels = sorted(p.name for p in target.glob("*.whl"))
    print(
        json.dumps(
            {
                "release": release,
                "version": version,
                "dir": str(target),
                "wheels": wheels,
                "built": built,
                **({"extra": args.extra} if args.extra else {}),
            }
        )
    )


if __name__ == "__main__":
    main()
