"""A compiler from capture expressions to classic BPF, attached with SO_ATTACH_FILTER.

The kernel runs the program on every packet before it is queued on the
socket, so traffic the expression rejects is never copied to user space.

Grammar (a subset of tcpdump's, IPv4 only)::

    expr      := term ("or" term)*          ("||" too)
    term      := factor ("and" factor)*     ("&&" too)
    factor    := "not" factor | "(" expr ")" | primitive      ("!" too)
    primitive := "ip" | "tcp" | "udp" | "icmp"
               | ["src" | "dst"] "host" ADDRESS
               | ["src" | "dst"] "net" ADDRESS "/" LEN
               | ["tcp" | "udp"] ["src" | "dst"] "port" NUMBER

An empty expression accepts everything. Code generation is the textbook
one: each node compiles to jumps towards a "true" and a "false" label, every
jump goes forward (classic BPF has no backward jumps), and the program ends
in ``ret #snaplen`` (accept) and ``ret #0`` (drop).
"""
from __future__ import annotations

import ctypes
import ipaddress
import re
import socket
import struct
from dataclasses import dataclass
from typing import Union

# Opcode parts (linux/filter.h).
LD, LDX, JMP, RET = 0x00, 0x01, 0x05, 0x06
W, H, B = 0x00, 0x08, 0x10
ABS, IND, MSH, IMM = 0x20, 0x40, 0xA0, 0x00
JEQ, JGT, JSET = 0x10, 0x20, 0x40
SO_ATTACH_FILTER = 26
#: Ancillary load offset of skb->pkt_type (SKF_AD_OFF + SKF_AD_PKTTYPE).
SKF_AD_PKTTYPE = (-0x1000 + 4) & 0xFFFFFFFF
PACKET_OUTGOING = 4
#: Bytes of each accepted packet the kernel copies (the whole packet on these links).
DEFAULT_SNAPLEN = 262144

Insn = tuple[int, int, int, int]  # code, jt, jf, k


class FilterSyntaxError(ValueError):
    """A capture expression the compiler does not understand (the message says where)."""


@dataclass(frozen=True)
class _Atom:
    loads: tuple[tuple[int, int], ...]  # (code, k) load instructions before the test
    op: int                             # JEQ, JGT or JSET
    k: int


@dataclass(frozen=True)
class _Node:
    kind: str                           # "and", "or", "not"
    args: tuple["Expr", ...]


Expr = Union[_Atom, _Node, bool]


def _and(*xs: Expr) -> Expr:
    out = xs[-1]
    for x in reversed(xs[:-1]):
        out = _Node("and", (x, out))
    return out


def _or(*xs: Expr) -> Expr:
    out = xs[-1]
    for x in reversed(xs[:-1]):
        out = _Node("or", (x, out))
    return out


class _Compiler:
    """Builds the atoms for one link-layer header length (14 for Ethernet, 0 for raw IP)."""

    def __init__(self, link: int) -> None:
        self.link = link

    def ipv4(self) -> Expr:
        if self.link == 0:  # raw IP: the version nibble
            return _Atom(((LD | B | ABS, 0), (0x54, 0xF0)), JEQ, 0x40)
        return _Atom(((LD | H | ABS, 12),), JEQ, 0x0800)

    def proto(self, number: int) -> Expr:
        return _and(self.ipv4(), _Atom(((LD | B | ABS, self.link + 9),), JEQ, number))

    def addr(self, which: str, net: ipaddress.IPv4Network) -> Expr:
        offsets = {"src": [12], "dst": [16], "": [12, 16]}[which]
        mask = int(net.netmask)
        tests: list[Expr] = []
        for off in offsets:
            loads: tuple[tuple[int, int], ...] = ((LD | W | ABS, self.link + off),)
            if mask != 0xFFFFFFFF:
                loads += ((0x54, mask),)  # alu and #mask
            tests.append(_Atom(loads, JEQ, int(net.network_address)))
        return _and(self.ipv4(), _or(*tests))

    def port(self, proto: str, which: str, port: int) -> Expr:
        protos = {"tcp": [6], "udp": [17], "": [6, 17]}[proto]
        is_proto = _and(self.ipv4(), _or(*[_Atom(((LD | B | ABS, self.link + 9),), JEQ, p)
                                           for p in protos]))
        # Only the first fragment carries the transport header.
        first_fragment = _Node("not", (_Atom(((LD | H | ABS, self.link + 6),), JSET, 0x1FFF),))
        hdr = (LDX | B | MSH, self.link)  # X = 4 * (IHL)
        offsets = {"src": [0], "dst": [2], "": [0, 2]}[which]
        tests = [_Atom((hdr, (LD | H | IND, self.link + off)), JEQ, port) for off in offsets]
        return _and(is_proto, first_fragment, _or(*tests))


