"""The proto3 JSON mapping (https://protobuf.dev/programming-guides/json/).

    text = to_json(msg)                 # also Message.to_json()
    msg = from_json(Anchor, text)       # also Anchor.from_json(text)

Output follows google.protobuf.json_format.MessageToJson's defaults: fields
by their ``json_name`` (lowerCamelCase), those without presence left out
while they hold their default; 64-bit integers as strings; bytes as base64;
enums by name (a number without a name as the number); floats as the
shortest text that reads back to the same float32; NaN and infinities as
"NaN", "Infinity", "-Infinity"; map keys as strings. The well-known types
have their special forms: Timestamp (RFC 3339, "Z"), Duration ("1.5s"),
the wrappers (the bare value), Struct / Value / ListValue (plain JSON),
FieldMask ("a.bC,d"), Any ({"@type": ..., fields or "value"}), Empty ({}).

Input accepts the json_name or the field name, numbers or strings for
integers, and null for "unset"; anything else that breaks the mapping is a
:class:`fastnet.errors.ProtoJsonError` (a ValueError), since JSON often
comes from a peer.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
from datetime import datetime, timedelta, timezone
from typing import Any, Optional, TypeVar

from ..errors import ProtoJsonError
from .descriptor import FieldType as T
from .message import Message
from .wire._table import F_MAP, F_REPEATED, FLOAT_OVERFLOW, INT_RANGE, FieldEntry

M = TypeVar("M", bound=Message)

_INT64 = frozenset({T.TYPE_INT64, T.TYPE_UINT64, T.TYPE_FIXED64, T.TYPE_SFIXED64,
                    T.TYPE_SINT64})
_INT32 = frozenset({T.TYPE_INT32, T.TYPE_UINT32, T.TYPE_FIXED32, T.TYPE_SFIXED32,
                    T.TYPE_SINT32})
_WRAPPERS = {f"google.protobuf.{n}Value" for n in
             ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")}
#: Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
_TS_MIN, _TS_MAX = -62135596800, 253402300799
_DURATION_MAX = 315576000000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_json(msg: Message, indent: Optional[int] = 2, preserve_names: bool = False) -> str:
    """The message as proto3 JSON text (indent as json.dumps; field names
    as in the .proto when preserve_names)."""
    return json.dumps(to_json_value(msg, preserve_names), indent=indent, ensure_ascii=False)


def to_json_value(msg: Message, preserve_names: bool = False) -> Any:
    """The message as the JSON value (dicts, lists, str, numbers) to_json writes."""
    return _Printer(preserve_names).message(msg)


def from_json(cls: type[M], text: str | bytes, ignore_unknown_fields: bool = False) -> M:
    """A message of class ``cls`` from proto3 JSON text."""
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtoJsonError(f"not JSON: {exc}") from None
    return from_json_value(cls, value, ignore_unknown_fields)


def from_json_value(cls: type[M], value: Any, ignore_unknown_fields: bool = False) -> M:
    """A message of class ``cls`` from a parsed JSON value."""
    return _Parser(ignore_unknown_fields).message(cls, value, cls._entry.full_name)


def _shortest_float(value: float) -> float:
    """The float with the shortest text that still reads back as the same
    float32 (what google.protobuf prints for float fields)."""
    if not math.isfinite(value):
        return value
    for precision in range(6, 18):
        rounded = float(f"{value:.{precision}g}")
        if struct.unpack("<f", struct.pack("<f", rounded))[0] == value:
            return rounded
    return value


def _nonfinite(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _camel_path(path: str) -> str:
    out = []
    for segment in path.split("."):
        parts = segment.split("_")
        out.append(parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:]))
    return ".".join(out)


def _snake_path(path: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), path)


def _fraction(nanos: int) -> str:
    """".nnn", ".nnnnnn" or ".nnnnnnnnn" (nothing for 0), as google prints."""
    if nanos == 0:
        return ""
    if nanos % 1_000_000 == 0:
        return f".{nanos // 1_000_000:03d}"
    if nanos % 1000 == 0:
        return f".{nanos // 1000:06d}"
    return f".{nanos:09d}"


class _Printer:
    def __init__(self, preserve_names: bool) -> None:
        self.preserve_names = preserve_names

    def message(self, msg: Message) -> Any:
        name = msg._entry.full_name
        special = _SPECIAL_OUT.get(name)
        if special is not None:
            return special(self, msg)
        if name in _WRAPPERS:
            return self.value(msg._entry.fields[0], getattr(msg, "value"))
        out: dict[str, Any] = {}
        for f in msg._entry.fields:
            value = getattr(msg, f.name)
            if f.flags & F_REPEATED:
                if not value:
                    continue
            elif f.sub >= 0 or f.flags & 4:  # presence
                if getattr(msg, "_p_" + f.name) is None:
                    continue
            elif _is_default(f, value):
                continue
            out[f.name if self.preserve_names else f.json_name] = self.field(msg, f, value)
        return out

    def field(self, msg: Message, f: FieldEntry, value: Any) -> Any:
        if f.flags & F_MAP:
            entry = msg._schema.messages[f.sub]
            kf, vf = entry.fields
            return {self.key(kf, k): self.value(vf, v, msg, f) for k, v in value.items()}
        if f.flags & F_REPEATED:
            return [self.value(f, v, msg, f) for v in value]
        return self.value(f, value, msg, f)

    def key(self, f: FieldEntry, key: Any) -> str:
        if f.type == T.TYPE_BOOL:
            return "true" if key else "false"
        return str(key)

    def value(self, f: FieldEntry, value: Any, owner: Optional[Message] = None,
              field: Optional[FieldEntry] = None) -> Any:
        t = f.type
        if t in (T.TYPE_MESSAGE, T.TYPE_GROUP):
            return self.message(value)
        if t in _INT64:
            return str(value)
        if t == T.TYPE_ENUM:
            if f.enum == "google.protobuf.NullValue":
                return None
            names = _enum_names(owner, f)
            return names.get(value, value)
        if t == T.TYPE_FLOAT:
            return _nonfinite(_shortest_float(value))
        if t == T.TYPE_DOUBLE:
            return _nonfinite(value)
        if t == T.TYPE_BYTES:
            return base64.b64encode(value).decode("ascii")
        return value

    # -- well-known types ---------------------------------------------------

    def timestamp(self, msg: Any) -> str:
        seconds, nanos = msg.seconds, msg.nanos
        if not _TS_MIN <= seconds <= _TS_MAX or not 0 <= nanos < 10**9:
            raise ValueError(f"Timestamp out of range: {seconds}s {nanos}ns")
        w = _EPOCH + timedelta(seconds=seconds)
        return (f"{w.year:04d}-{w.month:02d}-{w.day:02d}T{w.hour:02d}:{w.minute:02d}:"
                f"{w.second:02d}" + _fraction(nanos) + "Z")

    def duration(self, msg: Any) -> str:
        seconds, nanos = msg.seconds, msg.nanos
        if (abs(seconds) > _DURATION_MAX or abs(nanos) >= 10**9
                or (seconds and nanos and (seconds < 0) != (nanos < 0))):
            raise ValueError(f"Duration out of range: {seconds}s {nanos}ns")
        sign = "-" if seconds < 0 or nanos < 0 else ""
        return f"{sign}{abs(seconds)}{_fraction(abs(nanos))}s"

    def field_mask(self, msg: Any) -> str:
        return ",".join(_camel_path(p) for p in msg.paths)

    def struct(self, msg: Any) -> Any:
        return {k: self.struct_value(v) for k, v in msg.fields.items()}

    def list_value(self, msg: Any) -> Any:
        return [self.struct_value(v) for v in msg.values]

    def struct_value(self, msg: Any) -> Any:
        kind = msg.WhichOneof("kind")
        if kind is None:
            raise ValueError("google.protobuf.Value with no kind set")
        if kind == "null_value":
            return None
        if kind == "number_value":
            if not math.isfinite(msg.number_value):
                raise ValueError("google.protobuf.Value cannot hold NaN or infinity in JSON")
            return msg.number_value
        if kind == "struct_value":
            return self.struct(msg.struct_value)
        if kind == "list_value":
            return self.list_value(msg.list_value)
        return getattr(msg, kind)

    def any(self, msg: Any) -> Any:
        if not msg.type_url:
            return {}
        cls = _resolve_any(msg, msg.type_url)
        inner = cls.FromString(msg.value)
        out = {"@type": msg.type_url}
        body = self.message(inner)
        if cls._entry.full_name in _SPECIAL_OUT or cls._entry.full_name in _WRAPPERS:
            out["value"] = body
        else:
            out.update(body)
        return out


_SPECIAL_OUT = {
    "google.protobuf.Timestamp": _Printer.timestamp,
    "google.protobuf.Duration": _Printer.duration,
    "google.protobuf.FieldMask": _Printer.field_mask,
    "google.protobuf.Struct": _Printer.struct,
    "google.protobuf.ListValue": _Printer.list_value,
    "google.protobuf.Value": _Printer.struct_value,
    "google.protobuf.Any": _Printer.any,
    "google.protobuf.Empty": lambda self, msg: {},
}


def _is_default(f: FieldEntry, value: Any) -> bool:
    if f.type in (T.TYPE_DOUBLE, T.TYPE_FLOAT):
        return value == 0 and math.copysign(1.0, value) > 0
    return bool(value == f.default)


def _enum_names(owner: Optional[Message], f: FieldEntry) -> dict[int, str]:
    if owner is None or f.enum is None:
        return {}
    enum = owner._namespace.get(f.enum)
    if enum is None:
        return {}
    names: dict[int, str] = {}
    for member in enum.__members__.values():
        names.setdefault(int(member), member.name)
    return names


def _resolve_any(msg: Message, type_url: str) -> type[Message]:
    name = type_url.rpartition("/")[2]
    cls = msg._namespace.get(name)
    if not isinstance(cls, type) or not issubclass(cls, Message):
        raise ProtoJsonError(f"Any: type {type_url!r} is not in this namespace")
    return cls


class _Parser:
    def __init__(self, ignore_unknown: bool) -> None:
        self.ignore_unknown = ignore_unknown

    def fail(self, where: str, why: str) -> ProtoJsonError:
        return ProtoJsonError(f"{where}: {why}")

    def message(self, cls: type[M], value: Any, where: str) -> M:
        name = cls._entry.full_name
        special = _SPECIAL_IN.get(name)
        if special is not None:
            return special(self, cls, value, where)  # type: ignore[no-any-return]
        if name in _WRAPPERS:
            return cls(value=self.scalar(cls, cls._entry.fields[0], value, where))
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object, got {type(value).__name__}")
        by_name: dict[str, FieldEntry] = {}
        for field in cls._entry.fields:
            by_name[field.json_name] = field
            by_name[field.name] = field
        msg = cls()
        seen: dict[str, str] = {}
        for key, item in value.items():
            found = by_name.get(key)
            if found is None:
                if self.ignore_unknown:
                    continue
                raise self.fail(where, f"no field {key!r}")
            f = found
            if f.oneof and item is not None:
                rival = next((seen[g.name] for g in cls._entry.fields
                              if g.oneof == f.oneof and g is not f and g.name in seen), None)
                if rival is not None:
                    raise self.fail(where, f"oneof {f.oneof} given twice ({rival!r}, {key!r})")
            if item is not None:
                seen[f.name] = key
            self.field(msg, f, item, f"{where}.{f.name}")
        return msg

    def field(self, msg: Message, f: FieldEntry, item: Any, where: str) -> None:
        if item is None and not (f.sub >= 0 and _sub_name(msg, f) == "google.protobuf.Value"
                                 and not f.flags & F_REPEATED):
            return  # null: unset
        if f.flags & F_MAP:
            if not isinstance(item, dict):
                raise self.fail(where, "expected an object for a map")
            entry = msg._schema.messages[f.sub]
            kf, vf = entry.fields
            vcls = msg._sub_classes.get(f.name)
            out = {}
            for k, v in item.items():
                key = self.key(kf, k, where)
                if vcls is not None:
                    out[key] = self.message(vcls, v, f"{where}[{k!r}]")
                else:
                    if v is None:
                        raise self.fail(where, "null map value")
                    out[key] = self.scalar(msg, vf, v, f"{where}[{k!r}]", entry=True)
            setattr(msg, f.name, out)
            return
        if f.flags & F_REPEATED:
            if not isinstance(item, list):
                raise self.fail(where, "expected an array")
            scls = msg._sub_classes.get(f.name)
            if scls is not None:
                setattr(msg, f.name, [self.message(scls, v, f"{where}[{i}]")
                                      for i, v in enumerate(item)])
            else:
                if any(v is None for v in item):
                    raise self.fail(where, "null in an array")
                setattr(msg, f.name, [self.scalar(msg, f, v, f"{where}[{i}]")
                                      for i, v in enumerate(item)])
            return
        if f.sub >= 0:
            setattr(msg, f.name, self.message(msg._sub_classes[f.name], item, where))
            return
        setattr(msg, f.name, self.scalar(msg, f, item, where))

    def key(self, f: FieldEntry, key: str, where: str) -> Any:
        if f.type == T.TYPE_STRING:
            return key
        if f.type == T.TYPE_BOOL:
            if key not in ("true", "false"):
                raise self.fail(where, f"map key {key!r} is not a bool")
            return key == "true"
        return self.integer(f, key, where)

    def integer(self, f: FieldEntry, value: Any, where: str) -> int:
        if isinstance(value, bool):
            raise self.fail(where, "expected an integer, got a bool")
        if isinstance(value, str):
            if value != value.strip() or not value:
                raise self.fail(where, f"not an integer: {value!r}")
            try:
                number: Any = int(value)
            except ValueError:
                try:
                    number = float(value)
                except ValueError:
                    raise self.fail(where, f"not an integer: {value!r}") from None
        else:
            number = value
        if isinstance(number, float):
            if not number.is_integer():
                raise self.fail(where, f"not an integer: {value!r}")
            number = int(number)
        if not isinstance(number, int):
            raise self.fail(where, f"expected an integer, got {type(value).__name__}")
        lo, hi = INT_RANGE[f.type]
        if not lo <= number <= hi:
            raise self.fail(where, f"{number} out of range for {f.type.name[5:].lower()}")
        return number

    def scalar(self, owner: Any, f: FieldEntry, value: Any, where: str, entry: bool = False) -> Any:
        t = f.type
        if t in _INT64 or t in _INT32:
            return self.integer(f, value, where)
        if t == T.TYPE_ENUM:
            if isinstance(value, str):
                enum = owner._namespace.get(f.enum)
                if enum is None or value not in enum.__members__:
                    raise self.fail(where, f"unknown enum name {value!r}")
                return int(enum.__members__[value])
            return self.integer(f, value, where)
        if t in (T.TYPE_DOUBLE, T.TYPE_FLOAT):
            if isinstance(value, str):
                special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
                if value in special:
                    return special[value]
                try:
                    number = float(value)
                except ValueError:
                    raise self.fail(where, f"not a number: {value!r}") from None
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                number = float(value)
            else:
                raise self.fail(where, f"expected a number, got {type(value).__name__}")
            if not math.isfinite(number):
                raise self.fail(where, "numbers out of range must be written as strings")
            # a float reads any number that rounds to a finite float32;
            # google.protobuf refuses anything over FLT_MAX, so it cannot
            # read back the 3.4028235e+38 it writes for FLT_MAX
            if t == T.TYPE_FLOAT and abs(number) >= FLOAT_OVERFLOW:
                raise self.fail(where, f"{number} out of range for float")
            return number
        if t == T.TYPE_BOOL:
            if not isinstance(value, bool):
                raise self.fail(where, f"expected true or false, got {value!r}")
            return value
        if t == T.TYPE_STRING:
            if not isinstance(value, str):
                raise self.fail(where, f"expected a string, got {type(value).__name__}")
            return value
        if t == T.TYPE_BYTES:
            if not isinstance(value, str):
                raise self.fail(where, f"expected base64 text, got {type(value).__name__}")
            text = value.replace("-", "+").replace("_", "/")
            try:
                return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
            except (binascii.Error, ValueError):
                raise self.fail(where, "invalid base64") from None
        raise self.fail(where, f"unsupported field type {t.name}")

    # -- well-known types -----------------------------------------------------

    def timestamp(self, cls: type[M], value: Any, where: str) -> M:
        if not isinstance(value, str):
            raise self.fail(where, "expected an RFC 3339 string")
        m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
                         r"(Z|[+-]\d{2}:\d{2})", value)
        if not m:
            raise self.fail(where, f"not an RFC 3339 timestamp: {value!r}")
        try:
            base = datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]),
                            tzinfo=timezone.utc)
        except ValueError as exc:
            raise self.fail(where, f"{value!r}: {exc}") from None
        seconds = int((base - _EPOCH).total_seconds())
        if m[8] != "Z":
            sign = 1 if m[8][0] == "+" else -1
            seconds -= sign * (int(m[8][1:3]) * 3600 + int(m[8][4:6]) * 60)
        nanos = int((m[7] or "").ljust(9, "0"))
        if not _TS_MIN <= seconds <= _TS_MAX:
            raise self.fail(where, f"timestamp out of range: {value!r}")
        return cls(seconds=seconds, nanos=nanos)

    def duration(self, cls: type[M], value: Any, where: str) -> M:
        if not isinstance(value, str):
            raise self.fail(where, "expected a string like \"1.5s\"")
        m = re.fullmatch(r"(-)?(\d+)(?:\.(\d{1,9}))?s", value)
        if not m:
            raise self.fail(where, f"not a duration: {value!r}")
        seconds, nanos = int(m[2]), int((m[3] or "").ljust(9, "0"))
        if seconds > _DURATION_MAX:
            raise self.fail(where, f"duration out of range: {value!r}")
        if m[1]:
            seconds, nanos = -seconds, -nanos
        return cls(seconds=seconds, nanos=nanos)

    def field_mask(self, cls: type[M], value: Any, where: str) -> M:
        if not isinstance(value, str):
            raise self.fail(where, "expected a string of comma-separated paths")
        return cls(paths=[_snake_path(p) for p in value.split(",")] if value else [])

    def struct(self, cls: type[M], value: Any, where: str) -> M:
        if not isinstance(value, dict):
            raise self.fail(where, "expected an object")
        vcls = cls._sub_classes["fields"]
        return cls(fields={k: self.struct_value(vcls, v, f"{where}.{k}") for k, v in value.items()})

    def list_value(self, cls: type[M], value: Any, where: str) -> M:
        if not isinstance(value, list):
            raise self.fail(where, "expected an array")
        vcls = cls._sub_classes["values"]
        return cls(values=[self.struct_value(vcls, v, f"{where}[{i}]")
                           for i, v in enumerate(value)])

    def struct_value(self, cls: type[M], value: Any, where: str) -> M:
        if value is None:
            return cls(null_value=0)
        if isinstance(value, bool):
            return cls(bool_value=value)
        if isinstance(value, (int, float)):
            return cls(number_value=float(value))
        if isinstance(value, str):
            return cls(string_value=value)
        if isinstance(value, dict):
            return cls(struct_value=self.struct(cls._sub_classes["struct_value"], value, where))
        if isinstance(value, list):
            return cls(list_value=self.list_value(cls._sub_classes["list_value"], value, where))
        raise self.fail(where, f"not a JSON value: {type(value).__name__}")

    def any(self, cls: type[M], value: Any, where: str) -> M:
        if not isinstance(value, dict):
            raise self.fail(where, "expected an object")
        if not value:
            return cls()
        type_url = value.get("@type")
        if not isinstance(type_url, str):
            raise self.fail(where, "an Any needs \"@type\"")
        inner_cls = _resolve_any(cls(), type_url)
        rest = {k: v for k, v in value.items() if k != "@type"}
        name = inner_cls._entry.full_name
        if name in _SPECIAL_IN or name in _WRAPPERS:
            if set(rest) != {"value"}:
                raise self.fail(where, f"an Any of {name} holds only \"value\"")
            inner = self.message(inner_cls, rest["value"], where)
        else:
            inner = self.message(inner_cls, rest, where)
        return cls(type_url=type_url, value=inner.SerializeToString())

    def empty(self, cls: type[M], value: Any, where: str) -> M:
        if value != {}:
            raise self.fail(where, "expected {}")
        return cls()


def _sub_name(msg: Message, f: FieldEntry) -> str:
    sub = msg._sub_classes.get(f.name)
    return sub._entry.full_name if sub is not None else ""


_SPECIAL_IN = {
    "google.protobuf.Timestamp": _Parser.timestamp,
    "google.protobuf.Duration": _Parser.duration,
    "google.protobuf.FieldMask": _Parser.field_mask,
    "google.protobuf.Struct": _Parser.struct,
    "google.protobuf.ListValue": _Parser.list_value,
    "google.protobuf.Value": _Parser.struct_value,
    "google.protobuf.Any": _Parser.any,
    "google.protobuf.Empty": _Parser.empty,
}
