#!/usr/bin/env python3
"""Set up the project's virtual environment and run the demo or the tests.

    python3 dev.py demo [TEXT]     speak TEXT with the local engine, transcribe it back, print both
    python3 dev.py test [ARGS]     run the whole test suite (pytest ARGS)

Each command first makes ``.venv`` (Python 3.11+) and installs the core and every backend in it; the install is
redone only when a pyproject.toml changes. ``test`` also fetches the Smart Turn model its tests use, once, from the
``pipecat-ai`` wheel on PyPI (``speechbridge_local.smart_turn``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PACKAGES = [".[dev]", *sorted(f"./{p.parent.relative_to(ROOT)}" for p in ROOT.glob("providers/*/pyproject.toml"))]


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def setup() -> Path:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be run by an older python3
        sys.exit(f"speechbridge needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    stamp = VENV / ".installed"
    wanted = hashlib.sha256(
        b"".join(p.read_bytes() for p in sorted(ROOT.glob("**/pyproject.toml")) if ".venv" not in p.parts)
    ).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted and venv_python().exists():
        return venv_python()
    if not venv_python().exists():
        print("creating .venv ...", file=sys.stderr)
        venv.create(VENV, with_pip=True)
    print("installing speechbridge and its backends into .venv ...", file=sys.stderr)
    pip = [str(venv_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    editable = [arg for pkg in PACKAGES for arg in ("-e", pkg)]
    subprocess.run([*pip, *editable], check=True, cwd=ROOT)
    stamp.write_text(wanted)
    return venv_python()


def main() -> int:
    command, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "demo":
        python = setup()
        return subprocess.call([str(python), str(ROOT / "examples" / "roundtrip.py"), *args])
    if command == "test":
        python = setup()
        subprocess.run([str(python), "-m", "speechbridge_local.smart_turn"], check=True, stdout=subprocess.DEVNULL)
        return subprocess.call([str(python), "-m", "pytest", *args], cwd=ROOT)
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
