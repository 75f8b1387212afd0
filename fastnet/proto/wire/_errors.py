"""The decode errors of both wire twins, written once: cause -> exception."""
from __future__ import annotations

from ...errors import ProtoBadUtf8, ProtoDecodeError, ProtoDepthExceeded, ProtoMessageTooLarge

#: What each cause means (the C twin maps its FN_E_PROTO_* codes to these).
TEXTS = {
    "truncated": "the input ends inside a field, or a length runs past its message",
    "varint": "a varint longer than 10 bytes",
    "tag": "a field tag that is zero or does not fit in 32 bits",
    "wire_type": "wire type 6 or 7",
    "group": "an end-group tag that does not close the open group",
    "packed": "a packed field whose length does not hold whole values",
    "utf8": "a string field that is not valid UTF-8",
}


def decode_error(cause: str, max_depth: int, size: int, max_size: int) -> ProtoDecodeError:
    """The exception for ``cause`` (limits given to name them)."""
    if cause == "depth":
        return ProtoDepthExceeded(max_depth)
    if cause == "size":
        return ProtoMessageTooLarge(size, max_size)
    if cause == "utf8":
        return ProtoBadUtf8(cause, TEXTS[cause])
    return ProtoDecodeError(cause, TEXTS[cause])


#: Why a value cannot be serialized (the caller's values, not a peer's
#: bytes, are wrong: plain TypeError / ValueError, as errors.py says).
ENCODE_TEXTS = {
    "type": (TypeError, "wrong type for a {type} field"),
    "range": (ValueError, "value out of range for a {type} field"),
    "utf8": (ValueError, "a str that cannot be UTF-8 (lone surrogate)"),
    "depth": (ValueError, "messages nested deeper than {limit}"),
}


def encode_error(cause: str, where: str, type_name: str, limit: int) -> Exception:
    """The exception for an encode failure at ``where`` (message.field)."""
    cls, text = ENCODE_TEXTS[cause]
    return cls(f"{where}: " + text.format(type=type_name, limit=limit))
