"""The schema model: Python mirrors of google/protobuf/descriptor.proto.

This is the contract between the .proto front end (which builds these from
source text) and the wire codec and message classes (which compile them into
tables). Every class is one message of descriptor.proto, its attributes named
exactly as that message's fields and its enum values numbered as there, so a
FileDescriptorSet serialized from these objects is what protoc writes, and a
test can compare them with protoc's output field by field.

Singular fields default to None ("not set", as proto2 presence has it) and
repeated ones to empty lists. Options messages are kept as their serialized
bytes (``options``), written by the front end in protoc's order (known fields
by number, then custom options), since custom options are extensions whose
schema lives in the user's files; :func:`option_varint` reads one field back
(``packed``, ``map_entry``, ``deprecated`` ...).
"""
from __future__ import annotations

import enum
import dataclasses
from dataclasses import dataclass
from typing import Optional


class FieldType(enum.IntEnum):
    """FieldDescriptorProto.Type."""

    TYPE_DOUBLE = 1
    TYPE_FLOAT = 2
    TYPE_INT64 = 3
    TYPE_UINT64 = 4
    TYPE_INT32 = 5
    TYPE_FIXED64 = 6
    TYPE_FIXED32 = 7
    TYPE_BOOL = 8
    TYPE_STRING = 9
    TYPE_GROUP = 10
    TYPE_MESSAGE = 11
    TYPE_BYTES = 12
    TYPE_UINT32 = 13
    TYPE_ENUM = 14
    TYPE_SFIXED32 = 15
    TYPE_SFIXED64 = 16
    TYPE_SINT32 = 17
    TYPE_SINT64 = 18


class FieldLabel(enum.IntEnum):
    """FieldDescriptorProto.Label."""

    LABEL_OPTIONAL = 1
    LABEL_REQUIRED = 2
    LABEL_REPEATED = 3


@dataclass
class FieldDescriptorProto:
    name: Optional[str] = None                 # 1
    extendee: Optional[str] = None             # 2
    number: Optional[int] = None               # 3
    label: Optional[FieldLabel] = None         # 4
    type: Optional[FieldType] = None           # 5
    type_name: Optional[str] = None            # 6 (fully qualified, leading ".")
    default_value: Optional[str] = None        # 7
    options: Optional[bytes] = None            # 8 FieldOptions
    oneof_index: Optional[int] = None          # 9
    json_name: Optional[str] = None            # 10
    proto3_optional: Optional[bool] = None     # 17


@dataclass
class OneofDescriptorProto:
    name: Optional[str] = None                 # 1
    options: Optional[bytes] = None            # 2 OneofOptions


@dataclass
class ExtensionRange:
    """DescriptorProto.ExtensionRange: [start, end)."""

    start: Optional[int] = None                # 1
    end: Optional[int] = None                  # 2 (exclusive)
    options: Optional[bytes] = None            # 3 ExtensionRangeOptions


@dataclass
class ReservedRange:
    """DescriptorProto.ReservedRange: [start, end)."""

    start: Optional[int] = None                # 1
    end: Optional[int] = None                  # 2 (exclusive)


@dataclass
class EnumReservedRange:
    """EnumDescriptorProto.EnumReservedRange: [start, end], end inclusive."""

    start: Optional[int] = None                # 1
    end: Optional[int] = None                  # 2 (inclusive)


@dataclass
class EnumValueDescriptorProto:
    name: Optional[str] = None                 # 1
    number: Optional[int] = None               # 2
    options: Optional[bytes] = None            # 3 EnumValueOptions


@dataclass
class EnumDescriptorProto:
    name: Optional[str] = None                                          # 1
    value: list[EnumValueDescriptorProto] = dataclasses.field(default_factory=list)  # 2
    options: Optional[bytes] = None                                     # 3 EnumOptions
    reserved_range: list[EnumReservedRange] = dataclasses.field(default_factory=list)  # 4
    reserved_name: list[str] = dataclasses.field(default_factory=list)              # 5


@dataclass
class DescriptorProto:
    name: Optional[str] = None                                              # 1
    field: list[FieldDescriptorProto] = dataclasses.field(default_factory=list)        # 2
    nested_type: list["DescriptorProto"] = dataclasses.field(default_factory=list)     # 3
    enum_type: list[EnumDescriptorProto] = dataclasses.field(default_factory=list)     # 4
    extension_range: list[ExtensionRange] = dataclasses.field(default_factory=list)    # 5
    extension: list[FieldDescriptorProto] = dataclasses.field(default_factory=list)    # 6
    options: Optional[bytes] = None                                         # 7 MessageOptions
    oneof_decl: list[OneofDescriptorProto] = dataclasses.field(default_factory=list)   # 8
    reserved_range: list[ReservedRange] = dataclasses.field(default_factory=list)      # 9
    reserved_name: list[str] = dataclasses.field(default_factory=list)                 # 10


@dataclass
class MethodDescriptorProto:
    name: Optional[str] = None                 # 1
    input_type: Optional[str] = None           # 2 (fully qualified, leading ".")
    output_type: Optional[str] = None          # 3
    options: Optional[bytes] = None            # 4 MethodOptions
    client_streaming: Optional[bool] = None    # 5
    server_streaming: Optional[bool] = None    # 6


@dataclass
class ServiceDescriptorProto:
    name: Optional[str] = None                                          # 1
    method: list[MethodDescriptorProto] = dataclasses.field(default_factory=list)  # 2
    options: Optional[bytes] = None                                     # 3 ServiceOptions


@dataclass
class FileDescriptorProto:
    name: Optional[str] = None                                              # 1
    package: Optional[str] = None                                           # 2
    dependency: list[str] = dataclasses.field(default_factory=list)                     # 3
    message_type: list[DescriptorProto] = dataclasses.field(default_factory=list)       # 4
    enum_type: list[EnumDescriptorProto] = dataclasses.field(default_factory=list)      # 5
    service: list[ServiceDescriptorProto] = dataclasses.field(default_factory=list)     # 6
    extension: list[FieldDescriptorProto] = dataclasses.field(default_factory=list)     # 7
    options: Optional[bytes] = None                                         # 8 FileOptions
    public_dependency: list[int] = dataclasses.field(default_factory=list)              # 10
    weak_dependency: list[int] = dataclasses.field(default_factory=list)                # 11
    syntax: Optional[str] = None                                            # 12 ("proto3"; unset for proto2)


@dataclass
class FileDescriptorSet:
    file: list[FileDescriptorProto] = dataclasses.field(default_factory=list)  # 1


def option_varint(options: Optional[bytes], number: int) -> Optional[int]:
    """The last value of varint field ``number`` in a serialized options
    message (``FieldOptions.packed`` is 2, ``MessageOptions.map_entry`` is 7),
    or None when it is not set. Options are trusted (they come from schemas)."""
    if not options:
        return None
    found: Optional[int] = None
    pos, end = 0, len(options)
    while pos < end:
        key, pos = _varint(options, pos)
        wire = key & 7
        if wire == 0:
            value, pos = _varint(options, pos)
            if key >> 3 == number:
                found = value
        elif wire == 1:
            pos += 8
        elif wire == 2:
            size, pos = _varint(options, pos)
            pos += size
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"options: unsupported wire type {wire}")
    return found


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
