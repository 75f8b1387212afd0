"""Guard-page tests (picohttpparser's way): every parser case is placed so
that its last byte is the last byte before a PROT_NONE page, and handed to
the C twin as a view of that memory (the C functions read it in place
through cffi: ffi.from_buffer, no copy). A C read one byte past the input
faults at once, whatever the allocator would have had there.

Each case runs whole and one byte at a time, every piece again ending at the
guard, and must give the results its own test module expects. C parsers
that keep their input (framer, RESP) copy it on feed: here the copy is what
the guard checks, and ASan (tests/test_sanitized.py) and the fuzz targets
watch their own buffers.
"""
from __future__ import annotations

import ctypes
import mmap
import subprocess
import sys
from pathlib import Path

import pytest

from fastnet import codec, native
from fastnet.errors import ProtocolError, RespProtocolError
from resp_helpers import canon
import test_framing as framing_cases
import test_resp_replies as reply_cases
import test_resp_requests as request_cases
import test_varint as varint_cases

pytestmark = pytest.mark.skipif(native.lib is None, reason="C extension not built")
ctwin = codec.impls.get("c")
PAGE = mmap.PAGESIZE
PROT_NONE = 0  # <sys/mman.h>; the mmap module names only READ, WRITE and EXEC
ROOT = Path(__file__).resolve().parent.parent
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