_TOKEN = re.compile(r"\s*(\(|\)|&&|\|\||!|[A-Za-z0-9_.:/-]+)")


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise FilterSyntaxError(f"unexpected character {text[pos]!r} at offset {pos} in {text!r}")
        out.append(m.group(1))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, c: _Compiler) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.c = c

    def peek(self) -> str:
        return self.toks[self.i].lower() if self.i < len(self.toks) else ""

    def take(self) -> str:
        tok = self.peek()
        if not tok:
            raise FilterSyntaxError(f"{self.text!r} ends where a term was expected")
        self.i += 1
        return tok

    def parse(self) -> Expr:
        if not self.toks:
            return True
        e = self.expr()
        if self.i != len(self.toks):
            raise FilterSyntaxError(f"unexpected {self.toks[self.i]!r} in {self.text!r}")
        return e

    def expr(self) -> Expr:
        e = self.term()
        while self.peek() in ("or", "||"):
            self.take()
            e = _Node("or", (e, self.term()))
        return e

    def term(self) -> Expr:
        e = self.factor()
        while self.peek() in ("and", "&&"):
            self.take()
            e = _Node("and", (e, self.factor()))
        return e

    def factor(self) -> Expr:
        tok = self.peek()
        if tok in ("not", "!"):
            self.take()
            return _Node("not", (self.factor(),))
        if tok == "(":
            self.take()
            e = self.expr()
            if self.take() != ")":
                raise FilterSyntaxError(f"missing ')' in {self.text!r}")
            return e
        return self.primitive()

    def number(self, what: str, limit: int) -> int:
        tok = self.take()
        if not tok.isdigit() or int(tok) > limit:
            raise FilterSyntaxError(f"{what} must be a number 0..{limit}, got {tok!r}")
        return int(tok)

    def primitive(self) -> Expr:
        tok = self.take()
        proto = ""
        if tok in ("tcp", "udp") and self.peek() in ("port", "src", "dst"):
            proto, tok = tok, self.take()
        elif tok in ("ip", "tcp", "udp", "icmp"):
            return self.c.ipv4() if tok == "ip" else self.c.proto(
                {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "icmp": 1}[tok])
        which = ""
        if tok in ("src", "dst"):
            which, tok = tok, self.take()
        if tok == "port":
            return self.c.port(proto, which, self.number("a port", 0xFFFF))
        if proto:
            raise FilterSyntaxError(f"'{proto} {which}' must be followed by 'port' in {self.text!r}")
        if tok in ("host", "net"):
            arg = self.take()
            try:
                net = ipaddress.IPv4Network(arg if tok == "net" else arg + "/32", strict=False)
            except ValueError as exc:
                raise FilterSyntaxError(f"bad IPv4 {tok} {arg!r}: {exc}") from None
            return self.c.addr(which, net)
        raise FilterSyntaxError(f"unknown term {tok!r} in {self.text!r}")


