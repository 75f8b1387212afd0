"""cffi builder for fastnet._native (API mode, out of line).

The cdef is taken from the C headers themselves: every header in csrc/ marks
the declarations Python may see between `cdef: begin` and `cdef: end`
comments, so a declaration is written exactly once.

Compiler flags: -Wall -Wextra always; FASTNET_WERROR=1 (CI) adds -Werror.
Extra flags (for example -fsanitize=address) can be passed in FASTNET_CFLAGS.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent
CSRC = ROOT / "csrc"

# Order matters: a header may use types declared by an earlier one.
HEADERS = ["status.h", "varint.h", "framer.h", "resp.h", "loop.h", "pack.h", "proto.h", "hpack.h", "h2frame.h"]

_CDEF_RE = re.compile(r"/\* cdef: begin \*/(.*?)/\* cdef: end \*/", re.S)


def cdef_of(header: Path) -> str:
    """Return the cffi-visible declarations of one header."""
    blocks = _CDEF_RE.findall(header.read_text())
    if not blocks:
        raise RuntimeError(f"{header.name}: no 'cdef: begin/end' block")
    return "\n".join(blocks)


def compile_args() -> list[str]:
    args = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-fvisibility=hidden"]
    if os.environ.get("FASTNET_WERROR") == "1":
        args.append("-Werror")
    args += os.environ.get("FASTNET_CFLAGS", "").split()
    return args


ffibuilder = FFI()
ffibuilder.cdef("\n".join(cdef_of(CSRC / h) for h in HEADERS))
ffibuilder.set_source(
    "fastnet._native",
    "\n".join(f'#include "{h}"' for h in HEADERS)
    # The generated wrapper code is cffi's, not ours; our own sources are
    # separate translation units and stay under the full warning set.
    + '\n#pragma GCC diagnostic ignored "-Wunused-parameter"\n',
    sources=[str(p.relative_to(ROOT)) for p in sorted(CSRC.glob("*.c"))],
    include_dirs=[str(CSRC.relative_to(ROOT))],
    extra_compile_args=compile_args(),
    extra_link_args=os.environ.get("FASTNET_LDFLAGS", "").split(),
)

if __name__ == "__main__":
    # Development build: compiles fastnet/_native*.so in place.
    os.chdir(ROOT)
    ffibuilder.compile(tmpdir=str(ROOT), verbose=True)
