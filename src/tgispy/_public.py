"""The public face of a package: which module its classes and functions say they come from.

Implementation lives in private modules (``tgispy.predict._predict``); users import from the
public package (``tgispy.predict``). :func:`publish` makes the objects a package re-exports report
that package as their ``__module__`` (what ``repr``, ``help``, pickles and saved programs show),
as httpx does. Each public ``__init__`` calls it once, after its imports, on its ``__all__``.

Three things stay correct after the move:

* pickling: an object pickles by ``__module__`` + ``__qualname__``, and the public package
  exports the name, so pickles round-trip (and name the public path);
* type hints: ``typing.get_type_hints(cls)`` (and pydantic, which resolves dataclass fields the
  same way) evaluates string annotations in the namespace of ``cls.__module__``; a class's own
  string annotations are therefore evaluated in its defining module first and stored resolved;
* only objects defined under the package itself move: a package re-exporting another package's
  name (``tgispy.predict`` re-exporting ``Parameter``) leaves it to that package, so the result
  does not depend on import order.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Iterable, Mapping

__all__ = ["is_private_module", "public_prefix", "publish", "publish_object"]


def is_private_module(module: str) -> bool:
    """Whether a dotted module name has a private component (``tgispy.tgi._sse``).

    Example:
        >>> is_private_module("tgispy.tgi._sse"), is_private_module("tgispy.tgi")
        (True, False)
    """
    return any(part.startswith("_") for part in module.split("."))


def public_prefix(module: str) -> str:
    """The public package a module lives in: its dotted name up to the first private part.

    Example:
        >>> public_prefix("tgispy.tgi._sse"), public_prefix("tgispy._settings")
        ('tgispy.tgi', 'tgispy')
    """
    parts = module.split(".")
    for index, part in enumerate(parts):
        if part.startswith("_"):
            return ".".join(parts[:index])
    return module


def publish(package: str, namespace: Mapping[str, object], names: Iterable[str]) -> None:
    """Give each class or function in ``names`` defined under ``package`` its public ``__module__``.

    Names absent from ``namespace`` (lazily loaded ones) are skipped; the package's module
    ``__getattr__`` publishes them when they load.

    Example:
        >>> from tgispy.predict import Predict
        >>> Predict.__module__
        'tgispy.predict'
    """
    for name in names:
        obj = namespace.get(name)
        if obj is not None:
            publish_object(package, obj)


def publish_object(package: str, obj: object) -> None:
    """Move one class or function defined in a private module under ``package`` to ``package``."""
    if not isinstance(obj, type | types.FunctionType):
        return
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str) or not is_private_module(module):
        return
    # Defined under `package`, or in a private module of an ancestor of `package` (tgispy.utils
    # publishing tgispy._settings.copy_context_runner); never another public package's object.
    home = public_prefix(module)
    if not (module.startswith(package + ".") or package == home or package.startswith(home + ".")):
        return
    if isinstance(obj, type):
        _resolve_own_annotations(obj)
    obj.__module__ = package


def _resolve_own_annotations(cls: type) -> None:
    # get_type_hints and pydantic evaluate a class's string annotations (and a dataclass's field
    # types) in sys.modules[cls.__module__]; once that is the public package, names imported only
    # by the private module would no longer resolve. Evaluate them where they were written.
    own = inspect.get_annotations(cls)
    if not any(isinstance(v, str) for v in own.values()):
        return
    try:
        resolved = inspect.get_annotations(cls, eval_str=True)
    except Exception:  # a name that does not resolve (TYPE_CHECKING-only): resolve the others
        resolved = {key: _evaluate(cls, value) for key, value in own.items()}
    for field in getattr(cls, "__dataclass_fields__", {}).values():
        if field.name in resolved and isinstance(field.type, str):
            field.type = resolved[field.name]
    cls.__annotations__ = resolved


def _evaluate(cls: type, annotation: object) -> object:
    if not isinstance(annotation, str):
        return annotation
    holder = type("_Holder", (), {"__annotations__": {"value": annotation}})
    holder.__module__ = cls.__module__
    try:
        return inspect.get_annotations(holder, locals=dict(vars(cls)), eval_str=True)["value"]
    except Exception:  # leave the string as it was
        return annotation
