"""grpcio's code for inventory.proto, generated at run time by
grpc_tools.protoc into a temporary directory (never committed)."""
from __future__ import annotations

import atexit
import importlib
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

PROTO = Path(__file__).with_name("inventory.proto")
_cache: dict[str, ModuleType] = {}


def protoc_out() -> Path:
    """Run protoc (grpc_tools) on inventory.proto; the directory it wrote to."""
    from grpc_tools import protoc

    out = Path(tempfile.mkdtemp(prefix="grpc-vs-rest-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    wkt = Path(protoc.__file__).parent / "_proto"
    status = protoc.main(["protoc", f"-I{PROTO.parent}", f"-I{wkt}", f"--python_out={out}",
                          f"--grpc_python_out={out}", str(PROTO)])
    if status != 0:
        raise RuntimeError(f"grpc_tools.protoc exited {status} on {PROTO}")
    return out


def grpcio_modules() -> tuple[ModuleType, ModuleType]:
    """(inventory_pb2, inventory_pb2_grpc), generated once per process."""
    if not _cache:
        out = protoc_out()
        sys.path.insert(0, str(out))
        _cache["pb2"] = importlib.import_module("inventory_pb2")
        _cache["grpc"] = importlib.import_module("inventory_pb2_grpc")
        _cache["dir"] = out  # type: ignore[assignment]
    return _cache["pb2"], _cache["grpc"]
