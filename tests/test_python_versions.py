"""The oldest Python that pyproject.toml admits can run relugeo's code: a static check with vermin
(which catches, for example, ``typing.Self`` from 3.11), and a byte-compile under that Python where
pyenv or the PATH has it."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _oldest_supported() -> tuple[int, int]:
    text = (ROOT / "pyproject.toml").read_text()
    major, minor = re.search(r'requires-python\s*=\s*">=(\d+)\.(\d+)"', text).groups()
    return int(major), int(minor)


def test_code_needs_no_newer_python_than_pyproject_claims():
    vermin = pytest.importorskip("vermin")
    oldest = "%d.%d" % _oldest_supported()
    paths = [str(ROOT / p) for p in ("relugeo", "tests", "bench", "examples")]
    out = subprocess.run(
        [sys.executable, "-c", "import sys; from vermin.main import main; sys.exit(main())", f"-t={oldest}-", "--no-tips", "--violations", "--eval-annotations",
         "--no-parse-comments", *paths],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, f"code that Python {oldest} cannot run:\n{out.stdout}{out.stderr}"
    assert vermin  # the import is the check that the tool is there


def _oldest_interpreter() -> str | None:
    name = "python%d.%d" % _oldest_supported()
    pyenv = Path.home() / ".pyenv" / "versions"
    for version in sorted(pyenv.glob("%d.%d.*" % _oldest_supported())) if pyenv.is_dir() else []:
        exe = version / "bin" / name
        if exe.exists():
            return str(exe)
    found = shutil.which(name)  # a pyenv shim answers only for the versions it is told to use
    return found if found and ".pyenv/shims" not in found else None


def test_package_byte_compiles_under_the_oldest_python(tmp_path):
    exe = _oldest_interpreter()
    if exe is None:
        pytest.skip("no interpreter for the oldest supported Python on this machine")
    out = subprocess.run([exe, "-m", "compileall", "-q", "-d", "relugeo", str(ROOT / "relugeo")],
                         capture_output=True, text=True, env={"PYTHONPYCACHEPREFIX": str(tmp_path)})
    assert out.returncode == 0, out.stdout + out.stderr
