"""Descriptors to bytes and back: the protobuf encoding of descriptor.proto's
messages.

Fields go out in field-number order, as protoc (C++) serializes them;
``options`` are already serialized (:mod:`.options`) and are written as
they are. ``encode_set`` of the files protoc would list gives the bytes of
``protoc --descriptor_set_out=x --include_imports``; ``decode_set`` reads
such a set back (a descriptor set is a schema: trusted input, but a
malformed one is a ValueError, never an IndexError).
"""
from __future__ import annotations

from typing import Any

from ..codec.varint.py import decode_uvarint, encode_uvarint
from ..errors import VarintError
from . import descriptor as d

# per class: (attribute, field number, kind); kind is "str", "int" (varint,
# negative ints as 10 bytes), "bool", "raw" (pre-serialized message) or
# "msg" (a nested descriptor); lists are repeated fields.
_LAYOUT: dict[type, list[tuple[str, int, str]]] = {
    d.FileDescriptorSet: [("file", 1, "msg")],
    d.FileDescriptorProto: [
        ("name", 1, "str"), ("package", 2, "str"), ("dependency", 3, "str"),
        ("message_type", 4, "msg"), ("enum_type", 5, "msg"), ("service", 6, "msg"),
        ("extension", 7, "msg"), ("options", 8, "raw"), ("public_dependency", 10, "int"),
        ("weak_dependency", 11, "int"), ("syntax", 12, "str")],
    d.DescriptorProto: [
        ("name", 1, "str"), ("field", 2, "msg"), ("nested_type", 3, "msg"),
        ("enum_type", 4, "msg"), ("extension_range", 5, "msg"), ("extension", 6, "msg"),
        ("options", 7, "raw"), ("oneof_decl", 8, "msg"), ("reserved_range", 9, "msg"),
        ("reserved_name", 10, "str")],
    d.ExtensionRange: [("start", 1, "int"), ("end", 2, "int"), ("options", 3, "raw")],
    d.ReservedRange: [("start", 1, "int"), ("end", 2, "int")],
    d.FieldDescriptorProto: [
        ("name", 1, "str"), ("extendee", 2, "str"), ("number", 3, "int"), ("label", 4, "int"),
        ("type", 5, "int"), ("type_name", 6, "str"), ("default_value", 7, "str"),
        ("options", 8, "raw"), ("oneof_index", 9, "int"), ("json_name", 10, "str"),
        ("proto3_optional", 17, "bool")],
    d.OneofDescriptorProto: [("name", 1, "str"), ("options", 2, "raw")],
    d.EnumDescriptorProto: [
        ("name", 1, "str"), ("value", 2, "msg"), ("options", 3, "raw"),
        ("reserved_range", 4, "msg"), ("reserved_name", 5, "str")],
    d.EnumReservedRange: [("start", 1, "int"), ("end", 2, "int")],
    d.EnumValueDescriptorProto: [("name", 1, "str"), ("number", 2, "int"), ("options", 3, "raw")],
    d.ServiceDescriptorProto: [("name", 1, "str"), ("method", 2, "msg"), ("options", 3, "raw")],
    d.MethodDescriptorProto: [
        ("name", 1, "str"), ("input_type", 2, "str"), ("output_type", 3, "str"),
        ("options", 4, "raw"), ("client_streaming", 5, "bool"), ("server_streaming", 6, "bool")],
}


def uvarint(value: int) -> bytes:
    """A varint; negative numbers as their 64-bit two's complement (10 bytes)."""
    return encode_uvarint(value & (1 << 64) - 1)


def encode(message: Any) -> bytes:
    """The serialized form of one descriptor object."""
    out = bytearray()
    for attr, number, kind in _LAYOUT[type(message)]:
        value = getattr(message, attr)
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            if kind == "int" or kind == "bool":
                out += uvarint(number << 3) + uvarint(int(item))
                continue
            if kind == "str":
                body = item.encode("utf-8")
            elif kind == "raw":
                body = item
            else:
                body = encode(item)
            out += uvarint(number << 3 | 2) + uvarint(len(body)) + body
    return bytes(out)


def encode_set(files: list[d.FileDescriptorProto]) -> bytes:
    """A FileDescriptorSet of ``files``, in the order given."""
    return encode(d.FileDescriptorSet(file=list(files)))


def decode_set(data: bytes) -> list[d.FileDescriptorProto]:
    """The files of a serialized FileDescriptorSet (unknown fields, such as
    ``source_code_info``, are skipped)."""
    result = decode(d.FileDescriptorSet, data)
    assert isinstance(result, d.FileDescriptorSet)
    return result.file


#: the nested descriptor class behind each "msg" attribute
_NESTED: dict[tuple[type, str], type] = {
    (d.FileDescriptorSet, "file"): d.FileDescriptorProto,
    (d.FileDescriptorProto, "message_type"): d.DescriptorProto,
    (d.FileDescriptorProto, "enum_type"): d.EnumDescriptorProto,
    (d.FileDescriptorProto, "service"): d.ServiceDescriptorProto,
    (d.FileDescriptorProto, "extension"): d.FieldDescriptorProto,
    (d.DescriptorProto, "field"): d.FieldDescriptorProto,
    (d.DescriptorProto, "nested_type"): d.DescriptorProto,
    (d.DescriptorProto, "enum_type"): d.EnumDescriptorProto,
    (d.DescriptorProto, "extension_range"): d.ExtensionRange,
    (d.DescriptorProto, "extension"): d.FieldDescriptorProto,
    (d.DescriptorProto, "oneof_decl"): d.OneofDescriptorProto,
    (d.DescriptorProto, "reserved_range"): d.ReservedRange,
    (d.EnumDescriptorProto, "value"): d.EnumValueDescriptorProto,
    (d.EnumDescriptorProto, "reserved_range"): d.EnumReservedRange,
    (d.ServiceDescriptorProto, "method"): d.MethodDescriptorProto,
}
_ENUMS: dict[tuple[str, type], type] = {("label", d.FieldDescriptorProto): d.FieldLabel,
          ("type", d.FieldDescriptorProto): d.FieldType}


def decode(cls: type, data: bytes) -> Any:
    """One descriptor object of class ``cls`` from its serialized form."""
    out = cls()
    by_number = {number: (attr, kind) for attr, number, kind in _LAYOUT[cls]}
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            raw_int, pos = _read_varint(data, pos)
            value: Any = raw_int
        elif wire == 2:
            size, pos = _read_varint(data, pos)
            if pos + size > end:
                raise ValueError("descriptor set: truncated length-delimited field")
            value, pos = data[pos:pos + size], pos + size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            continue
        else:
            raise ValueError(f"descriptor set: unsupported wire type {wire}")
        if number not in by_number:
            continue
        attr, kind = by_number[number]
        if kind == "int":
            value = value - (1 << 64) if value >= 1 << 63 else value
            enum = _ENUMS.get((attr, cls))
            value = enum(value) if enum is not None else value
        elif kind == "bool":
            value = bool(value)
        elif kind == "str":
            value = bytes(value).decode("utf-8")
        elif kind == "raw":
            value = bytes(value)
        else:
            value = decode(_NESTED[(cls, attr)], bytes(value))
        if isinstance(getattr(out, attr), list):
            getattr(out, attr).append(value)
        else:
            setattr(out, attr, value)
    return out


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    try:
        return decode_uvarint(data, pos)
    except VarintError as exc:
        raise ValueError(f"descriptor set: {exc}") from None