def compile_filter(expression: str, link_header: int = 14, snaplen: int = DEFAULT_SNAPLEN,
                   skip_outgoing: bool = False) -> list[Insn]:
    """Compile ``expression`` to classic BPF instructions.

    ``link_header`` is the link-layer header length (14 for Ethernet,
    loopback and veth; 0 for TUN devices). ``skip_outgoing`` also rejects
    packets the host sends (on loopback each packet is seen once leaving and
    once arriving; libpcap keeps only the arrival, and so does this).
    """
    tree = _Parser(expression, _Compiler(link_header)).parse()
    if skip_outgoing:
        not_out = _Node("not", (_Atom(((LD | W | ABS, SKF_AD_PKTTYPE),), JEQ, PACKET_OUTGOING),))
        tree = not_out if tree is True else _and(not_out, tree)
    code: list[Union[tuple[int, str, str, int], str]] = []
    labels = iter(range(1 << 30))

    def gen(e: Expr, t: str, f: str) -> None:
        if isinstance(e, bool):
            code.append((JMP | 0x00, t if e else f, "", 0))  # ja
        elif isinstance(e, _Atom):
            for c, k in e.loads:
                code.append((c, "", "", k))
            code.append((JMP | e.op, t, f, e.k))
        elif e.kind == "not":
            gen(e.args[0], f, t)
        else:
            mid = f"L{next(labels)}"
            if e.kind == "and":
                gen(e.args[0], mid, f)
            else:
                gen(e.args[0], t, mid)
            code.append(mid)
            gen(e.args[1], t, f)

    gen(tree, "accept", "drop")
    code += ["accept", (RET | IMM, "", "", snaplen), "drop", (RET | IMM, "", "", 0)]
    where: dict[str, int] = {}
    n = 0
    for item in code:
        if isinstance(item, str):
            where[item] = n
        else:
            n += 1
    out: list[Insn] = []
    for item in code:
        if isinstance(item, str):
            continue
        c, t, f, k = item
        pc = len(out) + 1
        if c == JMP:  # ja: the offset is k
            out.append((c, 0, 0, where[t] - pc))
            continue
        jt = where[t] - pc if t else 0
        jf = where[f] - pc if f else 0
        if not (0 <= jt <= 255 and 0 <= jf <= 255):
            raise FilterSyntaxError(f"{expression!r} compiles to a jump over 255 instructions")
        out.append((c, jt, jf, k & 0xFFFFFFFF))
    if len(out) > 4096:  # BPF_MAXINSNS
        raise FilterSyntaxError(f"{expression!r} compiles to {len(out)} instructions (limit 4096)")
    return out


def attach(sock: socket.socket, program: list[Insn]) -> None:
    """Attach ``program`` to ``sock`` with SO_ATTACH_FILTER (the kernel copies it)."""
    raw = b"".join(struct.pack("HBBI", *insn) for insn in program)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack("HL", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def run(program: list[Insn], packet: bytes, pkttype: int = 0) -> int:
    """Interpret ``program`` on ``packet`` as the kernel would; return the bytes accepted (0: dropped).

    The reference the tests compare the compiler's output against without
    a socket; a load past the end of the packet drops it, as in the kernel.
    """
    a = x = 0
    pc = 0
    while True:
        c, jt, jf, k = program[pc]
        pc += 1
        cls = c & 0x07
        if cls == LD or cls == LDX:
            mode, size = c & 0xE0, c & 0x18
            if mode == IMM:
                val = k
            elif k == SKF_AD_PKTTYPE and mode == ABS:
                val = pkttype
            elif mode == MSH:
                if k >= len(packet):
                    return 0
                val = 4 * (packet[k] & 0x0F)
            else:
                off = k + (x if mode == IND else 0)
                n = {W: 4, H: 2, B: 1}[size]
                if off + n > len(packet):
                    return 0
                val = int.from_bytes(packet[off:off + n], "big")
            if cls == LD:
                a = val
            else:
                x = val
        elif c == 0x54:
            a &= k
        elif cls == JMP:
            op = c & 0xF0
            if op == 0:
                pc += k
                continue
            hit = {JEQ: a == k, JGT: a > k, JSET: bool(a & k)}[op]
            pc += jt if hit else jf
        elif cls == RET:
            return min(k, len(packet))
        else:
            raise ValueError(f"opcode {c:#x} not produced by this compiler")
