"""Server reflection, ``grpc.reflection.v1.ServerReflection`` (grpc's
doc/server-reflection.md), built on fastnet.proto's descriptors: the
files of every service added with ``Server.add_service`` (and any others
given), serialized as protoc writes them.

::

    fastnet.grpc.reflection.add_reflection(server)
"""
from __future__ import annotations

from typing import Any, AsyncIterator, Iterable, Optional

from ..proto.descriptor import DescriptorProto, FileDescriptorProto
from ..proto.writer import encode
from .server import Server
from .service import load_bundled

PROTO = load_bundled("grpc/reflection/v1/reflection.proto")
ReflectionService = PROTO.grpc.reflection.v1.ServerReflection
_R = PROTO.grpc.reflection.v1


def _symbols(f: FileDescriptorProto) -> Iterable[str]:
    prefix = f"{f.package}." if f.package else ""

    def messages(scope: str, types: list[DescriptorProto]) -> Iterable[str]:
        for m in types:
            name = f"{scope}{m.name}"
            yield name
            for fld in m.field:
                yield f"{name}.{fld.name}"
            for e in m.enum_type:
                yield f"{name}.{e.name}"
            yield from messages(name + ".", m.nested_type)
    yield from messages(prefix, f.message_type)
    for e in f.enum_type:
        yield f"{prefix}{e.name}"
    for s in f.service:
        yield f"{prefix}{s.name}"
        for m in s.method:
            yield f"{prefix}{s.name}.{m.name}"


class ReflectionServicer:
    """Answers reflection requests from ``server``'s services' files."""

    def __init__(self, server: Server, files: Iterable[FileDescriptorProto] = ()) -> None:
        self._server = server
        self._extra = list(files)

    def _files(self) -> dict[str, FileDescriptorProto]:
        out: dict[str, FileDescriptorProto] = {}
        for f in list(self._extra) + [f for s in self._server.services() for f in s.files]:
            out.setdefault(str(f.name), f)
        return out

    def _with_deps(self, name: str, files: dict[str, FileDescriptorProto]) -> list[bytes]:
        """The file and every file it imports, transitively, each once."""
        out: list[bytes] = []
        seen: set[str] = set()
        stack = [name]
        while stack:
            n = stack.pop()
            if n in seen or n not in files:
                continue
            seen.add(n)
            out.append(encode(files[n]))
            stack.extend(files[n].dependency)
        return out

    def _answer(self, request: Any) -> Any:
        kind = request.WhichOneof("message_request")
        files = self._files()
        response = _R.ServerReflectionResponse(valid_host=request.host,
                                               original_request=request)
        if kind == "list_services":
            response.list_services_response = _R.ListServiceResponse(
                service=[_R.ServiceResponse(name=n) for n in self._server.service_names()])
            return response
        found: Optional[str] = None
        if kind == "file_by_filename":
            found = request.file_by_filename if request.file_by_filename in files else None
        elif kind == "file_containing_symbol":
            for name, f in files.items():
                if request.file_containing_symbol in set(_symbols(f)):
                    found = name
                    break
        elif kind in ("file_containing_extension", "all_extension_numbers_of_type"):
            found = None  # fastnet's files declare no extensions reflection would serve
        if found is None:
            response.error_response = _R.ErrorResponse(error_code=5, error_message="not found")
        else:
            response.file_descriptor_response = _R.FileDescriptorResponse(
                file_descriptor_proto=self._with_deps(found, files))
        return response

    async def ServerReflectionInfo(self, requests: AsyncIterator[Any],
                                   context: Any) -> AsyncIterator[Any]:
        async for request in requests:
            yield self._answer(request)


def add_reflection(server: Server, files: Iterable[FileDescriptorProto] = ()) -> ReflectionServicer:
    """Serve reflection on ``server``: its services added with add_service
    (and ``files``, FileDescriptorProtos of fastnet.proto, if given)."""
    servicer = ReflectionServicer(server, files)
    server.add_service(ReflectionService, servicer)
    return servicer
