"""Test helpers for fastnet.proto: schemas compiled by protoc (the oracle),
as fastnet descriptor objects and as google.protobuf message classes.

google.protobuf is a test oracle only, never a runtime dependency of
fastnet: it is imported here and in the tests, nowhere in fastnet/.
"""
from __future__ import annotations

import dataclasses
import functools
import subprocess
import sys
import tempfile
import typing
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from fastnet.proto import descriptor as fd

HERE = Path(__file__).resolve().parent
PROTO_DIR = HERE / "proto_wire"
SCHEMAS = ("kinds.proto", "legacy.proto", "wkt.proto")


def protoc_set(files: tuple[str, ...] = SCHEMAS, include: Path = PROTO_DIR) -> bytes:
    """protoc's FileDescriptorSet (--include_imports) for files under include."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{include}",
                        "--include_imports", f"--descriptor_set_out={out}", *files],
                       check=True, capture_output=True)
        return out.read_bytes()


def _convert(cls: type, msg: Any) -> Any:
    """A descriptor_pb2 message as the fastnet.proto.descriptor dataclass of
    the same name, field by field (options as their serialized bytes)."""
    hints = typing.get_type_hints(cls, vars(fd))
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        value = getattr(msg, field.name)
        hint = hints[field.name]
        origin = typing.get_origin(hint)
        if origin is list:
            (item,) = typing.get_args(hint)
            kwargs[field.name] = [_convert(item, v) if dataclasses.is_dataclass(item) else v
                                  for v in value]
            continue
        if not msg.HasField(field.name):
            continue
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        if field.name == "options":
            kwargs[field.name] = value.SerializeToString()
        elif dataclasses.is_dataclass(inner):
            kwargs[field.name] = _convert(inner, value)
        elif isinstance(inner, type) and issubclass(inner, int) and inner is not bool:
            kwargs[field.name] = inner(value)
        else:
            kwargs[field.name] = value
    return cls(**kwargs)


def to_fastnet(set_bytes: bytes) -> list[fd.FileDescriptorProto]:
    """protoc's serialized FileDescriptorSet as fastnet descriptor objects."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(set_bytes)
    return [_convert(fd.FileDescriptorProto, f) for f in fds.file]


def google_classes(set_bytes: bytes) -> dict[str, type]:
    """Every message of the set as a google.protobuf class, by full name."""
    pool = descriptor_pool.DescriptorPool()
    fds = descriptor_pb2.FileDescriptorSet.FromString(set_bytes)
    for f in fds.file:
        pool.Add(f)
    out: dict[str, type] = {}

    def walk(desc: Any) -> None:
        out[desc.full_name] = message_factory.GetMessageClass(desc)
        for nested in desc.nested_types:
            walk(nested)

    for f in fds.file:
        for m in pool.FindFileByName(f.name).message_types_by_name.values():
            walk(m)
    return out


@functools.lru_cache(maxsize=None)
def schema() -> tuple[list[fd.FileDescriptorProto], dict[str, type]]:
    """The test corpus (tests/proto_wire) as fastnet descriptors and google classes."""
    data = protoc_set()
    return to_fastnet(data), google_classes(data)
