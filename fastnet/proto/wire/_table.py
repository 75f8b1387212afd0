"""The schema compiled to flat tables: what both wire twins walk.

A message's fields are kept sorted by number, and a message instance crosses
to a codec as its *flat* form: a sequence with one item per field in that
order, then the unknown fields (``bytes`` or ``None``)::

    scalar, no presence     its value (proto3 default when unset)
    scalar with presence    ``None`` when unset (proto3 ``optional``, proto2,
                            oneof members)
    message or group        ``None`` or the submessage's flat form
    repeated                a ``list`` of values (flat forms for messages)
    map                     a ``dict`` of key to value (flat form for messages)

Decoders return that form as a ``list`` (lists all the way down), so the
message classes turn it into objects with one generated function per class,
and encoders take it from ``SerializeToString`` likewise.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field as dc_field
from typing import Any, Optional

from ..descriptor import (DescriptorProto, FieldDescriptorProto, FieldLabel, FieldType,
                          FileDescriptorProto, option_varint)

#: Field flags (the C twin receives them as they are).
F_REPEATED = 1
F_PACKED = 2        # repeated scalar written packed
F_PRESENCE = 4      # None means unset; a set default is still written
F_UTF8 = 8          # a string: must be valid UTF-8
F_MAP = 16          # repeated map entry messages, a dict in flat form

T = FieldType
#: Wire type of each field type (packed repeated fields use 2).
WIRE_TYPE = {
    T.TYPE_DOUBLE: 1, T.TYPE_FLOAT: 5, T.TYPE_INT64: 0, T.TYPE_UINT64: 0, T.TYPE_INT32: 0,
    T.TYPE_FIXED64: 1, T.TYPE_FIXED32: 5, T.TYPE_BOOL: 0, T.TYPE_STRING: 2, T.TYPE_GROUP: 3,
    T.TYPE_MESSAGE: 2, T.TYPE_BYTES: 2, T.TYPE_UINT32: 0, T.TYPE_ENUM: 0, T.TYPE_SFIXED32: 5,
    T.TYPE_SFIXED64: 1, T.TYPE_SINT32: 0, T.TYPE_SINT64: 0,
}
#: Types that may be packed (numeric scalars).
PACKABLE = frozenset(t for t, w in WIRE_TYPE.items() if w in (0, 1, 5))
#: The value of an unset field without presence.
ZERO: dict[int, Any] = {t: 0 for t in WIRE_TYPE}
ZERO.update({T.TYPE_DOUBLE: 0.0, T.TYPE_FLOAT: 0.0, T.TYPE_BOOL: False, T.TYPE_STRING: "",
             T.TYPE_BYTES: b"", T.TYPE_MESSAGE: None, T.TYPE_GROUP: None})
#: Inclusive ranges of the integer types (what an encoder accepts).
INT_RANGE = {
    T.TYPE_INT32: (-2**31, 2**31 - 1), T.TYPE_SINT32: (-2**31, 2**31 - 1),
    T.TYPE_SFIXED32: (-2**31, 2**31 - 1), T.TYPE_ENUM: (-2**31, 2**31 - 1),
    T.TYPE_UINT32: (0, 2**32 - 1), T.TYPE_FIXED32: (0, 2**32 - 1),
    T.TYPE_INT64: (-2**63, 2**63 - 1), T.TYPE_SINT64: (-2**63, 2**63 - 1),
    T.TYPE_SFIXED64: (-2**63, 2**63 - 1),
    T.TYPE_UINT64: (0, 2**64 - 1), T.TYPE_FIXED64: (0, 2**64 - 1),
}
#: The smallest magnitude that rounds to infinity as a float32 (2^128 - 2^103);
#: below it, past FLT_MAX, a value rounds to FLT_MAX.
FLOAT_OVERFLOW = 2.0**128 - 2.0**103


@dataclass
class FieldEntry:
    """One field of a compiled message."""
    number: int
    name: str
    type: FieldType
    flags: int
    sub: int = -1                       # message index (message, group, map entry)
    enum: Optional[str] = None          # full name of an enum field's type
    oneof: Optional[str] = None         # the (real) oneof it belongs to
    default: Any = None                 # value read while unset
    closed: Optional[frozenset[int]] = None   # a closed (proto2) enum's numbers
    json_name: str = ""
    descriptor: Optional[FieldDescriptorProto] = None


@dataclass
class MessageEntry:
    """One compiled message: its fields sorted by number."""
    full_name: str
    fields: list[FieldEntry] = dc_field(default_factory=list)
    map_entry: bool = False
    syntax: str = "proto2"
    descriptor: Optional[DescriptorProto] = None
    oneofs: list[str] = dc_field(default_factory=list)


@dataclass
class Schema:
    """Every message of a set of files, in one table (indices are stable)."""
    messages: list[MessageEntry] = dc_field(default_factory=list)
    index: dict[str, int] = dc_field(default_factory=dict)
    enums: dict[str, dict[str, int]] = dc_field(default_factory=dict)
    #: proto2 enums are closed: a number they do not define is an unknown field
    closed: dict[str, frozenset[int]] = dc_field(default_factory=dict)


def _enum_default(schema: Schema, fd: FieldDescriptorProto) -> int:
    values = schema.enums.get((fd.type_name or "").lstrip("."), {})
    if fd.default_value is not None:
        return values[fd.default_value]
    return next(iter(values.values()), 0)


def _parse_default(schema: Schema, fd: FieldDescriptorProto) -> Any:
    """A proto2 default_value (descriptor.proto's text form) as a Python value."""
    t, text = fd.type, fd.default_value
    if t == T.TYPE_ENUM:
        return _enum_default(schema, fd)
    if text is None:
        return ZERO[t]  # type: ignore[index]
    if t in (T.TYPE_DOUBLE, T.TYPE_FLOAT):
        value = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}.get(text)
        value = float(text) if value is None else value
        if t == T.TYPE_FLOAT:
            value = struct.unpack("<f", struct.pack("<f", value))[0]
        return value
    if t == T.TYPE_BOOL:
        return text == "true"
    if t == T.TYPE_STRING:
        return text
    if t == T.TYPE_BYTES:
        return _unescape_bytes(text)
    return int(text, 0)


