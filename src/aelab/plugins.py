"""One way to find plug-ins, for every plug-in point (model families,
trainers).

A plug-in is a folder ``<package>/<name>/`` with a light ``config.py``
defining ``SPEC`` (its pydantic spec; the key it registers under is the
default of the spec's discriminator field, e.g. ``kind`` or ``method``) and
a heavy module defining the implementation (``family.py`` -> ``FAMILY``,
``trainer.py`` -> ``TRAINER``).  Other packages add plug-ins through an
entry-point group, naming one module that defines both.  Specs are read
without importing the implementations, so validating a config never loads
torch.
"""
from __future__ import annotations

import functools
import importlib
from pathlib import Path


class Registry:
    """The plug-ins found in ``package``'s sub-folders and ``group``'s entry points."""

    def __init__(self, package: str, folder: Path, field: str, group: str, part: str, attribute: str,
                 what: str = "plug-in"):
        self.package, self.folder, self.field = package, folder, field
        self.group, self.part, self.attribute, self.what = group, part, attribute, what
        self._loaded: dict[str, object] = {}

    @functools.cached_property
    def modules(self) -> dict[str, str]:
        """key -> module path (folders first, then entry points; a folder wins a clash)."""
        found = {}
        for sub in sorted(p for p in self.folder.iterdir() if (p / "config.py").is_file()):
            spec = importlib.import_module(f"{self.package}.{sub.name}.config").SPEC
            found[self._key_of(spec)] = f"{self.package}.{sub.name}"
        for entry in _entry_points(self.group):
            spec = importlib.import_module(entry.value).SPEC
            found.setdefault(self._key_of(spec), entry.value)
        return found

    def _key_of(self, spec) -> str:
        return spec.model_fields[self.field].default

    def keys(self) -> list[str]:
        return sorted(self.modules)

    def specs(self) -> dict[str, type]:
        """key -> spec class (light)."""
        return {k: self._import(m, "config").SPEC for k, m in sorted(self.modules.items())}

    def implementation(self, key: str):
        """The plug-in registered as ``key`` (imported once); one line naming
        the known keys if there is none (``what`` names the config key)."""
        if key not in self.modules:
            from .errors import ConfigError
            raise ConfigError(f"{self.what}: {key!r} is not registered (known: {', '.join(self.keys())})")
        if key not in self._loaded:
            self._loaded[key] = getattr(self._import(self.modules[key], self.part), self.attribute)
        return self._loaded[key]

    def _import(self, module: str, part: str):
        """``<module>.<part>`` for a folder plug-in, the module itself for an entry point."""
        if module.startswith(self.package + "."):
            return importlib.import_module(f"{module}.{part}")
        return importlib.import_module(module)


def _entry_points(group: str) -> list:
    from importlib.metadata import entry_points
    return list(entry_points(group=group))


def owners(specs: dict[str, type], field: str) -> list[str]:
    """The keys whose spec has ``field``."""
    return [k for k, cls in specs.items() if field in cls.model_fields]
