"""How a codec package finds its twins: ``py.py`` always, ``c.py`` when the
C extension is loaded (fastnet.native decides, once, for every codec)."""
from __future__ import annotations

from importlib import import_module
from types import ModuleType

from .. import native


def load(package: str) -> dict[str, ModuleType]:
    """Return the twins of codec package ``package`` by backend name:
    {"python": package.py} plus "c": package.c when native.backend is "c"."""
    impls = {"python": import_module(".py", package)}
    if native.backend == "c":
        impls["c"] = import_module(".c", package)
    return impls


def combine(name: str, packages: list[ModuleType]) -> ModuleType:
    """One namespace holding backend ``name``'s twin of every package: the
    public names of each twin (its ``__all__``), and ``__all__`` listing them."""
    twin = ModuleType(f"fastnet.codec[{name}]", f"The {name} twin of every codec.")
    names: list[str] = []
    for package in packages:
        module = package.impls[name]
        for attr in module.__all__:
            setattr(twin, attr, getattr(module, attr))
        names += module.__all__
        setattr(twin, package.__name__.rsplit(".", 1)[1], module)
    twin.__all__ = names  # type: ignore[attr-defined]
    return twin