def _unescape_bytes(text: str) -> bytes:
    """descriptor.proto's C-escaped bytes default as bytes."""
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        nxt = text[i + 1]
        if nxt in "01234567":
            j = i + 1
            while j < len(text) and j < i + 4 and text[j] in "01234567":
                j += 1
            out.append(int(text[i + 1:j], 8) & 0xFF)
            i = j
        elif nxt == "x":
            j = i + 2
            while j < len(text) and j < i + 4 and text[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(int(text[i + 2:j], 16))
            i = j
        else:
            out += {"n": b"\n", "r": b"\r", "t": b"\t", "a": b"\a", "b": b"\b", "f": b"\f",
                    "v": b"\v", "\\": b"\\", "'": b"'", '"': b'"', "?": b"?"}[nxt]
            i += 2
    return bytes(out)


def compile_schema(files: list[FileDescriptorProto]) -> Schema:
    """Compile every message of ``files`` (descriptors as protoc writes them,
    type names fully qualified) into one Schema."""
    schema = Schema()
    pending: list[tuple[str, DescriptorProto, str]] = []

    def collect(prefix: str, msg: DescriptorProto, syntax: str) -> None:
        name = f"{prefix}.{msg.name}" if prefix else str(msg.name)
        schema.index[name] = len(pending)
        pending.append((name, msg, syntax))
        for enum in msg.enum_type:
            _add_enum(schema, f"{name}.{enum.name}", enum, syntax)
        for nested in msg.nested_type:
            collect(name, nested, syntax)

    for f in files:
        syntax = f.syntax or "proto2"
        prefix = f.package or ""
        for enum in f.enum_type:
            _add_enum(schema, f"{prefix}.{enum.name}" if prefix else str(enum.name), enum, syntax)
        for msg in f.message_type:
            collect(prefix, msg, syntax)
    descriptors = [msg for _, msg, _ in pending]
    for name, msg, syntax in pending:
        schema.messages.append(_compile_message(schema, descriptors, name, msg, syntax))
    return schema


def _add_enum(schema: Schema, name: str, enum: Any, syntax: str) -> None:
    schema.enums[name] = {str(v.name): int(v.number or 0) for v in enum.value}
    if syntax == "proto2":
        schema.closed[name] = frozenset(schema.enums[name].values())


def _compile_message(schema: Schema, descriptors: list[DescriptorProto], name: str,
                     msg: DescriptorProto, syntax: str) -> MessageEntry:
    entry = MessageEntry(full_name=name, syntax=syntax, descriptor=msg,
                         map_entry=option_varint(msg.options, 7) == 1)
    real_oneofs = {fd.oneof_index for fd in msg.field
                   if fd.oneof_index is not None and not fd.proto3_optional}
    entry.oneofs = [str(o.name) for i, o in enumerate(msg.oneof_decl) if i in real_oneofs]
    for fd in sorted(msg.field, key=lambda f: f.number or 0):
        if fd.type is None:
            raise ValueError(f"{name}.{fd.name}: no type (descriptors must be resolved)")
        t = FieldType(fd.type)
        flags = 0
        sub = -1
        if t in (T.TYPE_MESSAGE, T.TYPE_GROUP):
            sub = schema.index[(fd.type_name or "").lstrip(".")]
        repeated = fd.label == FieldLabel.LABEL_REPEATED
        if repeated:
            flags |= F_REPEATED
            if sub >= 0 and option_varint(descriptors[sub].options, 7) == 1:
                flags |= F_MAP
            packed = option_varint(fd.options, 2)
            if t in PACKABLE and (packed == 1 or (packed is None and syntax == "proto3")):
                flags |= F_PACKED
        elif sub < 0 and not entry.map_entry and (
                syntax == "proto2" or fd.proto3_optional or fd.oneof_index is not None):
            flags |= F_PRESENCE
        if t == T.TYPE_STRING:
            flags |= F_UTF8
        oneof = None
        if fd.oneof_index is not None and not fd.proto3_optional:
            oneof = str(msg.oneof_decl[fd.oneof_index].name)
        if repeated:
            default: Any = None
        elif flags & F_PRESENCE and syntax == "proto2":
            default = _parse_default(schema, fd)
        elif t == T.TYPE_ENUM:
            default = _enum_default(schema, fd) if syntax == "proto2" else 0
        else:
            default = ZERO[t]
        entry.fields.append(FieldEntry(
            number=int(fd.number or 0), name=str(fd.name), type=t, flags=flags, sub=sub,
            enum=(fd.type_name or "").lstrip(".") if t == T.TYPE_ENUM else None,
            closed=schema.closed.get((fd.type_name or "").lstrip(".")) if t == T.TYPE_ENUM else None,
            oneof=oneof, default=default, json_name=fd.json_name or _json_name(str(fd.name)),
            descriptor=fd))
    return entry


def _json_name(name: str) -> str:
    """protoc's lowerCamelCase json_name of a field name."""
    out = []
    upper = False
    for c in name:
        if c == "_":
            upper = True
        elif upper:
            out.append(c.upper())
            upper = False
        else:
            out.append(c)
    return "".join(out)
