"""The pure-Python wire twin: the readable reference of csrc/proto.c.

Both twins work in the same order, so they fail on the same input with the
same error: a message's bytes are first scanned whole (framing checked,
each field's last or every occurrence noted, unknown fields set aside),
then its fields are built in number order, each submessage in turn (depth
first). A singular submessage that occurs more than once is decoded from
all its occurrences as one (protobuf's merge), a scalar keeps its last
value, a oneof its last member.

Speed: each message's fields are compiled once into plans (tag bytes,
writer, zero encoding), varints of one byte take a fast path, and a
varint's value is read once, in the scan.
"""
from __future__ import annotations

import math
import struct
from typing import Any, Callable, Optional, Sequence

from ... import limits
from ..descriptor import FieldType as T
from ._errors import decode_error, encode_error
from . import _table
from ._table import F_MAP, F_PACKED, F_PRESENCE, F_REPEATED, PACKABLE, WIRE_TYPE, Schema

_MASK64 = (1 << 64) - 1
_FLT_MAX = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]
_FIXED = {T.TYPE_FIXED32: struct.Struct("<I"), T.TYPE_SFIXED32: struct.Struct("<i"),
          T.TYPE_FLOAT: struct.Struct("<f"), T.TYPE_FIXED64: struct.Struct("<Q"),
          T.TYPE_SFIXED64: struct.Struct("<q"), T.TYPE_DOUBLE: struct.Struct("<d")}
_VARINT_TYPES = frozenset(t for t, w in WIRE_TYPE.items() if w == 0)
_RANGE = _table.INT_RANGE

# field plan kinds
_SCALAR, _OPTIONAL, _PACKED, _UNPACKED, _MESSAGE, _GROUP, _MESSAGES, _GROUPS, _MAP = range(9)


class _Fail(Exception):
    """Internal: a decode error's cause, turned into fastnet's error at the top."""


class _Bad(Exception):
    """Internal: an encode error's cause, given its field at the top."""


def _uvarint(out: bytearray, v: int) -> None:
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _varint_bytes(v: int) -> bytes:
    out = bytearray()
    _uvarint(out, v)
    return bytes(out)


# -- writers: one value of a type, no tag; _Bad on a wrong type or range ---

def _int_writer(t: T) -> Callable[[bytearray, Any], None]:
    lo, hi = _RANGE[t]
    zigzag = t in (T.TYPE_SINT32, T.TYPE_SINT64)
    fixed = _FIXED.get(t)

    def write(out: bytearray, v: Any) -> None:
        if not isinstance(v, int):
            raise _Bad("type")
        if fixed is None and 0 <= v < 0x40:
            out.append(v << 1 if zigzag else v)
            return
        if not lo <= v <= hi:
            raise _Bad("range")
        if fixed is not None:
            out += fixed.pack(v)
            return
        if zigzag:
            v = (v << 1) ^ (v >> 63) if v < 0 else v << 1
        elif v < 0:
            v += 1 << 64
        _uvarint(out, v)

    return write


def _write_bool(out: bytearray, v: Any) -> None:
    if not isinstance(v, int):
        raise _Bad("type")
    out.append(1 if v else 0)


def _float_writer(t: T) -> Callable[[bytearray, Any], None]:
    pack = _FIXED[t].pack
    single = t == T.TYPE_FLOAT

    def write(out: bytearray, v: Any) -> None:
        if type(v) is not float:
            if not isinstance(v, (float, int)):
                raise _Bad("type")
            if isinstance(v, int) and not -2**64 < v < 2**64:
                raise _Bad("range")
            v = float(v)
        if single:
            if v != v:
                out += _nan_to_float(v)
                return
            if abs(v) > _FLT_MAX and not math.isinf(v):
                v = math.copysign(math.inf if abs(v) >= _table.FLOAT_OVERFLOW else _FLT_MAX, v)
        out += pack(v)

    return write


