"""RESP, the Redis protocol: the public API.

Requests (server side) are parsed exactly as redis-server 7 does; replies
(client side) in RESP2 and RESP3. ``RespRequestDecoder`` and
``RespReplyDecoder`` are the active twin's: ``c`` (cffi over csrc/resp.c)
unless fastnet.native fell back to ``py`` (pure Python, the readable
reference). ``impls`` maps backend names to the twins available, ``backend``
names the one in use, ``active`` is it. The reply value types, ``NEED_DATA``
and the encoders (``encode_command``, ``encode_reply`` and one per type) are
written once, shared by both twins (_common.py, _encode.py).
"""
from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from ... import native
from .. import _twins
from ._common import NEED_DATA, BigNumber, Push, RespError, SimpleString, Verbatim
from ._encode import (
    encode_array,
    encode_attribute,
    encode_big_number,
    encode_boolean,
    encode_bulk,
    encode_command,
    encode_double,
    encode_error,
    encode_integer,
    encode_map,
    encode_null,
    encode_push,
    encode_reply,
    encode_set,
    encode_simple,
    encode_verbatim,
)

impls: dict[str, ModuleType] = _twins.load(__name__)
backend: str = native.backend
active: ModuleType = impls[backend]

if TYPE_CHECKING:  # the twins share one API: type checkers read the reference's
    from .py import RespReplyDecoder, RespRequestDecoder, encode_bulk_array
else:
    RespRequestDecoder = active.RespRequestDecoder
    RespReplyDecoder = active.RespReplyDecoder
    encode_bulk_array = active.encode_bulk_array

__all__ = [
    "BigNumber",
    "NEED_DATA",
    "Push",
    "RespError",
    "RespReplyDecoder",
    "RespRequestDecoder",
    "SimpleString",
    "Verbatim",
    "active",
    "backend",
    "encode_array",
    "encode_bulk_array",
    "encode_attribute",
    "encode_big_number",
    "encode_boolean",
    "encode_bulk",
    "encode_command",
    "encode_double",
    "encode_error",
    "encode_integer",
    "encode_map",
    "encode_null",
    "encode_push",
    "encode_reply",
    "encode_set",
    "encode_simple",
    "encode_verbatim",
    "impls",
]
