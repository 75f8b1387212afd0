"""What the wire server and clients share: versions, error codes, and
building and reading bodies (fastnet.pack, compression, metadata)."""
from __future__ import annotations

import enum
from typing import Any, Optional, Sequence

from .. import pack
from ..codec.wire import FLAG_CODEC_MASK, FLAG_METADATA, encode_wire_frame
from ..codec.wire._common import frame_bytes
from ..errors import WireDecompressError
from . import compression
from .compression import BY_ID, CODECS, Codec

#: The protocol versions this fastnet speaks, oldest first.
VERSIONS = (1, 2)
MIN_VERSION, MAX_VERSION = VERSIONS[0], VERSIONS[-1]
#: The first version with request ids, many in flight, compression and metadata.
V2 = 2


class ErrorCode(enum.IntEnum):
    """The code an ERROR frame carries (its body's "code")."""

    BAD_FRAME = 1            #: the frame broke the layout; the connection closes
    UNSUPPORTED_VERSION = 2  #: no common version; the body lists min/max; closes
    HANDLER = 3              #: the handler raised: its type and message
    BUSY = 4                 #: turned away: over the connection limit
    SHUTTING_DOWN = 5        #: the server is draining (GOAWAY was sent)
    BAD_BODY = 6             #: a body that does not decode (pack, compression, size)
    PROTOCOL = 7             #: a frame not allowed here (wrong version, type, codec)
    REFUSED = 8              #: an interceptor ended the call: "status" names why (fastnet.interceptors)


def codec_names() -> list[str]:
    """Every codec this process can use, in preference order."""
    return [name for name in ("zstd", "lz4", "zlib") if name in CODECS]


def error_body(code: int, type_name: str, message: str, **extra: Any) -> bytes:
    """An ERROR frame's body."""
    return pack.packb({"code": int(code), "type": type_name, "message": message, **extra})


def error_frame(code: int, type_name: str, message: str, *, version: int = 1,
                request_id: int = 0, **extra: Any) -> bytes:
    """A whole ERROR frame."""
    return encode_wire_frame(4, error_body(code, type_name, message, **extra),
                             version=version, request_id=request_id)


def encode_message(type_: int, obj: Any, *, version: int, request_id: int = 0,
                   codec: Optional[Codec] = None, threshold: Optional[int] = None,
                   metadata: Optional[dict[str, Any]] = None) -> bytes:
    """A REQUEST or RESPONSE frame carrying obj (and metadata, v2), its body
    compressed with codec when that pays."""
    flags = 0
    if metadata:
        body = pack.packb([metadata, obj])
        flags |= FLAG_METADATA
    else:
        body = pack.packb(obj)
    if codec is not None:
        packed = compression.compress(codec, body, threshold)
        if packed is not None:
            body, flags = packed, flags | codec.id
    return frame_bytes(type_, body, version, flags, request_id)


def decode_message(flags: int, body: bytes, *, version: int, codecs: Sequence[str],
                   limit: int) -> tuple[Any, dict[Any, Any]]:
    """(object, metadata) of a REQUEST or RESPONSE body. WireDecompressError
    for a bad compressed body, ValueError for a codec not negotiated or a
    body that is not fastnet.pack."""
    codec_id = flags & FLAG_CODEC_MASK
    if codec_id:
        codec = BY_ID.get(codec_id)
        if version < V2 or codec is None or codec.name not in codecs:
            raise WireDecompressError(str(codec_id), "a compression codec not negotiated")
        body = compression.decompress(codec, body, limit)
    obj = pack.unpackb(body)
    if flags & FLAG_METADATA and version >= V2:
        if not (isinstance(obj, list) and len(obj) == 2 and isinstance(obj[0], dict)):
            raise ValueError("a body with the metadata flag is not [metadata, payload]")
        return obj[1], obj[0]
    return obj, {}


def remote_error(body: bytes) -> tuple[int, str, str, dict[Any, Any]]:
    """(code, type, message, the whole map) of an ERROR body; unknown keys kept."""
    try:
        fields = pack.unpackb(body)
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        return int(ErrorCode.BAD_BODY), "ProtocolError", "an ERROR body that is not a map", {}
    return (int(fields.get("code", 0)), str(fields.get("type", "")),
            str(fields.get("message", "")), fields)