def _write_string(out: bytearray, v: Any) -> None:
    if type(v) is not str and not isinstance(v, str):
        raise _Bad("type")
    try:
        data = v.encode("utf-8")
    except UnicodeEncodeError:
        raise _Bad("utf8") from None
    n = len(data)
    if n < 0x80:
        out.append(n)
    else:
        _uvarint(out, n)
    out += data


def _write_bytes(out: bytearray, v: Any) -> None:
    if not isinstance(v, (bytes, bytearray, memoryview)):
        raise _Bad("type")
    n = len(v)
    if n < 0x80:
        out.append(n)
    else:
        _uvarint(out, n)
    out += v


def _writer(t: T) -> Callable[[bytearray, Any], None]:
    if t in _RANGE:
        return _int_writer(t)
    if t == T.TYPE_BOOL:
        return _write_bool
    if t in (T.TYPE_FLOAT, T.TYPE_DOUBLE):
        return _float_writer(t)
    if t == T.TYPE_STRING:
        return _write_string
    return _write_bytes


#: The encoding of each type's zero value (proto3 does not write it; floats
#: compare by bits, as upb does, so -0.0 is written).
_ZERO_BYTES = {t: b"\x00" * {0: 1, 1: 8, 5: 4, 2: 1}.get(w, 1) for t, w in WIRE_TYPE.items()}


# -- map order ---------------------------------------------------------------

def _map_order(key: Any, is_string: bool) -> Any:
    """The sort key of the order upb's deterministic serialization writes map
    entries in: integer and bool keys by their 64-bit two's complement,
    largest first; strings by their bytes, and where one is a prefix of the
    other the longer first (a sentinel above every byte gives that)."""
    if is_string:
        return key.encode("utf-8").decode("latin-1") + "\u0100"
    return -(int(key) & _MASK64)


