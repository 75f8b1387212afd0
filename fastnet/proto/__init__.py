"""Protocol Buffers: a .proto front end, message classes and a wire codec.

``descriptor`` is the schema model every part shares (mirrors of
descriptor.proto). The front end (``frontend``: ``lexer``, ``parser``,
``resolve``, ``options``, ``writer``) turns .proto files into the
FileDescriptorProtos protoc would produce::

    files = fastnet.proto.parse_files(["x.proto"], include=["."])
    data = fastnet.proto.descriptor_set(["x.proto"])   # protoc's bytes

``load()`` gives a module-like namespace of message classes (``message``).
"""
from __future__ import annotations

import os
from typing import Any, Iterable, Sequence, Union

from .frontend import WKT_DIR, parse_files
from .writer import encode_set

PathLike = Union[str, "os.PathLike[str]"]


def descriptor_set(paths: Iterable[PathLike], include: Sequence[PathLike] = (".",)) -> bytes:
    """The serialized FileDescriptorSet of ``paths`` and all they import:
    the bytes ``protoc --descriptor_set_out=x --include_imports`` writes."""
    return encode_set(parse_files(paths, include))


def load(path: PathLike, include: Sequence[PathLike] = (".",)) -> Any:
    """Parse ``path`` (and its imports, found in ``include`` then among the
    bundled well-known types) and return a module-like namespace of its
    message classes and enums, built by :func:`fastnet.proto.message.build`
    from the FileDescriptorProtos (imports first, ``path`` last)::

        health = fastnet.proto.load("health.proto", include=["protos"])
        request = health.grpc.health.v1.HealthCheckRequest(service="x")
    """
    from .message import build  # the wire codec and classes load only when used

    return build(parse_files([path], include))


__all__ = ["parse_files", "descriptor_set", "load", "WKT_DIR"]
