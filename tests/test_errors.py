"""fastnet.errors: every error is also a builtin, and survives pickling
(it crosses process boundaries in benchmarks and multiprocessing users)."""
from __future__ import annotations

import copy
import pickle

import pytest

from fastnet import errors


@pytest.mark.parametrize("error", [
    errors.FrameTooLarge(17, 16),
    errors.LineTooLong(70000, 65536),
    errors.BadFrameHeader(errors.VarintOverflow("varint overflows 64 bits")),
    errors.VarintTruncated("truncated"),
    errors.ConnectionClosed("closed"),
    errors.RespProtocolError("Protocol error: expected '$', got '\xff'"),
], ids=lambda e: type(e).__name__)
def test_pickle_and_copy_round_trip(error):
    for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert type(clone) is type(error)
        assert str(clone) == str(error)
        for attr in ("size", "limit"):
            assert getattr(clone, attr, None) == getattr(error, attr, None)


def test_messages_name_the_limit():
    assert str(errors.FrameTooLarge(17, 16)) == "frame of 17 bytes exceeds max_frame_size=16"
    assert "max_line_length=8" in str(errors.LineTooLong(9, 8))


def test_protocol_errors_are_value_errors_and_fastnet_errors():
    for cls in (errors.FrameTooLarge, errors.LineTooLong, errors.BadFrameHeader,
                errors.VarintOverlong, errors.RespProtocolError):
        assert issubclass(cls, ValueError) and issubclass(cls, errors.ProtocolError)
        assert issubclass(cls, errors.FastnetError)
    assert issubclass(errors.NativeUnavailable, ImportError)
    assert issubclass(errors.ConnectionClosed, ConnectionError)
