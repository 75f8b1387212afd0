"""The classic pcap file format (what tshark and Wireshark open): a writer and a reader.

Timestamps are kept to the nanosecond (magic 0xa1b23c4d); the reader also
takes microsecond files (0xa1b2c3d4) in either byte order.
"""
from __future__ import annotations

import struct
from typing import BinaryIO, Iterator

MAGIC_NS = 0xA1B23C4D
MAGIC_US = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # raw IPv4/IPv6, as on a TUN device


class PcapError(ValueError):
    """A file that is not a pcap file, or one cut short inside a record."""


class PcapWriter:
    """Writes packets to a pcap file, one record per :meth:`write`."""

    def __init__(self, f: BinaryIO, linktype: int = LINKTYPE_ETHERNET, snaplen: int = 262144) -> None:
        self.f = f
        self.snaplen = snaplen
        f.write(struct.pack("<IHHiIII", MAGIC_NS, 2, 4, 0, 0, snaplen, linktype))

    def write(self, ts_ns: int, data: bytes, orig_len: int = 0) -> None:
        """Append one packet captured at ``ts_ns`` (nanoseconds since the epoch)."""
        data = data[:self.snaplen]
        sec, nsec = divmod(ts_ns, 1_000_000_000)
        self.f.write(struct.pack("<IIII", sec, nsec, len(data), max(orig_len, len(data))))
        self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


def read_pcap(f: BinaryIO) -> tuple[int, Iterator[tuple[int, bytes]]]:
    """Return ``(linktype, records)``; each record is ``(ts_ns, data)``."""
    head = f.read(24)
    if len(head) < 24:
        raise PcapError("shorter than a pcap global header (24 bytes)")
    for order in "<>":
        magic = struct.unpack(order + "I", head[:4])[0]
        if magic in (MAGIC_NS, MAGIC_US):
            break
    else:
        raise PcapError(f"not a pcap file (magic {head[:4].hex()})")
    scale = 1 if magic == MAGIC_NS else 1000
    linktype = struct.unpack(order + "I", head[20:24])[0] & 0x0FFFFFFF

    def records() -> Iterator[tuple[int, bytes]]:
        while True:
            rec = f.read(16)
            if not rec:
                return
            if len(rec) < 16:
                raise PcapError("file ends inside a record header")
            sec, frac, incl, _orig = struct.unpack(order + "IIII", rec)
            data = f.read(incl)
            if len(data) < incl:
                raise PcapError(f"file ends inside a record of {incl} bytes")
            yield sec * 1_000_000_000 + frac * scale, data

    return linktype, records()
