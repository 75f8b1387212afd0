"""Message classes built from descriptors, google.protobuf's API where it has one.

    ns = build(files)                      # FileDescriptorProto objects
    msg = ns.pkg.Anchor(id=1, name="x")    # keyword construction
    data = msg.SerializeToString()         # fields in number order, maps sorted
    back = ns.pkg.Anchor.FromString(data)  # also ParseFromString, MergeFromString

A class keeps each field in a slot. Scalars without presence (proto3) read
as their value, the default when unset; fields with presence (proto3
``optional``, proto2 fields, oneof members, submessages) read as their
default while unset and answer ``HasField``. Repeated fields are lists, maps
dicts, enums are ``IntEnum`` classes (enum fields hold plain ints, as in
google.protobuf). Reading an unset submessage returns a new default message
that is not attached to its parent: assign a message to set one.

Serializing hands the wire codec (fastnet.proto.wire) the message's flat form
(see wire._table) and decoding builds objects from the flat form it returns,
one generated function per class each way.
"""
from __future__ import annotations

import enum
import keyword
from types import ModuleType, SimpleNamespace
from typing import Any, ClassVar, Optional, TypeVar

from .descriptor import FieldType as T
from .descriptor import FileDescriptorProto
from . import wire
from .wire._table import F_MAP, F_PRESENCE, F_REPEATED, FieldEntry, MessageEntry, Schema

M = TypeVar("M", bound="Message")


