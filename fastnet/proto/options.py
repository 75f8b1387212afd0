"""Options: ``option x = v;`` and ``[x = v]`` statements to serialized
``*Options`` messages, as protoc writes them in a descriptor set.

Known options are fields of descriptor.proto's ``*Options`` messages, custom
ones extensions of them in the user's files; both are looked up in the same
:class:`~fastnet.proto.resolve.Pool` (descriptor.proto is always loaded).
Each element's statements build one typed message value: statements naming
sub-fields (``(a).b = 1``) merge into one message, aggregates
(``{ a: 1 b: [2, 3] }``) are text format. The value is serialized as
protoc's output has it: every field (known or extension) in field-number
order, repeated ones in the order written, fields whose FieldOptions say
``retention = RETENTION_SOURCE`` left out (protoc strips them from
descriptor sets).
"""
from __future__ import annotations

import math
import struct
from typing import Optional, Union

from . import descriptor as d
from .parser import Option, OptionValue, ParsedFile, TextField
from .resolve import Issue, Pool, to_float32, walk_messages
from .writer import uvarint

T = d.FieldType
L = d.FieldLabel

#: FieldOptions.retention and its RETENTION_SOURCE value.
_RETENTION_FIELD = 17
_RETENTION_SOURCE = 2

_INT_RANGES = {
    T.TYPE_INT32: (-(1 << 31), (1 << 31) - 1, "int32"),
    T.TYPE_SINT32: (-(1 << 31), (1 << 31) - 1, "int32"),
    T.TYPE_SFIXED32: (-(1 << 31), (1 << 31) - 1, "int32"),
    T.TYPE_INT64: (-(1 << 63), (1 << 63) - 1, "int64"),
    T.TYPE_SINT64: (-(1 << 63), (1 << 63) - 1, "int64"),
    T.TYPE_SFIXED64: (-(1 << 63), (1 << 63) - 1, "int64"),
    T.TYPE_UINT32: (0, (1 << 32) - 1, "uint32"),
    T.TYPE_FIXED32: (0, (1 << 32) - 1, "uint32"),
    T.TYPE_UINT64: (0, (1 << 64) - 1, "uint64"),
    T.TYPE_FIXED64: (0, (1 << 64) - 1, "uint64"),
}

Value = Union[int, float, bool, bytes, "MessageValue"]


