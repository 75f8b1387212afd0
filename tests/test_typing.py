"""The typed public API stays typed: mypy checks fastnet/ in every CI run,
with the settings in pyproject.toml's [tool.mypy] (every function annotated,
untyped bodies checked too, as Python 3.10, the oldest version supported)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from helpers import GUARD

ROOT = Path(__file__).resolve().parent.parent


def mypy(*args: str) -> subprocess.CompletedProcess:
    """python -m mypy from the repository root (so pyproject.toml configures it)."""
    return subprocess.run([sys.executable, "-m", "mypy", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=GUARD * 10)


def test_mypy_fastnet_is_clean():
    run = mypy("fastnet")
    assert run.returncode == 0, run.stdout + run.stderr
    checked = re.search(r"Success: no issues found in (\d+) source files", run.stdout)
    assert checked, run.stdout
    # Every module was checked, not a part the configuration happened to reach.
    assert int(checked.group(1)) == len(list((ROOT / "fastnet").rglob("*.py")))


def test_mypy_config_refuses_an_unannotated_function(tmp_path):
    # The [tool.mypy] settings are the ones in force: an unannotated def fails.
    source = tmp_path / "untyped.py"
    source.write_text("def double(x):\n    return 2 * x\n")
    run = mypy("--config-file", str(ROOT / "pyproject.toml"), "--no-incremental", str(source))
    assert run.returncode == 1 and "[no-untyped-def]" in run.stdout, run.stdout + run.stderr


def test_the_package_says_it_is_typed():
    # PEP 561: without py.typed, users' mypy ignores fastnet's annotations.
    assert (ROOT / "fastnet" / "py.typed").is_file()
    assert 'fastnet = ["py.typed"]' in (ROOT / "pyproject.toml").read_text()


def test_the_codec_api_is_typed_for_users(tmp_path):
    # The codec packages pick their twin at import; a type checker must still
    # see real signatures through them (an Any would accept these lines).
    source = tmp_path / "user.py"
    source.write_text(
        "from fastnet import codec\n"
        "from fastnet.codec.resp import RespRequestDecoder\n"
        "a: str = codec.encode_uvarint(1)\n"
        "b: int = codec.LengthPrefixDecoder(10).next_message()\n"
        "c: bytes = RespRequestDecoder().commands()\n")
    run = mypy("--config-file", str(ROOT / "pyproject.toml"), "--no-incremental", str(source))
    errors = re.findall(r"user\.py:(\d+): error: Incompatible types in assignment", run.stdout)
    assert errors == ["3", "4", "5"], run.stdout + run.stderr
