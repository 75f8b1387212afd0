"""fastnet.pack: MessagePack, byte-identical with msgpack-python, with a C
twin and a pure-Python twin.

    from fastnet import pack
    data = pack.packb({"id": 1, "tags": ["a", "b"]})
    assert pack.unpackb(data) == {"id": 1, "tags": ["a", "b"]}

``packb(obj)`` writes the smallest encoding of every value, the bytes
``msgpack.packb(obj, use_bin_type=True, datetime=True)`` writes;
``unpackb(data)`` reads one object (ExtraData if bytes follow,
UnpackTruncated if it is cut short); ``Unpacker`` is the streaming, sans-IO
reader (feed bytes, iterate whole objects). ExtType and Timestamp are the
extension values; aware datetimes pack as timestamps and timestamps unpack
as UTC datetimes (``timestamp=0`` for Timestamp). Every limit is in
fastnet.limits, every error in fastnet.errors.

``impls`` maps "c" and "python" to the twins available, ``backend`` names
the one in use (fastnet.native decides) and its names are re-exported here.

The C twin's bridge is CPython's marshal: ``marshal.dumps`` then C
transcoding marshal -> MessagePack, and C transcoding MessagePack ->
marshal then ``marshal.loads``; what marshal cannot carry (ExtType,
datetime, subclasses, default=) is handed to the Python twin. Chosen by
measurement: see fastnet.pack.c and ARCHITECTURE.md.
"""
from __future__ import annotations

from types import ModuleType

from .. import native
from . import py
from ._common import ExtType, Timestamp

impls: dict[str, ModuleType] = {"python": py}
if native.backend == "c":
    from . import c

    impls["c"] = c

backend: str = native.backend
active: ModuleType = impls[backend]

packb = active.packb
unpackb = active.unpackb
Unpacker = active.Unpacker

__all__ = ["ExtType", "Timestamp", "Unpacker", "active", "backend", "impls", "packb", "unpackb"]
