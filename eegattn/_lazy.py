"""Lazy package exports: names load their module on first access (PEP 562)."""

from importlib import import_module


def lazy_exports(package: str, names: dict[str, str], namespace: dict):
    """Return ``(__getattr__, __dir__)`` for ``package`` exporting ``names`` (name -> module).

    A loaded name is cached in the package's ``namespace`` so later lookups are plain.
    """
    exported = sorted(names)

    def __getattr__(name):
        if name in names:
            value = getattr(import_module(names[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(exported) | {k for k in namespace if not k.startswith("_")})

    return __getattr__, __dir__