class Codec:
    """Encoder and decoder for every message of a compiled Schema."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._lookup = [{f.number: i for i, f in enumerate(m.fields)} for m in schema.messages]
        #: per message, per field: the other members of its oneof
        self._rivals = [[[j for j, g in enumerate(m.fields) if f.oneof and g.oneof == f.oneof
                          and g is not f] for f in m.fields] for m in schema.messages]
        self._plans = [self._plan(i) for i in range(len(schema.messages))]

    def _plan(self, index: int) -> list[tuple[Any, ...]]:
        plans = []
        for slot, f in enumerate(self.schema.messages[index].fields):
            t = f.type
            if f.flags & F_MAP:
                kind = _MAP
            elif f.flags & F_REPEATED:
                kind = (_GROUPS if t == T.TYPE_GROUP else _MESSAGES if f.sub >= 0
                        else _PACKED if f.flags & F_PACKED else _UNPACKED)
            elif f.sub >= 0:
                kind = _GROUP if t == T.TYPE_GROUP else _MESSAGE
            else:
                kind = _OPTIONAL if f.flags & F_PRESENCE else _SCALAR
            wt = 2 if kind in (_PACKED, _MESSAGE, _MESSAGES, _MAP) else WIRE_TYPE[t]
            tag = _varint_bytes(f.number << 3 | wt)
            writer = _writer(t) if f.sub < 0 else None
            plans.append((slot, kind, tag, writer, _ZERO_BYTES[t], f.sub,
                          _varint_bytes(f.number << 3 | 4)))
        return plans

    # -- encoding ------------------------------------------------------------

    def encode(self, index: int, flat: Sequence[Any]) -> bytes:
        """The wire bytes of message ``index`` given its flat form: fields in
        number order, map entries in upb's deterministic order, unknown
        fields last (what google.protobuf writes with deterministic=True)."""
        out = bytearray()
        self._encode(index, flat, out, 0)
        return bytes(out)

    def _fail(self, cause: str, index: int, slot: int) -> Exception:
        m = self.schema.messages[index]
        f = m.fields[slot]
        return encode_error(cause, f"{m.full_name}.{f.name}", f.type.name[5:].lower(),
                            limits.PROTO_MAX_DEPTH)

    def _encode(self, index: int, flat: Sequence[Any], out: bytearray, depth: int) -> None:
        plans = self._plans[index]
        if not isinstance(flat, (list, tuple)) or len(flat) != len(plans) + 1:
            raise TypeError(f"{self.schema.messages[index].full_name}: not a flat message")
        slot = 0
        try:
            for slot, kind, tag, write, zero, sub, end_tag in plans:
                v = flat[slot]
                if kind == _SCALAR:
                    at = len(out)
                    out += tag
                    write(out, v)
                    if len(out) - at - len(tag) == len(zero) and out[at + len(tag):] == zero:
                        del out[at:]
                elif kind == _OPTIONAL:
                    if v is not None:
                        out += tag
                        write(out, v)
                elif kind == _MAP:
                    self._encode_map(index, slot, v, out, depth)
                elif kind >= _MESSAGE:
                    if kind == _MESSAGE or kind == _GROUP:
                        if v is not None:
                            self._encode_sub(index, slot, v, out, depth)
                        continue
                    if not isinstance(v, (list, tuple)):
                        raise _Bad("type")
                    for item in v:
                        self._encode_sub(index, slot, item, out, depth)
                else:
                    if not isinstance(v, (list, tuple)):
                        raise _Bad("type")
                    if not v:
                        continue
                    if kind == _PACKED:
                        body = bytearray()
                        for item in v:
                            write(body, item)
                        out += tag
                        _uvarint(out, len(body))
                        out += body
                    else:
                        for item in v:
                            out += tag
                            write(out, item)
        except _Bad as exc:
            raise self._fail(exc.args[0], index, slot) from None
        unknown = flat[-1]
        if unknown:
            if not isinstance(unknown, (bytes, bytearray, memoryview)):
                raise TypeError(f"{self.schema.messages[index].full_name}: not a flat message")
            out += unknown

    def _encode_sub(self, index: int, slot: int, v: Any, out: bytearray, depth: int) -> None:
        _, kind, tag, _, _, sub, end_tag = self._plans[index][slot]
        if depth + 1 > limits.PROTO_MAX_DEPTH:
            raise _Bad("depth")
        if not isinstance(v, (list, tuple)) or len(v) != len(self._plans[sub]) + 1:
            raise _Bad("type")
        out += tag
        if kind == _GROUP or kind == _GROUPS:
            self._encode(sub, v, out, depth + 1)
            out += end_tag
            return
        body = bytearray()
        self._encode(sub, v, body, depth + 1)
        _uvarint(out, len(body))
        out += body

    def _encode_map(self, index: int, slot: int, v: Any, out: bytearray, depth: int) -> None:
        if not isinstance(v, dict):
            raise _Bad("type")
        if not v:
            return
        _, _, tag, _, _, sub, _ = self._plans[index][slot]
        (_, _, ktag, kwrite, _, _, _), (_, vkind, vtag, vwrite, _, vsub, _) = self._plans[sub]
        if depth + 1 > limits.PROTO_MAX_DEPTH:
            raise _Bad("depth")
        is_string = self.schema.messages[sub].fields[0].type == T.TYPE_STRING
        keys = []
        for key in v:
            kb = bytearray(ktag)
            try:
                kwrite(kb, key)
            except _Bad as exc:
                raise self._fail(exc.args[0], sub, 0) from None
            keys.append((_map_order(key, is_string), kb, key))
        keys.sort(key=lambda k: k[0])
        for _, body, key in keys:
            value = v[key]
            if vkind == _MESSAGE:
                if depth + 2 > limits.PROTO_MAX_DEPTH:
                    raise _Bad("depth")
                if not isinstance(value, (list, tuple)) or len(value) != len(self._plans[vsub]) + 1:
                    raise self._fail("type", sub, 1)
                inner = bytearray()
                self._encode(vsub, value, inner, depth + 2)
                body += vtag
                _uvarint(body, len(inner))
                body += inner
            else:
                body += vtag
                try:
                    vwrite(body, value)
                except _Bad as exc:
                    raise self._fail(exc.args[0], sub, 1) from None
            out += tag
            _uvarint(out, len(body))
            out += body

    # -- decoding ------------------------------------------------------------

    def decode(self, index: int, data: bytes, max_depth: int = limits.PROTO_MAX_DEPTH,
               max_message_size: int = limits.DEFAULT_PROTO_MAX_MESSAGE_SIZE) -> list[Any]:
        """The flat form of message ``index`` read from ``data``; raises a
        fastnet.errors.ProtoDecodeError subclass on bad input."""
        buf = bytes(data)
        try:
            if len(buf) > max_message_size:
                raise _Fail("size")
            # depths count up from -max_depth, so "too deep" is depth > 0 and
            # the codec holds no per-call state (threads may share it)
            return self._decode(index, buf, [(0, len(buf))], -max_depth)  # type: ignore[no-any-return]
        except _Fail as exc:
            raise decode_error(exc.args[0], max_depth, len(buf), max_message_size) from None

    def _skip_group(self, buf: bytes, pos: int, end: int, number: int, depth: int) -> tuple[int, int]:
        """Skip a group's body from pos; return where its end tag starts and ends."""
        if depth > 0:
            raise _Fail("depth")
        while True:
            if pos >= end:
                raise _Fail("group")
            start = pos
            tag, pos = _read_tag(buf, pos, end)
            wt = tag & 7
            if wt == 4:
                if tag >> 3 != number:
                    raise _Fail("group")
                return start, pos
            pos = self._skip(buf, pos, end, tag, depth)

    def _skip(self, buf: bytes, pos: int, end: int, tag: int, depth: int) -> int:
        """Skip one value of the tag's wire type (not an end tag)."""
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
        raise _Fail("wire_type")

    def _scan_entry(self, index: int, buf: bytes, pos: int, end: int, depth: int) -> Any:
        """A map entry's key (last occurrence) and value occurrences, or None
        when it holds anything else (upb keeps such an entry among the
        unknown fields). Framing errors are the entry's errors."""
        kf, vf = self.schema.messages[index].fields
        kt, vt = 8 | WIRE_TYPE[kf.type], 16 | WIRE_TYPE[vf.type]
        key: Any = None
        values: list[Any] = []
        clean = True
        while pos < end:
            tag, pos = _read_tag(buf, pos, end)
            wt = tag & 7
            if wt == 4:
                raise _Fail("group")
            start = pos
            if wt == 0:
                v, pos = _read_varint(buf, pos, end)
                occ: Any = (0, v, 0)
            else:
                pos = self._skip(buf, pos, end, tag, depth + 1)
                if wt == 2:
                    start = pos - _read_varint(buf, start, end)[0]
                occ = (wt, start, pos)
            if tag == kt:
                key = occ
            elif tag == vt:
                if vf.sub >= 0:
                    values.append(occ)
                else:
                    values = [occ]
            else:
                clean = False
        if values and vf.closed is not None and _convert(T.TYPE_ENUM, values[0][1]) not in vf.closed:
            clean = False   # upb keeps an entry with an undefined closed enum unknown too
        return (key, values) if clean else None

    def _decode(self, index: int, buf: bytes, segments: list[tuple[int, int]], depth: int) -> Any:
        fields = self.schema.messages[index].fields
        lookup = self._lookup[index]
        rivals = self._rivals[index]
        occ: list[Any] = [None] * len(fields)
        # unknown fields: (start, end) spans of buf, or bytes made from closed enums
        unknown: Optional[list[Any]] = None
        for pos, end in segments:
            while pos < end:
                start = pos
                tag = buf[pos]
                if tag < 0x80 and tag >= 8:
                    pos += 1
                else:
                    tag, pos = _read_tag(buf, pos, end)
                wt = tag & 7
                if wt == 0:
                    if pos < end and buf[pos] < 0x80:
                        vstart: Any = buf[pos]
                        pos += 1
                    else:
                        vstart, pos = _read_varint(buf, pos, end)
                    vend = 0
                elif wt == 2:
                    if pos < end and buf[pos] < 0x80:
                        n = buf[pos]
                        pos += 1
                    else:
                        n, pos = _read_varint(buf, pos, end)
                    if n > end - pos:
                        raise _Fail("truncated")
                    vstart = pos
                    pos += n
                    vend = pos
                elif wt == 4:
                    raise _Fail("group")
                elif wt == 3:
                    vstart = pos
                    vend, pos = self._skip_group(buf, pos, end, tag >> 3, depth + 1)
                else:
                    vstart = pos
                    pos = self._skip(buf, pos, end, tag, depth)
                    vend = pos
                slot = lookup.get(tag >> 3)
                if slot is not None:
                    f = fields[slot]
                    ft = WIRE_TYPE[f.type]
                    if ft == wt or (wt == 2 and f.flags & F_REPEATED and f.type in PACKABLE):
                        record: Any = (wt, vstart, vend)
                        if f.flags & F_MAP:
                            record = self._scan_entry(f.sub, buf, vstart, vend, depth)
                        elif f.closed is not None:
                            if unknown is None:
                                unknown = []
                            record = _closed(f, record, buf, unknown)
                        if record is not None:
                            for r in rivals[slot]:
                                occ[r] = None   # a oneof keeps its last member
                            if f.flags & F_REPEATED or f.sub >= 0:
                                if occ[slot] is None:
                                    occ[slot] = [record]
                                else:
                                    occ[slot].append(record)
                            else:
                                occ[slot] = record
                            continue
                if unknown is None:
                    unknown = [(start, pos)]
                elif unknown and type(unknown[-1]) is tuple and unknown[-1][1] == start:
                    unknown[-1] = (unknown[-1][0], pos)   # a run of unknown fields
                else:
                    unknown.append((start, pos))
        out: list[Any] = [None] * (len(fields) + 1)
        for slot, f in enumerate(fields):
            o = occ[slot]
            t = f.type
            if f.flags & F_MAP:
                d: dict[Any, Any] = {}
                if o is not None:
                    self._check_depth(depth + 1)
                    entry = self.schema.messages[f.sub]
                    kf, vf = entry.fields
                    for key, values in o:
                        k = kf.default if key is None else _value(kf.type, buf, *key)
                        if vf.sub >= 0:
                            self._check_depth(depth + 2)
                            d[k] = self._decode(vf.sub, buf, [(s, e) for _, s, e in values],
                                                depth + 2)
                        else:
                            d[k] = vf.default if not values else _value(vf.type, buf, *values[0])
                out[slot] = d
            elif f.sub >= 0:
                if f.flags & F_REPEATED:
                    items = []
                    if o is not None:
                        self._check_depth(depth + 1)
                        for _, s, e in o:
                            items.append(self._decode(f.sub, buf, [(s, e)], depth + 1))
                    out[slot] = items
                elif o is not None:
                    self._check_depth(depth + 1)
                    out[slot] = self._decode(f.sub, buf, [(s, e) for _, s, e in o], depth + 1)
            elif f.flags & F_REPEATED:
                items = []
                if o is not None:
                    for wt, s, e in o:
                        if wt < 0:
                            items.extend(s)   # a closed enum's packed numbers it defines
                        elif wt == 2 and t in PACKABLE:
                            _unpack(t, buf, s, e, items)
                        else:
                            items.append(_value(t, buf, wt, s, e))
                out[slot] = items
            elif o is None:
                out[slot] = None if f.flags & F_PRESENCE else f.default
            else:
                out[slot] = _value(t, buf, *o)
        if unknown:
            out[-1] = b"".join([buf[u[0]:u[1]] if type(u) is tuple else u for u in unknown])
        return out

    def _check_depth(self, depth: int) -> None:
        if depth > 0:
            raise _Fail("depth")