class Message:
    """Base class of every generated message class."""

    __slots__ = ("_unknown",)
    _entry: ClassVar[MessageEntry]
    _index: ClassVar[int]
    _codec: ClassVar[Any]
    _names: ClassVar[dict[str, FieldEntry]]
    _sub_classes: ClassVar[dict[str, type["Message"]]]
    _schema: ClassVar[Schema]
    _namespace: ClassVar[dict[str, Any]]
    _unknown: Optional[bytes]

    def __init__(self, **fields: Any) -> None:
        """Keyword construction: field name=value (each class generates its own)."""
        raise NotImplementedError

    def _flat(self) -> tuple[Any, ...]:
        raise NotImplementedError

    @classmethod
    def _from_flat(cls: type[M], flat: list[Any]) -> M:
        raise NotImplementedError

    # -- google.protobuf's names -------------------------------------------

    def SerializeToString(self, deterministic: bool = True) -> bytes:
        """The wire bytes. Always deterministic: fields in number order, map
        entries sorted by key, unknown fields last (google.protobuf's
        ``deterministic=True`` output)."""
        return self._codec.encode(self._index, self._flat())

    @classmethod
    def FromString(cls: type[M], data: bytes) -> M:
        """Parse wire bytes into a new message (ProtoDecodeError on bad input)."""
        return cls._from_flat(cls._codec.decode(cls._index, data))

    def ParseFromString(self, data: bytes) -> int:
        """Replace this message's contents with ``data`` parsed; return its length."""
        self._assign(type(self).FromString(data))
        return len(data)

    def MergeFromString(self, data: bytes) -> int:
        """Merge parsed ``data`` into this message, as protobuf does (scalars
        overwritten, repeated fields appended, submessages merged)."""
        self._assign(type(self).FromString(self.SerializeToString() + bytes(data)))
        return len(data)

    def MergeFrom(self: M, other: M) -> None:
        """Merge another message of the same type into this one."""
        self._check_same(other)
        self.MergeFromString(other.SerializeToString())

    def CopyFrom(self: M, other: M) -> None:
        """Make this message a deep copy of ``other``."""
        self._check_same(other)
        self._assign(type(self).FromString(other.SerializeToString()))

    def Clear(self) -> None:
        """Reset every field to its default and drop unknown fields."""
        self._assign(type(self)())

    def ByteSize(self) -> int:
        """The length of the serialized message."""
        return len(self.SerializeToString())

    def HasField(self, name: str) -> bool:
        """Whether a field with presence (or a oneof) is set."""
        if name in self._entry.oneofs:
            return self.WhichOneof(name) is not None
        f = self._names.get(name)
        if f is None or not _has_presence(f):
            raise ValueError(f'{self._entry.full_name} has no field "{name}" with presence')
        return getattr(self, "_p_" + name) is not None

    def WhichOneof(self, oneof: str) -> Optional[str]:
        """The name of the oneof's member that is set, or None."""
        if oneof not in self._entry.oneofs:
            raise ValueError(f'{self._entry.full_name} has no oneof "{oneof}"')
        for f in self._entry.fields:
            if f.oneof == oneof and getattr(self, "_p_" + f.name) is not None:
                return f.name
        return None

    def ClearField(self, name: str) -> None:
        """Reset a field (or every member of a oneof) to its unset state."""
        if name in self._entry.oneofs:
            for member in self._entry.fields:
                if member.oneof == name:
                    setattr(self, "_p_" + member.name, None)
            return
        f = self._names.get(name)
        if f is None:
            raise ValueError(f'{self._entry.full_name} has no field "{name}"')
        _reset(self, f)

    def ListFields(self) -> list[tuple[str, Any]]:
        """(name, value) of every field that would be serialized, by number."""
        out = []
        for f in self._entry.fields:
            value = getattr(self, f.name)
            if _has_presence(f):
                if getattr(self, "_p_" + f.name) is not None:
                    out.append((f.name, value))
            elif f.flags & F_REPEATED:
                if value:
                    out.append((f.name, value))
            elif not _is_default(f, value):
                out.append((f.name, value))
        return out

    # -- Python protocol ---------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._flat() == other._flat()  # type: ignore[attr-defined]

    # mutable, so unhashable (as google.protobuf's messages)
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = [f"{name}={value!r}" for name, value in self.ListFields()]
        if self._unknown:
            parts.append(f"<unknown {len(self._unknown)} bytes>")
        return f"{type(self).__name__}({', '.join(parts)})"

    # -- dicts -------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The message as plain Python values, field names as keys: every
        field without presence, and those with presence that are set
        (submessages as dicts, repeated as lists, maps as dicts)."""
        out: dict[str, Any] = {}
        for f in self._entry.fields:
            if _has_presence(f) and getattr(self, "_p_" + f.name) is None:
                continue
            out[f.name] = _plain(f, getattr(self, f.name))
        return out

    @classmethod
    def from_dict(cls: type[M], data: dict[str, Any]) -> M:
        """The message with the fields of ``data`` (as to_dict() returns them)."""
        return cls(**data)

    # -- the proto3 JSON mapping (fastnet.proto.json_format) ----------------

    def to_json(self, indent: Optional[int] = 2, preserve_names: bool = False) -> str:
        """The message as proto3 JSON text (see fastnet.proto.json_format)."""
        from . import json_format

        return json_format.to_json(self, indent, preserve_names)

    @classmethod
    def from_json(cls: type[M], text: str | bytes, ignore_unknown_fields: bool = False) -> M:
        """A message from proto3 JSON text (ProtoJsonError when it does not map)."""
        from . import json_format

        return json_format.from_json(cls, text, ignore_unknown_fields)

    # -- internals ---------------------------------------------------------

    def _set(self, kw: dict[str, Any]) -> None:
        """Keyword construction: each value as an assignment would take it."""
        names = self._names
        classes = self._sub_classes
        for name, value in kw.items():
            f = names.get(name)
            if f is None:
                raise ValueError(f'{self._entry.full_name} has no field "{name}"')
            if value is None:
                continue
            if f.flags & F_MAP:
                vcls = classes.get(name)
                value = {k: _coerce_message(vcls, v, name) if vcls else v for k, v in value.items()}
            elif f.flags & F_REPEATED:
                if isinstance(value, (str, bytes, dict)):
                    raise TypeError(f"field {name}: expected a sequence, got {type(value).__name__}")
                scls = classes.get(name)
                value = [_coerce_message(scls, v, name) for v in value] if scls else list(value)
            setattr(self, name, value)

    def _assign(self, other: "Message") -> None:
        for name in _all_slots(type(self)):
            setattr(self, name, getattr(other, name))

    def _check_same(self, other: object) -> None:
        if type(other) is not type(self):
            raise TypeError(f"expected {type(self).__name__}, got {type(other).__name__}")


def _all_slots(cls: type) -> list[str]:
    return [s for k in cls.__mro__ for s in getattr(k, "__slots__", ())]


def _has_presence(f: FieldEntry) -> bool:
    return bool(f.flags & F_PRESENCE) or (f.sub >= 0 and not f.flags & F_REPEATED)


def _is_default(f: FieldEntry, value: Any) -> bool:
    if f.type in (T.TYPE_DOUBLE, T.TYPE_FLOAT):
        return value == 0 and str(value) != "-0.0"
    return bool(value == f.default)


def _plain(f: FieldEntry, value: Any) -> Any:
    if f.flags & F_MAP:
        return {k: v.to_dict() if isinstance(v, Message) else v for k, v in value.items()}
    if f.flags & F_REPEATED:
        return [v.to_dict() if isinstance(v, Message) else v for v in value]
    return value.to_dict() if isinstance(value, Message) else value


def _reset(msg: Message, f: FieldEntry) -> None:
    if _has_presence(f):
        setattr(msg, "_p_" + f.name, None)
    elif f.flags & F_MAP:
        setattr(msg, f.name, {})
    elif f.flags & F_REPEATED:
        setattr(msg, f.name, [])
    else:
        setattr(msg, f.name, f.default)


# -- class generation ------------------------------------------------------

def _presence_property(f: FieldEntry, cls_ref: dict[str, Any], siblings: list[str]) -> property:
    slot = "_p_" + f.name
    default = f.default

    if f.sub >= 0:
        def get(self: Message) -> Any:
            value = getattr(self, slot)
            return cls_ref[f.name]() if value is None else value
    else:
        def get(self: Message) -> Any:
            value = getattr(self, slot)
            return default if value is None else value

    def set_(self: Message, value: Any) -> None:
        if value is not None:
            if f.sub >= 0:
                value = _coerce_message(cls_ref[f.name], value, f.name)
            for other in siblings:
                setattr(self, other, None)
        setattr(self, slot, value)

    return property(get, set_, doc=f"field {f.number} ({f.type.name[5:].lower()})")


def _coerce_message(cls: type[Message], value: Any, name: str) -> Message:
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        return cls(**value)
    raise TypeError(f"field {name}: expected {cls.__name__} or dict, got {type(value).__name__}")


def _slot(f: FieldEntry) -> str:
    return "_p_" + f.name if _has_presence(f) else f.name


def _generate(cls: type[Message], classes: list[type[Message]], schema: Schema) -> None:
    """Write __init__, _flat and _from_flat for one class."""
    entry = cls._entry
    env: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_coerce": _coerce_message,
                           "_ValueError": ValueError}
    init = ["def __init__(self, **kw):"]
    flat_items = []
    targets = []
    fix = []
    for i, f in enumerate(entry.fields):
        slot = _slot(f)
        sub = f"_S{i}"
        if f.flags & F_MAP:
            init.append(f"    self.{slot} = {{}}")
            vf = schema.messages[f.sub].fields[1]
            if vf.sub >= 0:
                env[sub] = classes[vf.sub]
                flat_items.append(f"{{k: v._flat() for k, v in self.{slot}.items()}}")
                fix.append(f"    o.{slot} = {{k: {sub}._from_flat(v) for k, v in o.{slot}.items()}}")
            else:
                flat_items.append(f"self.{slot}")
        elif f.flags & F_REPEATED:
            init.append(f"    self.{slot} = []")
            if f.sub >= 0:
                env[sub] = classes[f.sub]
                flat_items.append(f"[m._flat() for m in self.{slot}]")
                fix.append(f"    o.{slot} = [{sub}._from_flat(v) for v in o.{slot}]")
            else:
                flat_items.append(f"self.{slot}")
        elif f.sub >= 0:
            init.append(f"    self.{slot} = None")
            env[sub] = classes[f.sub]
            flat_items.append(f"(None if (x{i} := self.{slot}) is None else x{i}._flat())")
            fix.append(f"    if (x := o.{slot}) is not None: o.{slot} = {sub}._from_flat(x)")
        elif _has_presence(f):
            init.append(f"    self.{slot} = None")
            flat_items.append(f"self.{slot}")
        else:
            env[f"_D{i}"] = f.default
            init.append(f"    self.{slot} = _D{i}")
            flat_items.append(f"self.{slot}")
        targets.append(f"o.{slot}")
    init.append("    self._unknown = None")
    init.append("    if kw: self._set(kw)")
    flat_items.append("self._unknown")
    targets.append("o._unknown")
    code = "\n".join(init) + "\n"
    code += "def _flat(self):\n    return (" + ", ".join(flat_items) + ",)\n"
    code += "def _from_flat(v):\n    o = _new(_cls)\n    " + ", ".join(targets) + ", = v\n"
    code += "\n".join(fix) + ("\n" if fix else "") + "    return o\n"
    exec(compile(code, f"<fastnet.proto {entry.full_name}>", "exec"), env)
    setattr(cls, "__init__", env["__init__"])
    setattr(cls, "_flat", env["_flat"])
    setattr(cls, "_from_flat", staticmethod(env["_from_flat"]))


class Namespace(SimpleNamespace):
    """What build() returns: packages as attributes (``ns.pkg.sub.Msg``),
    and every message and enum by full name (``ns["pkg.sub.Msg"]``)."""

    def __getitem__(self, full_name: str) -> Any:
        return self.__dict__["_by_name"][full_name]


def build(files: list[FileDescriptorProto], impl: ModuleType | str | None = None) -> Namespace:
    """Message classes and enums for every type in ``files`` (descriptors as
    protoc writes them, dependencies included). ``impl`` picks the wire twin
    (a module from fastnet.proto.wire.impls or its name; default the active one)."""
    schema = wire.compile_schema(files)
    codec = wire.codec(schema, impl)
    by_name: dict[str, Any] = {}
    for name, values in schema.enums.items():
        by_name[name] = enum.IntEnum(name.rsplit(".", 1)[-1], values)  # type: ignore[misc]
        by_name[name].__module__ = "fastnet.proto.generated"
    classes: list[type[Message]] = []
    for index, entry in enumerate(schema.messages):
        classes.append(_make_class(entry, index, codec, schema, by_name))
        by_name[entry.full_name] = classes[-1]
    for cls in classes:
        cls._sub_classes = {}
        for f in cls._entry.fields:
            if f.sub < 0:
                continue
            sub = schema.messages[f.sub]
            if f.flags & F_MAP:
                if sub.fields[1].sub >= 0:
                    cls._sub_classes[f.name] = classes[sub.fields[1].sub]
            else:
                cls._sub_classes[f.name] = classes[f.sub]
        for f in cls._entry.fields:
            if _has_presence(f):
                siblings = ["_p_" + g.name for g in cls._entry.fields
                            if f.oneof and g.oneof == f.oneof and g is not f]
                setattr(cls, f.name, _presence_property(f, cls._sub_classes, siblings))
        _generate(cls, classes, schema)
    root = Namespace(_by_name=by_name)
    for full_name, obj in sorted(by_name.items()):
        parent_name, _, short = full_name.rpartition(".")
        parent = by_name.get(parent_name)
        if parent is not None:
            setattr(parent, short, obj)
            continue
        node = root
        if parent_name:
            for part in parent_name.split("."):
                if not hasattr(node, part):
                    setattr(node, part, SimpleNamespace())
                node = getattr(node, part)
        setattr(node, short, obj)
    return root


def _make_class(entry: MessageEntry, index: int, codec: Any, schema: Schema,
                by_name: dict[str, Any]) -> type[Message]:
    slots = tuple(_slot(f) for f in entry.fields)
    for f in entry.fields:
        if keyword.iskeyword(f.name):
            raise ValueError(f"{entry.full_name}.{f.name}: a Python keyword cannot be a field")
    ns = {"__slots__": slots, "_entry": entry, "_index": index, "_codec": codec,
          "_schema": schema, "_namespace": by_name,
          "_names": {f.name: f for f in entry.fields},
          "__module__": "fastnet.proto.generated",
          "__qualname__": entry.full_name.rsplit(".", 1)[-1]}
    return type(entry.full_name.rsplit(".", 1)[-1], (Message,), ns)
