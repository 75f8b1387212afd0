"""The pure-Python wire twin: the readable reference of csrc/proto.c.

Both twins work in the same order, so they fail on the same input with the
same error: a message's bytes are first scanned whole (framing checked,
each field's last or every occurrence noted, unknown fields set aside),
then its fields are built in number order, submessages last-to-first never
(each in turn, depth first). A singular submessage that occurs more than
once is decoded from all its occurrences as one (protobuf's merge), a
scalar keeps its last value.
"""
from __future__ import annotations

import functools
import math
import struct
from typing import Any, Optional, Sequence

from ... import limits
from ..descriptor import FieldType as T
from . import _table
from ._errors import decode_error, encode_error
from ._table import F_MAP, F_PACKED, F_PRESENCE, F_REPEATED, PACKABLE, WIRE_TYPE, Schema

_MASK64 = (1 << 64) - 1
#: The smallest magnitude that rounds to infinity as a float32.
_FLOAT_OVERFLOW = 2.0**128 - 2.0**103
_FIXED = {T.TYPE_FIXED32: struct.Struct("<I"), T.TYPE_SFIXED32: struct.Struct("<i"),
          T.TYPE_FLOAT: struct.Struct("<f"), T.TYPE_FIXED64: struct.Struct("<Q"),
          T.TYPE_SFIXED64: struct.Struct("<q"), T.TYPE_DOUBLE: struct.Struct("<d")}
_VARINT_TYPES = frozenset(t for t, w in WIRE_TYPE.items() if w == 0)
_INTS = frozenset(_table.INT_RANGE) - {T.TYPE_BOOL}


class _Fail(Exception):
    """Internal: a decode error's cause, turned into fastnet's error at the top."""


def _uvarint(out: bytearray, v: int) -> None:
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """A varint of up to 10 bytes (overlong encodings allowed, bits past 64
    dropped, as protobuf reads them)."""
    value = shift = 0
    for i in range(10):
        if pos >= end:
            raise _Fail("truncated")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value & _MASK64, pos
        shift += 7
    raise _Fail("varint")