def _closed(f: Any, record: tuple[int, Any, int], buf: bytes, unknown: list[Any]) -> Any:
    """A closed enum field's occurrence: None when its number is not defined
    (then it is an unknown field, as upb keeps it); a packed body keeps the
    numbers defined and each other one becomes an unknown varint field."""
    wt, s, e = record
    if wt == 0:
        return record if _convert(T.TYPE_ENUM, s) in f.closed else None
    values: list[int] = []
    _unpack(T.TYPE_ENUM, buf, s, e, values)
    tag = _varint_bytes(f.number << 3)
    known = []
    for v in values:
        if v in f.closed:
            known.append(v)
        else:
            unknown.append(tag + _varint_bytes(v & _MASK64))
    return (-1, known, 0)


def _read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """A varint of up to 10 bytes (overlong encodings allowed, bits past 64
    dropped, as protobuf reads them)."""
    value = shift = 0
    for _ in range(10):
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
    """A field tag: a varint that fits in 32 bits (at most 5 bytes), field
    number not 0."""
    value = shift = 0
    for _ in range(5):
        if pos >= end:
            raise _Fail("truncated")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            if value > 0xFFFFFFFF or value >> 3 == 0:
                raise _Fail("tag")
            return value, pos
        shift += 7
    raise _Fail("tag")


