"""advlab: adversarial machine learning for images and constrained tabular security data.

The public names are imported on first use (PEP 562 module ``__getattr__``), so that
``import advlab`` and the command line's ``--help`` do not pay for torch; ``from advlab import
ThreatModel`` works as usual. Sub-packages export their names the same way, through
:func:`_lazy_exports`.
"""

from __future__ import annotations

import importlib
import importlib.util
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__version__ = "0.1.0"


class _Package(types.ModuleType):
    """A package with lazy exports: an exported name keeps naming the export when a submodule of
    the same name is imported later (``advlab.poisoning.backdoor`` is the function, as it was
    when the package imported everything eagerly), because the import system's
    ``setattr(package, "backdoor", <module>)`` is dropped and the name resolves lazily."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in self.__dict__.get("_exports", ()):
            return
        super().__setattr__(name, value)


def _lazy_exports(package: str, exports: Mapping[str, Sequence[str]]
                  ) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for a package whose names live in submodules.

    ``exports`` maps a submodule (relative to ``package``, e.g. ``"attributions"``) to the names
    it exports (a module outside the package is named in full, ``"advlab.scoring"``); a name is
    imported from its module the first time it is looked up, then cached in the package's
    namespace. A submodule's own name, when it is not an export, gives the submodule.
    """
    where = {name: module for module, names in exports.items() for name in names}
    this = importlib.import_module(package)
    this.__dict__["_exports"] = where
    this.__class__ = _Package
    namespace = this.__dict__

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            if name.startswith("_") or importlib.util.find_spec(f"{package}.{name}") is None:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            return importlib.import_module(f"{package}.{name}")
        absolute = module.startswith("advlab.")
        value = getattr(importlib.import_module(module if absolute else f"{package}.{module}"),
                        name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *where})

    return sorted(where), __getattr__, __dir__


__all__, __getattr__, __dir__ = _lazy_exports(__name__, {
    "domain": ["Domain"], "norms": ["Norm"], "threat": ["ThreatModel"]})
__all__ = [*__all__, "__version__"]
