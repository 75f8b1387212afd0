"""The front end's entry point: .proto files (and their imports) to the
FileDescriptorProtos protoc would write.

Files are found as protoc finds them: an input file's name is its path
relative to the include directory (``-I``) that holds it, imports are looked
up in the include directories in order, and the well-known types
(``google/protobuf/*.proto``, bundled in ``wkt/``) come last, so they
resolve without the user supplying them. descriptor.proto is always loaded
(options are fields of its messages) but appears in the output only when a
file imports it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

from ..errors import ProtoSchemaError
from . import descriptor as d
from .options import Interpreter
from .parser import ParsedFile, parse
from .resolve import Issue, Pool

#: The bundled well-known types (google/protobuf/*.proto).
WKT_DIR = Path(__file__).parent / "wkt"
DESCRIPTOR_PROTO = "google/protobuf/descriptor.proto"

PathLike = Union[str, "os.PathLike[str]"]


class _Loader:
    """Loads files as protoc's importer does: a file whose import failed is
    still built (its names from that import are then undefined), a file
    that failed is left out of the pool, and every error is kept in the
    order protoc prints it."""

    def __init__(self, include: Sequence[PathLike]) -> None:
        self.include = [Path(p) for p in include] + [WKT_DIR]
        self.pool = Pool()
        self.options = Interpreter(self.pool)
        #: name -> the built file, or None when it failed
        self.loaded: dict[str, Optional[ParsedFile]] = {}
        self.stack: list[ParsedFile] = []        # files whose imports are being loaded
        self.errors: list[str] = []

    def find(self, name: str) -> Optional[Path]:
        for directory in self.include:
            candidate = directory / name
            if candidate.is_file():
                return candidate
        return None

    def load(self, name: str) -> Optional[ParsedFile]:
        """The built file, or None (its errors recorded) when it failed."""
        if name in self.loaded:
            return self.loaded[name]
        names = [pf.path for pf in self.stack]
        if name in names:
            start = names.index(name)
            chain = " -> ".join(names[start:] + [name])
            first = self.stack[start]
            pos = first.import_pos[first.proto.dependency.index(
                names[start + 1] if start + 1 < len(names) else name)]
            self.errors.append(str(Issue(first.disk, pos,
                                         f"File recursively imports itself: {chain}")))
            return None
        found = self.find(name)
        if found is None:
            self.errors.append(f"{name}: File not found.")
            return self.failed(name)
        pf = parse(found.read_text(encoding="utf-8"), name)
        pf.disk = str(found)
        if pf.errors:
            self.errors.extend(str(Issue(pf.disk, pos, message)) for pos, message in pf.errors)
            return self.failed(name)
        self.stack.append(pf)
        unusable = [(dep, pos) for dep, pos in zip(pf.proto.dependency, pf.import_pos)
                    if self.load(dep) is None]
        self.stack.pop()
        for dep, pos in unusable:
            self.pool.issues.append(Issue(pf.disk, pos,
                                          f'Import "{dep}" was not found or had errors.'))
        self.pool.build(pf)
        self.pool.cross_link(pf)     # also after build errors, as protoc
        self.pool.suggest_numbers(pf)
        if not self.pool.issues:
            self.options.interpret(pf)
        if not self.pool.issues:
            self.pool.validate(pf, self.options.option)
        if self.pool.issues:
            self.errors.extend(str(issue) for issue in self.pool.issues)
            self.pool.issues.clear()
            self.pool.forget(pf)
            return self.failed(name)
        self.loaded[name] = pf
        return pf

    def failed(self, name: str) -> Optional[ParsedFile]:
        """Remember that ``name`` failed; None, for ``load`` to return."""
        self.loaded[name] = None
        return None

    def virtual_name(self, path: PathLike) -> str:
        """The name protoc gives an input file: its path relative to the
        include dir that holds it; a path that is not on disk is taken as
        that name already (as protoc does) when an include dir has it."""
        target = Path(path)
        if not target.exists():
            if not target.is_absolute() and any((directory / target).is_file()
                                                for directory in self.include):
                return target.as_posix()
            raise ProtoSchemaError([f"Could not make proto path relative: {path}: No such "
                                    "file or directory"])
        for directory in self.include[:-1]:
            try:
                return (target.resolve().relative_to(directory.resolve())).as_posix()
            except ValueError:
                continue
        raise ProtoSchemaError([f"{path}: File does not reside within any path specified "
                                "using --proto_path (or -I).  You must specify a --proto_path "
                                "which encompasses this file.  Note that the proto_path must "
                                "be an exact prefix of the .proto file names -- protoc is too "
                                "dumb to figure out when two paths (e.g. absolute and "
                                "relative) are equivalent (it's harder than you think)."])


def parse_files(paths: Iterable[PathLike], include: Sequence[PathLike] = (".",)
                ) -> list[d.FileDescriptorProto]:
    """Parse, resolve and check ``paths`` and everything they import.

    Returns the files as ``protoc --descriptor_set_out --include_imports``
    lists them: each input after its imports (depth first, in import order),
    every file once. ``include`` are the ``-I`` directories; an input file
    must lie inside one of them. Raises
    :class:`~fastnet.errors.ProtoSchemaError` with protoc's error lines.
    """
    loader = _Loader(include)
    names = [loader.virtual_name(p) for p in paths]
    if loader.load(DESCRIPTOR_PROTO) is None:
        raise ProtoSchemaError(loader.errors)
    for name in names:
        if loader.load(name) is None:     # protoc stops at the first input that fails
            raise ProtoSchemaError(loader.errors)
    loader.options.serialize_all()
    out: list[d.FileDescriptorProto] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        pf = loader.loaded[name]
        assert pf is not None
        for dep in pf.proto.dependency:
            visit(dep)
        out.append(pf.proto)

    for name in names:
        visit(name)
    return out