def _read_tag(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """A field tag: a varint that fits in 32 bits (at most 5 bytes)."""
    value = shift = 0
    for i in range(5):
        if pos >= end:
            raise _Fail("truncated")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            if value > 0xFFFFFFFF:
                raise _Fail("tag")
            if value >> 3 == 0:
                raise _Fail("tag")
            return value, pos
        shift += 7
    raise _Fail("tag")


class Codec:
    """Encoder and decoder for every message of a compiled Schema."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._lookup = [{f.number: i for i, f in enumerate(m.fields)} for m in schema.messages]
        #: per message, per field: the other members of its oneof
        self._rivals = [[[j for j, g in enumerate(m.fields) if f.oneof and g.oneof == f.oneof
                          and g is not f] for f in m.fields] for m in schema.messages]

    # -- encoding ------------------------------------------------------------

    def encode(self, index: int, flat: Sequence[Any]) -> bytes:
        """The wire bytes of message ``index`` given its flat form, fields in
        number order, maps sorted by key, unknown fields last (what
        google.protobuf writes with deterministic=True)."""
        out = bytearray()
        self._encode(index, flat, out, 0)
        return bytes(out)

    def _fail(self, cause: str, index: int, slot: int) -> Exception:
        m = self.schema.messages[index]
        f = m.fields[slot]
        return encode_error(cause, f"{m.full_name}.{f.name}", f.type.name[5:].lower(),
                            limits.PROTO_MAX_DEPTH)

    def _encode(self, index: int, flat: Sequence[Any], out: bytearray, depth: int) -> None:
        m = self.schema.messages[index]
        if not isinstance(flat, (list, tuple)) or len(flat) != len(m.fields) + 1:
            raise TypeError(f"{m.full_name}: not a flat message")
        for slot, f in enumerate(m.fields):
            v = flat[slot]
            t = f.type
            if f.flags & F_REPEATED:
                if f.flags & F_MAP:
                    self._encode_map(index, slot, v, out, depth)
                    continue
                if not isinstance(v, (list, tuple)):
                    raise self._fail("type", index, slot)
                if not v:
                    continue
                if t == T.TYPE_MESSAGE or t == T.TYPE_GROUP:
                    for item in v:
                        self._encode_sub(index, slot, item, out, depth)
                elif f.flags & F_PACKED:
                    body = bytearray()
                    for item in v:
                        self._scalar(index, slot, t, item, body)
                    _uvarint(out, f.number << 3 | 2)
                    _uvarint(out, len(body))
                    out += body
                else:
                    tag = f.number << 3 | WIRE_TYPE[t]
                    for item in v:
                        _uvarint(out, tag)
                        self._scalar(index, slot, t, item, out)
                continue
            if t == T.TYPE_MESSAGE or t == T.TYPE_GROUP:
                if v is not None:
                    self._encode_sub(index, slot, v, out, depth)
                continue
            if v is None and f.flags & F_PRESENCE:
                continue
            body = bytearray()
            self._scalar(index, slot, t, v, body)
            if not f.flags & F_PRESENCE and _is_zero(t, body):
                continue
            _uvarint(out, f.number << 3 | WIRE_TYPE[t])
            out += body
        unknown = flat[-1]
        if unknown:
            if not isinstance(unknown, (bytes, bytearray, memoryview)):
                raise TypeError(f"{m.full_name}: unknown fields must be bytes")
            out += unknown

    def _encode_sub(self, index: int, slot: int, v: Any, out: bytearray, depth: int) -> None:
        f = self.schema.messages[index].fields[slot]
        if depth + 1 > limits.PROTO_MAX_DEPTH:
            raise self._fail("depth", index, slot)
        if not isinstance(v, (list, tuple)):
            raise self._fail("type", index, slot)
        body = bytearray()
        self._encode(f.sub, v, body, depth + 1)
        if f.type == T.TYPE_GROUP:
            _uvarint(out, f.number << 3 | 3)
            out += body
            _uvarint(out, f.number << 3 | 4)
        else:
            _uvarint(out, f.number << 3 | 2)
            _uvarint(out, len(body))
            out += body

    def _encode_map(self, index: int, slot: int, v: Any, out: bytearray, depth: int) -> None:
        f = self.schema.messages[index].fields[slot]
        if not isinstance(v, dict):
            raise self._fail("type", index, slot)
        if not v:
            return
        entry = self.schema.messages[f.sub]
        kf, vf = entry.fields
        if depth + 1 > limits.PROTO_MAX_DEPTH:
            raise self._fail("depth", index, slot)
        keys = []
        for key in v:
            kb = bytearray()
            self._scalar(f.sub, 0, kf.type, key, kb)
            keys.append((kf.type == T.TYPE_STRING, key, kb))
        keys.sort(key=_MAP_ORDER)
        ktag = 1 << 3 | WIRE_TYPE[kf.type]
        for _, key, kb in keys:
            body = bytearray()
            _uvarint(body, ktag)
            body += kb
            value = v[key]
            if vf.type == T.TYPE_MESSAGE:
                if depth + 2 > limits.PROTO_MAX_DEPTH:
                    raise self._fail("depth", index, slot)
                if not isinstance(value, (list, tuple)):
                    raise self._fail("type", f.sub, 1)
                sub = bytearray()
                self._encode(vf.sub, value, sub, depth + 2)
                _uvarint(body, 2 << 3 | 2)
                _uvarint(body, len(sub))
                body += sub
            else:
                _uvarint(body, 2 << 3 | WIRE_TYPE[vf.type])
                self._scalar(f.sub, 1, vf.type, value, body)
            _uvarint(out, f.number << 3 | 2)
            _uvarint(out, len(body))
            out += body

    def _scalar(self, index: int, slot: int, t: T, v: Any, out: bytearray) -> None:
        """Append one value of type t (no tag), checking its type and range."""
        if t in _INTS:
            if not isinstance(v, int):
                raise self._fail("type", index, slot)
            lo, hi = _table.INT_RANGE[t]
            if not lo <= v <= hi:
                raise self._fail("range", index, slot)
            if t in _VARINT_TYPES:
                if t == T.TYPE_SINT32 or t == T.TYPE_SINT64:
                    v = (v << 1) ^ (v >> 63) if v < 0 else v << 1
                elif v < 0:
                    v += 1 << 64
                _uvarint(out, v)
            else:
                out += _FIXED[t].pack(v)
        elif t == T.TYPE_BOOL:
            if not isinstance(v, int):
                raise self._fail("type", index, slot)
            out.append(1 if v else 0)
        elif t == T.TYPE_DOUBLE or t == T.TYPE_FLOAT:
            if not isinstance(v, (float, int)):
                raise self._fail("type", index, slot)
            try:
                v = float(v)
            except OverflowError:
                raise self._fail("range", index, slot) from None
            if t == T.TYPE_FLOAT and abs(v) >= _FLOAT_OVERFLOW and not math.isinf(v):
                v = math.copysign(math.inf, v)
            out += _FIXED[t].pack(v)
        elif t == T.TYPE_STRING:
            if not isinstance(v, str):
                raise self._fail("type", index, slot)
            try:
                data = v.encode("utf-8")
            except UnicodeEncodeError:
                raise self._fail("utf8", index, slot) from None
            _uvarint(out, len(data))
            out += data
        else:  # bytes
            if not isinstance(v, (bytes, bytearray, memoryview)):
                raise self._fail("type", index, slot)
            _uvarint(out, len(v))
            out += v

    # -- decoding ------------------------------------------------------------

    def decode(self, index: int, data: bytes, max_depth: int = limits.PROTO_MAX_DEPTH,
               max_message_size: int = limits.DEFAULT_PROTO_MAX_MESSAGE_SIZE) -> list[Any]:
        """The flat form of message ``index`` read from ``data``; raises a
        fastnet.errors.ProtoDecodeError subclass on bad input."""
        buf = bytes(data)
        try:
            if len(buf) > max_message_size:
                raise _Fail("size")
            self._max_depth = max_depth
            return self._decode(index, buf, [(0, len(buf))], 0, False)
        except _Fail as exc:
            raise decode_error(exc.args[0], max_depth, len(buf), max_message_size) from None

    def _skip_group(self, buf: bytes, pos: int, end: int, number: int, depth: int) -> tuple[int, int]:
        """Skip a group's body from pos; return where its end tag starts and ends."""
        if depth > self._max_depth:
            raise _Fail("depth")
        while True:
            if pos >= end:
                raise _Fail("group")
            start = pos
            tag, pos = _read_tag(buf, pos, end)
            pos = self._skip(buf, pos, end, tag, depth)
            if tag & 7 == 4:
                if tag >> 3 != number:
                    raise _Fail("group")
                return start, pos

    def _skip(self, buf: bytes, pos: int, end: int, tag: int, depth: int) -> int:
        """Skip one value of the tag's wire type (4: nothing follows an end tag)."""
        wt = tag & 7
        if wt == 0:
            return _read_varint(buf, pos, end)[1]
        if wt == 2:
            n, pos = _read_varint(buf, pos, end)
            if n > end - pos:
                raise _Fail("truncated")
            return pos + n
        if wt == 1 or wt == 5:
            pos += 8 if wt == 1 else 4
            if pos > end:
                raise _Fail("truncated")
            return pos
        if wt == 3:
            return self._skip_group(buf, pos, end, tag >> 3, depth + 1)[1]
        if wt == 4:
            return pos
        raise _Fail("wire_type")

    def _entry_is_clean(self, index: int, buf: bytes, pos: int, end: int, depth: int) -> bool:
        """Whether a map entry holds only its key and value fields (upb keeps
        an entry with anything else among the unknown fields)."""
        kf, vf = self.schema.messages[index].fields
        kt, vt = 8 | WIRE_TYPE[kf.type], 16 | WIRE_TYPE[vf.type]
        clean = True
        while pos < end:
            tag, pos = _read_tag(buf, pos, end)
            if tag & 7 == 4:
                raise _Fail("group")
            pos = self._skip(buf, pos, end, tag, depth + 1)
            if tag != kt and tag != vt:
                clean = False
        return clean

    def _decode(self, index: int, buf: bytes, segments: list[tuple[int, int]], depth: int,
                map_entry: bool) -> Any:
        m = self.schema.messages[index]
        fields = m.fields
        lookup = self._lookup[index]
        rivals = self._rivals[index]
        occ: list[Any] = [None] * len(fields)
        unknown: Optional[list[tuple[int, int]]] = None
        for pos, end in segments:
            while pos < end:
                start = pos
                tag, pos = _read_tag(buf, pos, end)
                wt = tag & 7
                if wt == 4:
                    raise _Fail("group")
                vstart = pos
                if wt == 3:
                    vend, pos = self._skip_group(buf, pos, end, tag >> 3, depth + 1)
                else:
                    pos = self._skip(buf, pos, end, tag, depth)
                    if wt == 2:
                        vstart = pos - _read_varint(buf, vstart, end)[0]
                    vend = pos
                slot = lookup.get(tag >> 3)
                if slot is not None:
                    f = fields[slot]
                    ft = WIRE_TYPE[f.type]
                    if ft == wt or (wt == 2 and f.flags & F_REPEATED and f.type in PACKABLE):
                        if f.flags & F_MAP and not self._entry_is_clean(f.sub, buf, vstart, vend,
                                                                          depth):
                            pass
                        elif f.flags & F_REPEATED or ft == 2 and f.sub >= 0 or ft == 3:
                            for r in rivals[slot]:
                                occ[r] = None   # a oneof keeps its last member
                            if occ[slot] is None:
                                occ[slot] = []
                            occ[slot].append((wt, vstart, vend))
                            continue
                        else:
                            for r in rivals[slot]:
                                occ[r] = None
                            occ[slot] = (wt, vstart, vend)
                            continue
                if unknown is None:
                    unknown = []
                unknown.append((start, pos))
        out: list[Any] = [None] * (len(fields) + 1)
        for slot, f in enumerate(fields):
            o = occ[slot]
            t = f.type
            if f.flags & F_MAP:
                d: dict[Any, Any] = {}
                if o is not None:
                    self._check_depth(depth + 1)
                    for _, s, e in o:
                        key, value = self._decode(f.sub, buf, [(s, e)], depth + 1, True)
                        d[key] = value
                out[slot] = d
            elif f.sub >= 0:
                if f.flags & F_REPEATED:
                    items = []
                    if o is not None:
                        self._check_depth(depth + 1)
                        for _, s, e in o:
                            items.append(self._decode(f.sub, buf, [(s, e)], depth + 1, False))
                    out[slot] = items
                elif o is not None or map_entry:
                    self._check_depth(depth + 1)
                    segs = [] if o is None else [(s, e) for _, s, e in o]
                    out[slot] = self._decode(f.sub, buf, segs, depth + 1, False)
            elif f.flags & F_REPEATED:
                items = []
                if o is not None:
                    for wt, s, e in o:
                        if wt == 2 and t in PACKABLE:
                            _unpack(t, buf, s, e, items)
                        else:
                            items.append(_value(t, buf, s, e))
                out[slot] = items
            elif o is None:
                out[slot] = None if f.flags & F_PRESENCE else f.default
            else:
                out[slot] = _value(t, buf, o[1], o[2])
        if map_entry:
            return out[0], out[1]
        if unknown is not None:
            out[-1] = b"".join(buf[s:e] for s, e in unknown)
        return out

    def _check_depth(self, depth: int) -> None:
        if depth > self._max_depth:
            raise _Fail("depth")


def _value(t: T, buf: bytes, s: int, e: int) -> Any:
    """One value of type t from buf[s:e] (framing already checked)."""
    if t in _VARINT_TYPES:
        v = _read_varint(buf, s, e)[0]
        if t == T.TYPE_INT64:
            return v - (1 << 64) if v >> 63 else v
        if t == T.TYPE_INT32 or t == T.TYPE_ENUM:
            v &= 0xFFFFFFFF
            return v - (1 << 32) if v >> 31 else v
        if t == T.TYPE_UINT32:
            return v & 0xFFFFFFFF
        if t == T.TYPE_SINT32:
            v &= 0xFFFFFFFF
            return (v >> 1) ^ -(v & 1)
        if t == T.TYPE_SINT64:
            return (v >> 1) ^ -(v & 1)
        if t == T.TYPE_BOOL:
            return v != 0
        return v
    if t == T.TYPE_STRING:
        try:
            return buf[s:e].decode("utf-8")
        except UnicodeDecodeError:
            raise _Fail("utf8") from None
    if t == T.TYPE_BYTES:
        return buf[s:e]
    return _FIXED[t].unpack_from(buf, s)[0]


def _unpack(t: T, buf: bytes, s: int, e: int, items: list[Any]) -> None:
    """The values of a packed field's body buf[s:e], appended to items."""
    if t in _VARINT_TYPES:
        while s < e:
            start = s
            try:
                s = _read_varint(buf, s, e)[1]
            except _Fail:
                raise _Fail("packed") from None
            items.append(_value(t, buf, start, s))
        return
    fmt = _FIXED[t]
    if (e - s) % fmt.size:
        raise _Fail("packed")
    items.extend(v for (v,) in fmt.iter_unpack(buf[s:e]))


def _is_zero(t: T, body: bytearray) -> bool:
    """Whether an encoded value is its type's proto3 default (not written).
    Floats compare by bits, as upb does: -0.0 is written."""
    if t == T.TYPE_STRING or t == T.TYPE_BYTES:
        return len(body) == 1
    return not any(body)


def _map_order(a: tuple[bool, Any, bytearray], b: tuple[bool, Any, bytearray]) -> int:
    """The order upb's deterministic serialization writes map entries in:
    integer and bool keys by their 64-bit two's complement, largest first;
    strings by their bytes, where one is a prefix of the other the longer first."""
    if a[0]:
        x, y = a[1].encode("utf-8"), b[1].encode("utf-8")
        n = min(len(x), len(y))
        if x[:n] != y[:n]:
            return -1 if x[:n] < y[:n] else 1
        return len(y) - len(x)
    x, y = int(a[1]) & _MASK64, int(b[1]) & _MASK64
    return (x < y) - (x > y)


_MAP_ORDER = functools.cmp_to_key(_map_order)
