"""fastnet.lab: capture and annotate TCP from a raw packet socket; TCP against UDP under loss and delay.

Command line: ``python -m fastnet.lab handshake|capture|loss`` (see ``--help``).
Everything here needs root (CAP_NET_RAW to capture, CAP_NET_ADMIN and
CAP_SYS_ADMIN for namespaces); without it the tools say which is missing.
"""
from __future__ import annotations

from .annotate import Annotator, format_text
from .bpf import compile_filter
from .capture import Capture
from .packet import Packet, decode
from .pcap import PcapWriter, read_pcap

__all__ = ["Annotator", "Capture", "Packet", "PcapWriter", "compile_filter", "decode",
           "format_text", "read_pcap"]