def _convert(t: T, v: int) -> Any:
    """A varint's value as type t."""
    if t == T.TYPE_INT32 or t == T.TYPE_ENUM:
        v &= 0xFFFFFFFF
        return v - (1 << 32) if v >> 31 else v
    if t == T.TYPE_INT64:
        return v - (1 << 64) if v >> 63 else v
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


def _value(t: T, buf: bytes, wt: int, s: int, e: int) -> Any:
    """One value of type t: a varint's value (wt 0: s is the value), else
    buf[s:e] (framing already checked)."""
    if wt == 0:
        return _convert(t, s)
    if t == T.TYPE_STRING:
        try:
            return buf[s:e].decode("utf-8")
        except UnicodeDecodeError:
            raise _Fail("utf8") from None
    if t == T.TYPE_BYTES:
        return buf[s:e]
    if t == T.TYPE_FLOAT:
        return _float(buf[s:s + 4])
    return _FIXED[t].unpack_from(buf, s)[0]


_U32, _U64, _F64 = struct.Struct("<I"), struct.Struct("<Q"), struct.Struct("<d")


def _float(raw: bytes) -> float:
    """A float32 as a Python float; a NaN by its bits (sign, payload, quiet
    bit), as the C twin does, since the FPU's conversion quiets a signaling
    NaN and upb keeps it as it came."""
    (u,) = _U32.unpack(raw)
    if u & 0x7F800000 == 0x7F800000 and u & 0x7FFFFF:
        bits = (u >> 31) << 63 | 0x7FF0000000000000 | (u & 0x7FFFFF) << 29
        return float(_F64.unpack(_U64.pack(bits))[0])
    return float(_FIXED[T.TYPE_FLOAT].unpack(raw)[0])