class MessageValue:
    """A message being built: field number -> (field, values in order)."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name            # full name, no leading dot
        self.fields: dict[int, tuple[d.FieldDescriptorProto, list[Value]]] = {}

    def values(self, fld: d.FieldDescriptorProto) -> list[Value]:
        assert fld.number is not None
        entry = self.fields.setdefault(fld.number, (fld, []))
        return entry[1]

    def child(self, fld: d.FieldDescriptorProto) -> "MessageValue":
        """The (merged) sub-message of singular message field ``fld``."""
        values = self.values(fld)
        if not values:
            values.append(MessageValue((fld.type_name or ".")[1:]))
        value = values[-1]
        assert isinstance(value, MessageValue)
        return value


class OptionError(Exception):
    def __init__(self, pos: tuple[int, int], message: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message


class _TextError(Exception):
    """An error inside an aggregate (text format) value."""


class Interpreter:
    """Interprets the option statements of files built into ``pool``, then
    serializes them all (serializing needs every option field's own
    ``retention``, so it waits until every file is interpreted)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.values: dict[int, MessageValue] = {}      # id(element) -> its options
        self.targets: list[tuple[object, MessageValue]] = []

    # --- interpretation ----------------------------------------------------

    def interpret(self, pf: ParsedFile) -> None:
        scopes = _scopes(pf)
        for site in pf.option_sites:
            root = MessageValue("google.protobuf." + site.kind)
            for opt in site.options:
                try:
                    self._one(pf, root, opt, scopes.get(id(site.target), ""))
                except OptionError as exc:
                    self.pool.issues.append(_issue(pf, exc))
            self.values[id(site.target)] = root
            self.targets.append((site.target, root))

    def option(self, element: object, number: int) -> Optional[Value]:
        """The last value of top-level option field ``number`` interpreted
        for ``element`` (None when not set)."""
        root = self.values.get(id(element))
        entry = root.fields.get(number) if root is not None else None
        return entry[1][-1] if entry and entry[1] else None

    def _field_by_name(self, type_name: str, name: str) -> Optional[d.FieldDescriptorProto]:
        msg = self.pool.message(type_name)
        if msg is None:
            return None
        for fld in msg.field:
            if fld.name == name:
                return fld
        return None

    def _one(self, pf: ParsedFile, root: MessageValue, opt: Option, scope: str) -> None:
        current = root
        label = ""
        for i, (part, is_ext) in enumerate(opt.name):
            written = ".".join(f"({p})" if ext else p for p, ext in opt.name[:i + 1])
            fld: Optional[d.FieldDescriptorProto]
            if is_ext:
                sym, _ = self.pool.lookup(pf, part, scope, types_only=False)
                if sym is None:
                    raise OptionError(opt.pos, f'Option "({part})" unknown. Ensure that your '
                                      "proto definition file imports the proto which defines "
                                      "the option (i.e. via import option after edition 2024).")
                if sym.kind != "extension":
                    raise OptionError(opt.pos, f'Option "({part})" is not a field or '
                                      f'extension of message "{current.type_name}".')
                fld = sym.obj                                   # type: ignore[assignment]
                assert isinstance(fld, d.FieldDescriptorProto)
                if fld.extendee != "." + current.type_name:
                    raise OptionError(opt.pos, f'Option "({part})" is an extension of '
                                      f'"{(fld.extendee or ".")[1:]}", not of '
                                      f'"{current.type_name}".')
                label = (label + "." if label else "") + sym.full
            else:
                fld = self._field_by_name(current.type_name, part)
                if fld is None:
                    if i == 0:
                        raise OptionError(opt.pos, f'Option "{part}" unknown. Ensure that '
                                          "your proto definition file imports the proto which "
                                          "defines the option (i.e. via import option after "
                                          "edition 2024).")
                    raise OptionError(opt.pos, f'Option field "{written}" is not a field or '
                                      f'extension of message "{current.type_name}".')
                label = f"{current.type_name}.{part}" if i == 0 else f"{label}.{part}"
            last = i == len(opt.name) - 1
            if not last:
                if fld.type not in (T.TYPE_MESSAGE, T.TYPE_GROUP):
                    raise OptionError(opt.pos, f'Option "{written}" is an atomic type, not a '
                                      "message.")
                if fld.label == L.LABEL_REPEATED:
                    raise OptionError(opt.pos, f'Option field "{written}" is a repeated '
                                      "message. Repeated message options must be initialized "
                                      "using an aggregate value.")
                current = current.child(fld)
                continue
            values = current.values(fld)
            if fld.label != L.LABEL_REPEATED and values:
                raise OptionError(opt.pos, f'Option "{opt.name_text()}" was already set.')
            values.append(self._value(pf, fld, opt.value, label))

    def _value(self, pf: ParsedFile, fld: d.FieldDescriptorProto, value: OptionValue,
               label: str) -> Value:
        kind, raw = value.kind, value.value
        t = fld.type
        if kind == "aggregate_error":
            raise OptionError(value.pos, f'Error while parsing option value for "{fld.name}": '
                              f"{raw}")
        if t in (T.TYPE_MESSAGE, T.TYPE_GROUP):
            if kind != "aggregate":
                raise OptionError(value.pos, f'Option "{label}" is a message. To set the entire '
                                  f'message, use syntax like "{label.rsplit(".", 1)[-1]} = '
                                  '{ <proto text format> }". To set fields within it, use syntax '
                                  f'like "{label.rsplit(".", 1)[-1]}.foo = value".')
            assert isinstance(raw, list)
            try:
                return self._aggregate(pf, (fld.type_name or ".")[1:], raw)
            except _TextError as exc:
                raise OptionError(value.pos, f'Error while parsing option value for '
                                  f'"{fld.name}": {exc}') from None
        if t in _INT_RANGES:
            low, high, name = _INT_RANGES[t]
            if kind not in ("pos_int", "neg_int") or (kind == "neg_int" and low == 0):
                raise OptionError(value.pos, f"Value must be integer, from {low} to {high}, for "
                                  f'{name} option "{label}".')
            assert isinstance(raw, int)
            if not low <= raw <= high:
                raise OptionError(value.pos, f"Value out of range, {low} to {high}, for {name} "
                                  f'option "{label}".')
            return raw
        if t in (T.TYPE_FLOAT, T.TYPE_DOUBLE):
            name = "float" if t == T.TYPE_FLOAT else "double"
            if kind in ("pos_int", "neg_int", "double"):
                return float(raw)                                    # type: ignore[arg-type]
            if kind == "ident" and raw in ("inf", "nan"):
                return float(raw)                                    # type: ignore[arg-type]
            raise OptionError(value.pos, f'Value must be number for {name} option "{label}".')
        if t == T.TYPE_BOOL:
            if kind != "ident":
                raise OptionError(value.pos, f'Value must be identifier for boolean option '
                                  f'"{label}".')
            if raw not in ("true", "false"):
                raise OptionError(value.pos, f'Value must be "true" or "false" for boolean '
                                  f'option "{label}".')
            return raw == "true"
        if t == T.TYPE_ENUM:
            enum_name = (fld.type_name or ".")[1:]
            if kind != "ident":
                raise OptionError(value.pos, f'Value must be identifier for enum-valued option '
                                  f'"{label}".')
            number = self._enum_number(enum_name, str(raw))
            if number is None:
                raise OptionError(value.pos, f'Enum type "{enum_name}" has no value named '
                                  f'"{raw}" for option "{label}".')
            return number
        if kind != "string":
            raise OptionError(value.pos, f'Value must be quoted string for string option '
                              f'"{label}".')
        assert isinstance(raw, bytes)
        return raw

    def _enum_number(self, enum_name: str, name: str) -> Optional[int]:
        enum = self.pool.enum(enum_name)
        if enum is None:
            return None
        for v in enum.value:
            if v.name == name:
                return v.number
        return None

    def _aggregate(self, pf: ParsedFile, type_name: str, entries: list[TextField]
                   ) -> MessageValue:
        out = MessageValue(type_name)
        for entry in entries:
            fld: Optional[d.FieldDescriptorProto]
            if entry.is_extension:
                sym = self.pool.symbols.get(entry.name.lstrip("."))
                fld = sym.obj if sym is not None and sym.kind == "extension" else None  # type: ignore[assignment]
                if fld is not None and fld.extendee != "." + type_name:
                    fld = None
            else:
                fld = self._field_by_name(type_name, entry.name)
                if fld is None:          # a group is named by its type in text format
                    msg = self.pool.message(type_name)
                    fld = next((f for f in (msg.field if msg else []) if f.type == T.TYPE_GROUP
                                and (f.type_name or "").endswith("." + entry.name)), None)
            if fld is None:
                raise _TextError(f'Message type "{type_name}" has no field named '
                                 f'"{entry.name}".')
            items = entry.value if isinstance(entry.value, list) else [entry.value]
            values = out.values(fld)
            if fld.label != L.LABEL_REPEATED and (values or len(items) > 1):
                raise _TextError(f'Non-repeated field "{entry.name}" is specified multiple '
                                 "times.")
            for item in items:
                values.append(self._text_value(pf, fld, item))
        return out

    def _text_value(self, pf: ParsedFile, fld: d.FieldDescriptorProto, item: OptionValue
                    ) -> Value:
        """Text format is laxer than option statements: enums by number,
        bools as 0/1/t/f/True/False."""
        if fld.type == T.TYPE_ENUM and item.kind in ("pos_int", "neg_int"):
            assert isinstance(item.value, int)
            return item.value
        if fld.type == T.TYPE_BOOL:
            if item.kind == "pos_int" and item.value in (0, 1):
                return bool(item.value)
            if item.kind == "ident" and item.value in ("True", "t", "False", "f"):
                return item.value in ("True", "t")
        return self._value(pf, fld, item, fld.name or "")

    # --- serialization -----------------------------------------------------

    def serialize_all(self) -> None:
        """Write every interpreted element's ``options`` bytes."""
        for target, root in self.targets:
            # options stripped down to nothing are left out, as protoc does,
            # unless the parser made them (an rpc with a { } body)
            encoded = self.encode(root)
            if encoded or target.options != b"":           # type: ignore[attr-defined]
                target.options = encoded or None           # type: ignore[attr-defined]

    def _source_only(self, fld: d.FieldDescriptorProto) -> bool:
        opts = self.values.get(id(fld))
        if opts is None:
            return False
        entry = opts.fields.get(_RETENTION_FIELD)
        return bool(entry and entry[1][-1] == _RETENTION_SOURCE)

    def encode(self, value: MessageValue) -> bytes:
        out = bytearray()
        proto3 = self.pool.syntax_of(value.type_name) == "proto3"
        for number in sorted(value.fields):
            fld, items = value.fields[number]
            if self._source_only(fld):
                continue
            if proto3 and _implicit_presence(fld) and all(_is_zero(v) for v in items):
                continue
            if fld.label == L.LABEL_REPEATED and self._packed(fld) and items:
                body = b"".join(_scalar(fld, v) for v in items)
                out += _tag(number, 2) + uvarint(len(body)) + body
                continue
            for item in items:
                if isinstance(item, MessageValue):
                    body = self.encode(item)
                    if fld.type == T.TYPE_GROUP:
                        out += _tag(number, 3) + body + _tag(number, 4)
                    else:
                        out += _tag(number, 2) + uvarint(len(body)) + body
                else:
                    out += _tag(number, _WIRE.get(fld.type, 0)) + _scalar(fld, item)  # type: ignore[arg-type]
        return bytes(out)

    def _packed(self, fld: d.FieldDescriptorProto) -> bool:
        if fld.type in (T.TYPE_STRING, T.TYPE_BYTES, T.TYPE_MESSAGE, T.TYPE_GROUP):
            return False
        opts = self.values.get(id(fld))
        explicit = opts.fields.get(2) if opts is not None else None
        if explicit:
            return bool(explicit[1][-1])
        sym_file = next((s.file for s in self.pool.symbols.values() if s.obj is fld), None)
        return sym_file is not None and sym_file.proto.syntax == "proto3"