class Guarded:
    """SIZE read-write bytes (whole pages) followed by a PROT_NONE page."""

    SIZE = 32 * PAGE  # the longest case (a 64 KiB inline line) fits

    def __init__(self) -> None:
        self.mem = mmap.mmap(-1, self.SIZE + PAGE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        anchor = ctypes.c_char.from_buffer(self.mem)
        self.addr = ctypes.addressof(anchor)
        del anchor
        if _libc.mprotect(self.addr + self.SIZE, PAGE, PROT_NONE) != 0:
            raise OSError(ctypes.get_errno(), "mprotect")

    def view(self, data: bytes) -> memoryview:
        """data copied to end exactly at the guard; a view of it there."""
        end = self.SIZE
        assert len(data) <= end
        self.mem[end - len(data):end] = data
        return memoryview(self.mem)[end - len(data):end]

    def close(self) -> None:
        _libc.mprotect(self.addr + self.SIZE, PAGE, mmap.PROT_READ | mmap.PROT_WRITE)
        self.mem.close()


@pytest.fixture
def guard():
    g = Guarded()
    yield g
    g.close()


def feed_guarded(guard: Guarded, decoder, chunks: list[bytes]) -> None:
    """decoder.feed for each chunk, each from guarded memory."""
    for chunk in chunks:
        view = guard.view(chunk)
        try:
            decoder.feed(view)
        finally:
            view.release()


def pieces(data: bytes, how: str) -> list[bytes]:
    return [data[i:i + 1] for i in range(len(data))] if how == "bytewise" else [data]


def test_the_guard_page_faults():
    """The premise: touching the byte after the input kills the process."""
    code = (
        "import sys; sys.path.insert(0, 'tests')\n"
        "from test_guard_pages import Guarded\n"
        "import ctypes\n"
        "g = Guarded()\n"
        "ctypes.string_at(g.addr + g.SIZE - 1, 1)\n"  # the last byte: fine
        "print('before', flush=True)\n"
        "ctypes.string_at(g.addr + g.SIZE, 1)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.stdout == "before\n"
    assert proc.returncode < 0  # killed by SIGSEGV


VARINTS = [bytes.fromhex(h) for _, h in varint_cases.KNOWN] + [
    b"\x80", b"\xff" * 9, b"\xff" * 10, b"\xff" * 9 + b"\x02", b"\x80\x00", b"\xff\x00",
    b"\x80" * 9 + b"\x01", b"\x80" * 11]


@pytest.mark.parametrize("data", VARINTS, ids=[d.hex() for d in VARINTS])
def test_varint_decode(guard, data):
    for n in range(len(data) + 1):
        view = guard.view(data[:n])
        try:
            got = ctwin.decode_uvarint(view)
        except ProtocolError as exc:
            got = type(exc)
        finally:
            view.release()
        try:
            want = codec.impls["python"].decode_uvarint(data[:n])
        except ProtocolError as exc:
            want = type(exc)
        assert got == want


@pytest.mark.parametrize("how", ["whole", "bytewise"])
@pytest.mark.parametrize("case", framing_cases.CASES, ids=[c.name for c in framing_cases.CASES])
def test_framing(guard, case, how):
    decoder = framing_cases.make(ctwin, case.framing, case.max_size)
    messages, error = [], None
    for chunk in pieces(case.data, how):
        feed_guarded(guard, decoder, [chunk])
        try:
            messages.extend(decoder)
        except ProtocolError as exc:
            error = exc.with_traceback(None)  # its frames hold views of the page
            break
    assert messages == case.messages
    assert (error is None) == (case.error is None)
    if error is not None:
        assert type(error) is case.error[0]


@pytest.mark.parametrize("api", ["commands", "feed_commands"])
@pytest.mark.parametrize("how", ["whole", "bytewise"])
@pytest.mark.parametrize("case", request_cases.CASES, ids=[c.name for c in request_cases.CASES])
def test_resp_requests(guard, case, how, api):
    decoder = ctwin.RespRequestDecoder(**getattr(case, "limits", None) or {})
    commands, error = [], None
    for chunk in pieces(case.data, how):
        view = guard.view(chunk)
        try:
            if api == "feed_commands":
                commands += decoder.feed_commands(view)
            else:
                decoder.feed(view)
                while batch := decoder.commands():
                    commands += batch
        except RespProtocolError as exc:
            error = exc.with_traceback(None)  # its frames hold views of the page
            break
        finally:
            view.release()
    if error is None:
        try:  # an error after the last commands is raised by the next call
            commands += decoder.commands()
        except RespProtocolError as exc:
            error = exc
    assert commands == case.commands
    assert (None if error is None else str(error)) == case.error


@pytest.mark.parametrize("how", ["whole", "bytewise"])
@pytest.mark.parametrize("case", reply_cases.CASES, ids=[c.name for c in reply_cases.CASES])
def test_resp_replies(guard, case, how):
    decoder = ctwin.RespReplyDecoder(**(case.limits or {}))
    replies, error = [], None
    for chunk in pieces(case.data, how):
        feed_guarded(guard, decoder, [chunk])
        try:
            while batch := decoder.replies():
                replies += batch
        except RespProtocolError as exc:
            error = exc.with_traceback(None)  # its frames hold views of the page
            break
    assert canon(replies) == canon(case.replies)
    assert (None if error is None else str(error)) == case.error


@pytest.mark.parametrize("claimed", [0, 1, 4096])
def test_send_batch_reads_no_byte_past_its_data(guard, claimed):
    """fn_loop_send_batch reads its caller's data as the lengths say: with
    the data ending at the guard, lengths claiming `claimed` bytes more are
    refused (FN_E_ARG) before any byte is read, and exact ones are queued."""
    import struct

    from test_cengine import RawLoop, client

    lib, ffi = native.lib, native.ffi
    raw = RawLoop(lib.FN_FRAME_BE32)
    peer = client(raw.port)
    conn = raw.accept()
    data = b"0123456789"
    view = guard.view(data)
    try:
        ptr = ffi.from_buffer(view)
        words = struct.pack("4Q", conn, 0, 4, len(data) - 4 + claimed)
        rc = lib.fn_loop_send_batch(raw.loop, words, 1, ptr, len(data), 2)
        assert rc == (0 if claimed == 0 else lib.FN_E_ARG)
        assert lib.fn_loop_output_size(raw.loop, conn) == (2 * 4 + len(data) if claimed == 0 else 0)
    finally:
        del ptr
        view.release()
    peer.close()