def _nan_to_float(v: float) -> bytes:
    """A NaN double as float32 bytes by its bits (see _float)."""
    (b,) = _U64.unpack(_F64.pack(v))
    m = (b >> 29) & 0x7FFFFF or 0x400000
    return _U32.pack((b >> 63) << 31 | 0x7F800000 | m)


def _unpack(t: T, buf: bytes, s: int, e: int, items: list[Any]) -> None:
    """The values of a packed field's body buf[s:e], appended to items."""
    if t in _VARINT_TYPES:
        plain = t == T.TYPE_INT32 or t == T.TYPE_INT64 or t == T.TYPE_UINT32 or t == T.TYPE_UINT64
        while s < e:
            b = buf[s]
            if b < 0x80:
                s += 1
                items.append(b if plain else _convert(t, b))
                continue
            try:
                v, s = _read_varint(buf, s, e)
            except _Fail:
                raise _Fail("packed") from None
            items.append(_convert(t, v))
        return
    fmt = _FIXED[t]
    if (e - s) % fmt.size:
        raise _Fail("packed")
    if t == T.TYPE_FLOAT:
        items.extend([_float(buf[i:i + 4]) for i in range(s, e, 4)])
        return
    items.extend([v for (v,) in fmt.iter_unpack(buf[s:e])])
