"""The C wire twin: cffi over csrc/proto.c.

A message crosses the boundary once each way as CPython marshal data (see
csrc/proto.h): ``marshal.dumps(flat, 2)`` into fn_proto_encode, and
fn_proto_decode's marshal stream through ``marshal.loads`` out. Importing it
raises fastnet.errors.NativeUnavailable when the C extension is not loaded.
"""
from __future__ import annotations

import marshal
import threading
from typing import Any, Sequence

from ... import limits, native
from ._errors import decode_error, encode_error
from ._table import F_MAP, F_PACKED, F_PRESENCE, F_REPEATED, F_UTF8, Schema

lib = native.require()
ffi = native.ffi

_FLAGS = ((F_REPEATED, lib.FN_PROTO_F_REPEATED), (F_PACKED, lib.FN_PROTO_F_PACKED),
          (F_PRESENCE, lib.FN_PROTO_F_PRESENCE), (F_UTF8, lib.FN_PROTO_F_UTF8),
          (F_MAP, lib.FN_PROTO_F_MAP))
_DECODE_CAUSES = {
    lib.FN_E_PROTO_TRUNCATED: "truncated", lib.FN_E_PROTO_VARINT: "varint",
    lib.FN_E_PROTO_TAG: "tag", lib.FN_E_PROTO_WIRE_TYPE: "wire_type",
    lib.FN_E_PROTO_GROUP: "group", lib.FN_E_PROTO_PACKED: "packed",
    lib.FN_E_PROTO_UTF8: "utf8", lib.FN_E_PROTO_DEPTH: "depth", lib.FN_E_PROTO_SIZE: "size",
}
_ENCODE_CAUSES = {
    lib.FN_E_PROTO_TYPE: "type", lib.FN_E_PROTO_RANGE: "range",
    lib.FN_E_PROTO_BAD_STR: "utf8", lib.FN_E_PROTO_ENC_DEPTH: "depth",
}
#: Decoded streams this long or longer reach marshal.loads as a view, not a copy.
_VIEW_AT = 4096
#: marshal's sizes are 32-bit.
_MAX_SIZE = 2**31 - 1


def _normalize(value: Any) -> Any:
    """A flat form with int and str subclasses (IntEnum members...) made
    exact, so marshal can write it; only used when marshal refused."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, dict):
        return {_normalize(k): _normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalize(v) for v in value]
    raise TypeError(f"a {type(value).__name__} cannot be a protobuf field value")


class Codec:
    """Encoder and decoder for every message of a compiled Schema, in C."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        fields = [f for m in schema.messages for f in m.fields]
        self._msgs = ffi.new("fn_proto_msg[]", max(1, len(schema.messages)))
        self._fields = ffi.new("fn_proto_field[]", max(1, len(fields)))
        closed: list[int] = []
        first = 0
        for i, m in enumerate(schema.messages):
            self._msgs[i].first = first
            self._msgs[i].count = len(m.fields)
            self._msgs[i].map_entry = int(m.map_entry)
            oneofs = {name: i + 1 for i, name in enumerate(m.oneofs)}
            for f in m.fields:
                cf = self._fields[first]
                cf.oneof = oneofs.get(f.oneof, 0) if f.oneof else 0
                cf.number = f.number
                cf.type = int(f.type)
                cf.flags = sum(c for py, c in _FLAGS if f.flags & py)
                cf.sub = f.sub
                if f.closed is not None:
                    cf.flags |= lib.FN_PROTO_F_CLOSED
                    cf.closed_first = len(closed)
                    cf.closed_count = len(f.closed)
                    closed.extend(sorted(f.closed))
                first += 1
        self._schema = ffi.new("fn_proto_schema *")
        self._schema.msgs = self._msgs
        self._schema.nmsgs = len(schema.messages)
        self._schema.fields = self._fields
        self._schema.nfields = len(fields)
        self._closed = ffi.new("int32_t[]", closed or [0])
        self._schema.closed = self._closed
        self._schema.nclosed = len(closed)
        self._local = threading.local()

    def _ctx(self) -> Any:
        # cffi releases the GIL during calls: one context per thread.
        try:
            return self._local.ctx
        except AttributeError:
            ctx = lib.fn_proto_ctx_new()
            if ctx == ffi.NULL:
                raise MemoryError("fn_proto_ctx_new") from None
            self._local.ctx = ffi.gc(ctx, lib.fn_proto_ctx_free)
            return self._local.ctx

    def encode(self, index: int, flat: Sequence[Any]) -> bytes:
        """The wire bytes of message ``index`` given its flat form (as the
        Python twin's Codec.encode)."""
        try:
            stream = marshal.dumps(flat, 2)  # type: ignore[arg-type]
        except ValueError:
            stream = marshal.dumps(_normalize(flat), 2)
        try:
            ctx = self._local.ctx
        except AttributeError:
            ctx = self._ctx()
        n = lib.fn_proto_encode(ctx, self._schema, index, stream, len(stream),
                                limits.PROTO_MAX_DEPTH)
        if n <= 0:
            if n == 0:
                return b""  # (ctx.out may still be NULL)
            raise self._encode_error(ctx, index, n)
        return ffi.unpack(ctx.out, n)  # type: ignore[no-any-return]

    def _encode_error(self, ctx: Any, index: int, code: int) -> Exception:
        if code == lib.FN_E_NOMEM:
            return MemoryError("protobuf encoder")
        if ctx.err_msg < 0 or code not in _ENCODE_CAUSES:
            return TypeError(f"{self.schema.messages[index].full_name}: not a flat message")
        m = self.schema.messages[ctx.err_msg]
        f = m.fields[ctx.err_field]
        return encode_error(_ENCODE_CAUSES[code], f"{m.full_name}.{f.name}",
                            f.type.name[5:].lower(), limits.PROTO_MAX_DEPTH)

    def decode(self, index: int, data: bytes, max_depth: int = limits.PROTO_MAX_DEPTH,
               max_message_size: int = limits.DEFAULT_PROTO_MAX_MESSAGE_SIZE) -> list[Any]:
        """The flat form of message ``index`` read from ``data`` (as the
        Python twin's Codec.decode)."""
        if max_message_size > _MAX_SIZE:
            raise ValueError(f"max_message_size over {_MAX_SIZE} (marshal's sizes are 32-bit)")
        try:
            ctx = self._local.ctx
        except AttributeError:
            ctx = self._ctx()
        # bytes go to C as they are; other buffers through from_buffer
        src = data if type(data) is bytes else ffi.from_buffer(data)
        n = lib.fn_proto_decode(ctx, self._schema, index, src, len(data), max_depth,
                                max_message_size)
        if n < 0:
            if n == lib.FN_E_NOMEM:
                raise MemoryError("protobuf decoder")
            raise decode_error(_DECODE_CAUSES[n], max_depth, len(data), max_message_size)
        # small streams: one copy into bytes is cheaper than a buffer object;
        # big ones (a large bytes field) are read in place
        stream = ffi.unpack(ctx.out, n) if n < _VIEW_AT else ffi.buffer(ctx.out, n)
        return marshal.loads(stream)  # type: ignore[no-any-return]