def _implicit_presence(fld: d.FieldDescriptorProto) -> bool:
    return (fld.label != L.LABEL_REPEATED and not fld.proto3_optional
            and fld.oneof_index is None and fld.extendee is None
            and fld.type not in (T.TYPE_MESSAGE, T.TYPE_GROUP))


def _is_zero(value: Value) -> bool:
    return not isinstance(value, MessageValue) and not value and not (
        isinstance(value, float) and math.copysign(1.0, value) < 0)


_WIRE = {
    T.TYPE_DOUBLE: 1, T.TYPE_FIXED64: 1, T.TYPE_SFIXED64: 1,
    T.TYPE_FLOAT: 5, T.TYPE_FIXED32: 5, T.TYPE_SFIXED32: 5,
    T.TYPE_STRING: 2, T.TYPE_BYTES: 2,
}


def _tag(number: int, wire: int) -> bytes:
    return uvarint(number << 3 | wire)




def _scalar(fld: d.FieldDescriptorProto, value: Value) -> bytes:
    t = fld.type
    if t in (T.TYPE_STRING, T.TYPE_BYTES):
        assert isinstance(value, bytes)
        return uvarint(len(value)) + value
    if t == T.TYPE_DOUBLE:
        return struct.pack("<d", value)
    if t == T.TYPE_FLOAT:
        return struct.pack("<f", to_float32(float(value)))          # type: ignore[arg-type]
    assert isinstance(value, int)
    if t in (T.TYPE_FIXED64, T.TYPE_SFIXED64):
        return struct.pack("<Q", value & (1 << 64) - 1)
    if t in (T.TYPE_FIXED32, T.TYPE_SFIXED32):
        return struct.pack("<I", value & (1 << 32) - 1)
    if t == T.TYPE_SINT32 or t == T.TYPE_SINT64:
        return uvarint((value << 1) ^ (value >> 63))
    return uvarint(value)


