"""Services: from fastnet.proto's descriptors to method handlers and stubs.

A *method handler* is anything with grpcio's ``RpcMethodHandler`` shape
(``request_streaming``, ``response_streaming``, ``request_deserializer``,
``response_serializer`` and one of ``unary_unary`` ... ``stream_stream``),
so what ``grpc.unary_unary_rpc_method_handler`` builds and what
:meth:`Service.handlers` builds are served the same way. A *generic
handler* is grpcio's: ``service(handler_call_details) -> handler or None``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

from ..proto import parse_files
from ..proto.descriptor import FileDescriptorProto
from ..proto.message import Namespace, build

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Method:
    """One rpc of a service: ``path`` is ``/package.Service/Method``."""

    name: str
    path: str
    request: Any
    response: Any
    client_streaming: bool
    server_streaming: bool


class MethodHandler(NamedTuple):
    """grpcio's RpcMethodHandler fields: exactly one behaviour is set."""

    request_streaming: bool
    response_streaming: bool
    request_deserializer: Optional[Callable[[bytes], Any]]
    response_serializer: Optional[Callable[[Any], bytes]]
    unary_unary: Optional[Callable[..., Any]]
    unary_stream: Optional[Callable[..., Any]]
    stream_unary: Optional[Callable[..., Any]]
    stream_stream: Optional[Callable[..., Any]]


def method_handler(fn: Callable[..., Any], request_streaming: bool, response_streaming: bool,
                   request_deserializer: Optional[Callable[[bytes], Any]] = None,
                   response_serializer: Optional[Callable[[Any], bytes]] = None) -> MethodHandler:
    """A handler for ``fn`` (plain, generator, ``async def`` or async generator)."""
    slots: list[Optional[Callable[..., Any]]] = [None, None, None, None]
    slots[request_streaming * 2 + response_streaming] = fn
    return MethodHandler(request_streaming, response_streaming, request_deserializer,
                         response_serializer, *slots)


def handler_function(h: Any) -> Callable[..., Any]:
    """The behaviour of a method handler (whichever of its four is set)."""
    fn = (h.stream_stream if h.response_streaming else h.stream_unary) if h.request_streaming \
        else (h.unary_stream if h.response_streaming else h.unary_unary)
    if fn is None:
        raise ValueError("method handler has no behaviour for its kind")
    return fn  # type: ignore[no-any-return]


class HandlerCallDetails(NamedTuple):
    """What a generic handler is asked with (grpcio's HandlerCallDetails)."""

    method: str
    invocation_metadata: tuple[Any, ...]


class GenericHandler:
    """grpcio's ``method_handlers_generic_handler``: the handlers of one
    service, looked up by method name."""

    def __init__(self, service: str, handlers: dict[str, Any]) -> None:
        self._service = service
        self._by_path = {f"/{service}/{name}": h for name, h in handlers.items()}

    def service_name(self) -> str:
        return self._service

    def service(self, details: Any) -> Any:
        return self._by_path.get(details.method)


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()  # type: ignore[no-any-return]


class Service:
    """A service of a .proto file: its methods with their message classes.

    ``handlers(servicer)`` maps each rpc to the servicer's method of the
    same name (``def Method(self, request, context)``; streaming requests
    arrive as an iterator, or an async iterator for ``async def``; streaming
    responses are returned as an iterator or yielded). Methods the servicer
    lacks answer UNIMPLEMENTED."""

    def __init__(self, full_name: str, methods: Sequence[Method],
                 files: Sequence[FileDescriptorProto] = ()) -> None:
        self.full_name = full_name
        #: The FileDescriptorProtos it was loaded from (imports first): reflection serves them.
        self.files = list(files)
        self.name = full_name.rsplit(".", 1)[-1]
        self.methods = {m.name: m for m in methods}

    def __repr__(self) -> str:
        return f"<Service {self.full_name} ({', '.join(self.methods)})>"

    def handlers(self, servicer: Any) -> dict[str, MethodHandler]:
        """Method name -> handler for each rpc ``servicer`` implements."""
        out: dict[str, MethodHandler] = {}
        for m in self.methods.values():
            fn = getattr(servicer, m.name, None)
            if fn is None:
                continue
            out[m.name] = method_handler(fn, m.client_streaming, m.server_streaming,
                                         m.request.FromString, _serialize)
        return out


def services_of(files: Sequence[FileDescriptorProto], messages: Namespace) -> list[Service]:
    """A Service for every service in ``files``, its types taken from
    ``messages`` (what fastnet.proto.message.build made of the same files)."""
    out = []
    for f in files:
        package = f.package or ""
        for s in f.service:
            full = f"{package}.{s.name}" if package else str(s.name)
            methods = [Method(str(m.name), f"/{full}/{m.name}",
                              messages[str(m.input_type).lstrip(".")],
                              messages[str(m.output_type).lstrip(".")],
                              bool(m.client_streaming), bool(m.server_streaming))
                       for m in s.method]
            out.append(Service(full, methods, files))
    return out


PROTOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "protos")


def load_bundled(name: str) -> Namespace:
    """One of the .proto files shipped in fastnet/grpc/protos (health,
    reflection, the interop suite's), by its name there."""
    return load(name, include=[PROTOS])


def load(path: PathLike, include: Sequence[PathLike] = (".",)) -> Namespace:
    """``fastnet.proto.load`` plus the file's services: each Service is an
    attribute of its package beside the messages (``ns.pkg.Greeter``) and
    in ``ns["pkg.Greeter"]``; ``ns.files`` keeps the FileDescriptorProtos
    (reflection serves them)."""
    files = parse_files([path], include)
    ns = build(files)
    by_name = ns.__dict__["_by_name"]
    for service in services_of(files, ns):
        by_name[service.full_name] = service
        node: Any = ns
        for part in service.full_name.split(".")[:-1]:
            if not hasattr(node, part):
                setattr(node, part, Namespace(_by_name=by_name))
            node = getattr(node, part)
        setattr(node, service.name, service)
    ns.files = files
    return ns
