"""cffi builder for fastnet._native (API mode, out of line).

The cdef is taken from the C headers themselves: every header in csrc/ marks
the declarations Python may see between `cdef: begin` and `cdef: end`
comments, so a declaration is written exactly once.

Compiler flags: -Wall -Wextra always; FASTNET_WERROR=1 (CI) adds -Werror.
Extra flags can be passed in FASTNET_CFLAGS and FASTNET_LDFLAGS.

Sanitizers: FASTNET_SANITIZE=address,undefined (any -fsanitize= list) builds
the extension with them, -fno-sanitize-recover=all (the first report
aborts), -g and frame pointers. `python build.py --out DIR` builds into
DIR/fastnet/ (a copy of the package) instead of in place, so a sanitized
build never replaces the normal one; ARCHITECTURE.md ("C rigor") gives the
command that runs the tests against it.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent
CSRC = ROOT / "csrc"

# Order matters: a header may use types declared by an earlier one.
HEADERS = ["status.h", "varint.h", "framer.h", "resp.h", "loop.h", "pack.h", "proto.h",
           "http1.h", "wire.h", "hpack.h", "h2frame.h", "h2sess.h"]

_CDEF_RE = re.compile(r"/\* cdef: begin \*/(.*?)/\* cdef: end \*/", re.S)


def cdef_of(header: Path) -> str:
    """Return the cffi-visible declarations of one header."""
    blocks = _CDEF_RE.findall(header.read_text())
    if not blocks:
        raise RuntimeError(f"{header.name}: no 'cdef: begin/end' block")
    return "\n".join(blocks)


def sanitize_args() -> tuple[list[str], list[str]]:
    """(compile, link) flags for FASTNET_SANITIZE, e.g. "address,undefined"."""
    wanted = os.environ.get("FASTNET_SANITIZE", "").strip()
    if not wanted:
        return [], []
    flag = f"-fsanitize={wanted}"
    return [flag, "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"], [flag]


def compile_args() -> list[str]:
    args = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-fvisibility=hidden"]
    if os.environ.get("FASTNET_WERROR") == "1":
        args.append("-Werror")
    args += sanitize_args()[0]
    args += os.environ.get("FASTNET_CFLAGS", "").split()
    return args


def link_args() -> list[str]:
    return sanitize_args()[1] + os.environ.get("FASTNET_LDFLAGS", "").split()


def make_ffibuilder(absolute: bool = False) -> FFI:
    """The builder; paths relative to the repository (as setup.py needs),
    or absolute for a build outside it (--out)."""
    builder = FFI()
    builder.cdef("\n".join(cdef_of(CSRC / h) for h in HEADERS))
    where = (lambda p: str(p)) if absolute else (lambda p: str(p.relative_to(ROOT)))
    builder.set_source(
        "fastnet._native",
        "\n".join(f'#include "{h}"' for h in HEADERS)
        # The generated wrapper code is cffi's, not ours; our own sources are
        # separate translation units and stay under the full warning set.
        + '\n#pragma GCC diagnostic ignored "-Wunused-parameter"\n',
        sources=[where(p) for p in sorted(CSRC.glob("*.c"))],
        include_dirs=[where(CSRC)],
        extra_compile_args=compile_args(),
        extra_link_args=link_args(),
    )
    return builder


ffibuilder = make_ffibuilder()


def build_into(out: Path) -> Path:
    """Copy the fastnet package (Python files only) to out/fastnet and build
    the extension there; return out/fastnet."""
    package = out / "fastnet"
    if package.exists():
        shutil.rmtree(package)
    shutil.copytree(ROOT / "fastnet", package,
                    ignore=shutil.ignore_patterns("__pycache__", "_native*"))
    make_ffibuilder(absolute=True).compile(tmpdir=str(out), verbose=True)
    return package


if __name__ == "__main__":
    if sys.argv[1:2] == ["--out"] and len(sys.argv) == 3:
        build_into(Path(sys.argv[2]).resolve())
    elif len(sys.argv) > 1:
        sys.exit("usage: python build.py [--out DIR]")
    else:
        # Development build: compiles fastnet/_native*.so in place.
        os.chdir(ROOT)
        ffibuilder.compile(tmpdir=str(ROOT), verbose=True)
