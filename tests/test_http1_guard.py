"""The C parsers never read past the end of their input: each input is
placed right before a PROT_NONE page (picohttpparser's test trick), so one
byte read beyond it crashes at once. Run in a child process, so a crash is
a failure here and not the end of the test run."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from helpers import GUARD, require_engine

CHILD = textwrap.dedent('''
    import ctypes, mmap, sys
    from fastnet import native
    lib, ffi = native.require(), native.ffi
    libc = ctypes.CDLL(None)
    page = mmap.PAGESIZE
    area = mmap.mmap(-1, 2 * page)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(area))
    assert libc.mprotect(ctypes.c_void_p(addr + page), page, 0) == 0  # PROT_NONE
    base = ffi.cast("uint8_t *", addr)
    cases = [b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n", b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r",
             b"GET / HTTP/1.1\\r", b"\\r\\n\\r\\n\\r", b"GET /", b"HTTP/1.1 200 OK\\r\\n\\r\\n",
             b"HTTP/1.1 200", b"A: b\\r\\n", b"\\r", b"", b"PRI * HTTP/2.0\\r\\n\\r\\n",
             b"5\\r\\nhello\\r\\n0\\r\\n\\r\\n", b"5\\r\\nhel", b"0\\r\\nT: v\\r", b"ffffffff", b"5\\r\\nhello\\r"]
    n = 0
    for case in cases:
        for cut in range(len(case) + 1):
            data = case[:cut]
            start = page - len(data)
            area[start:page] = data
            st = ffi.new("fn_http1_head_state *"); head = ffi.new("fn_http1_head *")
            fields = ffi.new("size_t[]", 400)
            lib.fn_http1_parse_request(st, base + start, 0, len(data), 8192, 65536, 100, head, fields)
            st = ffi.new("fn_http1_head_state *")
            lib.fn_http1_parse_response(st, base + start, 0, len(data), 65536, 100, head, fields)
            ch = ffi.new("fn_http1_chunked *")
            spans = ffi.new("size_t[]", 8); k = ffi.new("size_t *"); pos = ffi.new("size_t *")
            lib.fn_http1_chunked_decode(ch, base + start, 0, len(data), 1 << 20, 65536, 100,
                                        4096, spans, 4, k, pos)
            n += 1
    print("ok", n)
''')


def test_c_parsers_stay_inside_their_input():
    require_engine("c")  # the C extension (skipped only outside CI, see helpers)
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          timeout=GUARD)
    assert done.returncode == 0, f"the child crashed ({done.returncode}): {done.stderr[-500:]}"
    assert done.stdout.startswith("ok ")
