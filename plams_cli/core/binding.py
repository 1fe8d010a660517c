"""``add_to_class`` and ``add_to_instance``: PLAMS's decorators that attach a function as a method.

A method added to a :class:`~plams_cli.core.results.Results` class or instance waits for the
job's files before it runs, like the methods the class defines (PLAMS's "access guardian").
The decorated name is bound to ``None`` in the script, as in PLAMS (the decorators return
nothing).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

__all__ = ["add_to_class", "add_to_instance"]


def _guarded(func: Callable[..., Any]) -> Callable[..., Any]:
    from plams_cli.core.results import _needs_files

    return _needs_files(func)


def add_to_class(classname: type) -> Callable[[Callable[..., Any]], None]:
    """Add the decorated function to the class ``classname`` (and so to its subclasses).

    Instances made before the call get the method too.

    Parameters
    ----------
    classname
        The class to extend, e.g. ``Results`` or a job class.

    Examples
    --------
    >>> from plams_cli import Results
    >>> @add_to_class(Results)
    ... def get_energy(self):
    ...     return float(self.grep_output("Energy")[-1].split()[-1])
    """
    from plams_cli.core.results import Results

    def decorator(func: Callable[..., Any]) -> None:
        method = _guarded(func) if isinstance(classname, type) and issubclass(classname, Results) else func
        setattr(classname, func.__name__, method)

    return decorator


def add_to_instance(instance: object) -> Callable[[Callable[..., Any]], None]:
    """Add the decorated function as a method of ``instance`` only.

    It overrides a method of the same name defined by the class or added with
    :func:`add_to_class`.

    Parameters
    ----------
    instance
        The object to extend, e.g. the results a ``job.run()`` returned.
    """
    from plams_cli.core.results import Results

    def decorator(func: Callable[..., Any]) -> None:
        method = _guarded(func) if isinstance(instance, Results) else func
        setattr(instance, func.__name__, types.MethodType(method, instance))

    return decorator