def _scopes(pf: ParsedFile) -> dict[int, str]:
    """id(element) -> the scope its option names are looked up from (protoc:
    the element's full name; a file's package plus a dummy last part)."""
    fd = pf.proto
    package = fd.package or ""
    scopes: dict[int, str] = {id(fd): f"{package}.dummy" if package else "dummy"}

    def fields(prefix: str, flds: list[d.FieldDescriptorProto]) -> None:
        for fld in flds:
            scopes[id(fld)] = f"{prefix}.{fld.name}" if prefix else fld.name or ""

    def enums(prefix: str, items: list[d.EnumDescriptorProto]) -> None:
        for enum in items:
            full = f"{prefix}.{enum.name}" if prefix else enum.name or ""
            scopes[id(enum)] = full
            for value in enum.value:
                scopes[id(value)] = f"{prefix}.{value.name}" if prefix else value.name or ""

    fields(package, fd.extension)
    enums(package, fd.enum_type)
    for full, msg in walk_messages(package, fd.message_type):
        scopes[id(msg)] = full
        fields(full, msg.field)
        fields(full, msg.extension)
        enums(full, msg.enum_type)
        for oneof in msg.oneof_decl:
            scopes[id(oneof)] = f"{full}.{oneof.name}"
        for rng in msg.extension_range:
            scopes[id(rng)] = full
    for svc in fd.service:
        full = f"{package}.{svc.name}" if package else svc.name or ""
        scopes[id(svc)] = full
        for method in svc.method:
            scopes[id(method)] = f"{full}.{method.name}"
    return scopes


def _issue(pf: ParsedFile, exc: OptionError) -> Issue:
    return Issue(pf.disk, exc.pos, exc.message)
