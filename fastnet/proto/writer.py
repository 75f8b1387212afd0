"""Descriptors to bytes: the protobuf encoding of descriptor.proto's messages.

Fields go out in field-number order, as protoc (C++) serializes them;
``options`` are already serialized (:mod:`.options`) and are written as
they are. ``encode_set`` of the files protoc would list gives the bytes of
``protoc --descriptor_set_out=x --include_imports``.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from ..codec.py.varint import encode_uvarint
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


def copy(message: Any) -> Any:
    """A deep copy of a descriptor object."""
    return dataclasses.replace(message, **{
        f.name: [copy(v) if dataclasses.is_dataclass(v) else v for v in getattr(message, f.name)]
        for f in dataclasses.fields(message) if isinstance(getattr(message, f.name), list)})
