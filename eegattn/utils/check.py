"""Argument checks whose error messages all read the same way (after MNE's ``utils/check.py``).

Every message names the parameter, says what is allowed and what was given, and may end with
the fix::

    Invalid value for the 'optimizer' parameter. Allowed values are 'adamw', 'adam', 'sgd', but
    got 'x'.
    Invalid value for the 'n_jobs' parameter. It must be a positive integer, but got 0. Pass 1
    to run in this process.
    Invalid type for the 'model_options' parameter. Allowed types are dict, None, but got str.

Every check raises :class:`InvalidParameterError`, a subclass of both ``ValueError`` and
``TypeError`` (as scikit-learn's ``InvalidParameterError``): callers and the command line that
catch ``ValueError`` report a wrong type as cleanly as a wrong value, and code that expects
``TypeError`` for a wrong type still gets it. Each check returns the value it accepted, so
``self.n_jobs = check_positive_int(n_jobs, "n_jobs")`` reads in one line. Only the standard
library is imported.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

__all__ = [
    "InvalidParameterError",
    "check_fraction",
    "check_option",
    "check_positive_int",
    "check_positive_number",
    "parse_json_object",
    "validate_type",
]


class InvalidParameterError(ValueError, TypeError):
    """A parameter has a value or type that is not allowed; the message says which and why."""


def _invalid(kind: str, parameter: str, extra: str, expected: str, got: str, fix: str) -> str:
    extra = f" {extra}" if extra else ""
    fix = f" {fix}" if fix else ""
    return f"Invalid {kind} for the '{parameter}' parameter{extra}. {expected}, but got {got}.{fix}"


def check_option(parameter: str, value, allowed_values: Iterable, *, extra: str = "",
                 fix: str = ""):
    """Return ``value`` if it is one of ``allowed_values``, else raise an error.

    Args:
        parameter: the parameter's name as the caller knows it (``"model"``, ``"--device"``).
        value: the value given.
        allowed_values: the accepted values, in the order the message lists them.
        extra: context after the parameter's name, e.g. ``"for challenge 1"``.
        fix: a sentence appended to the message that says what to do.
    """
    allowed = list(allowed_values)
    if value in allowed:
        return value
    if len(allowed) == 1:
        expected = f"The only allowed value is {allowed[0]!r}"
    else:
        expected = "Allowed values are " + ", ".join(repr(v) for v in allowed)
    raise InvalidParameterError(_invalid("value", parameter, extra, expected, repr(value), fix))


def _type_name(t) -> str:
    return "None" if t is None or t is type(None) else getattr(t, "__name__", str(t))


def validate_type(item, types, item_name: str, *, extra: str = "", fix: str = ""):
    """Return ``item`` if it is an instance of ``types``, else raise an error.

    Args:
        item: the value given.
        types: a type, ``None``, or a tuple of them (``(int, None)``). ``bool`` is not accepted
            where ``int`` is asked for unless ``bool`` is listed itself.
        item_name: the parameter's name.
        extra: context after the parameter's name.
        fix: a sentence appended to the message.
    """
    listed = types if isinstance(types, tuple) else (types,)
    classes = tuple(type(None) if t is None else t for t in listed)
    is_bool_as_int = isinstance(item, bool) and bool not in classes and int in classes
    if isinstance(item, classes) and not is_bool_as_int:
        return item
    names = ", ".join(_type_name(t) for t in listed)
    expected = ("Allowed types are " if len(listed) > 1 else "The only allowed type is ") + names
    got = type(item).__name__
    raise InvalidParameterError(_invalid("type", item_name, extra, expected, got, fix))


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_positive_int(value, parameter: str, *, minimum: int = 1, allow_none: bool = False,
                       extra: str = "", fix: str = ""):
    """Return ``value`` if it is an integer ``>= minimum`` (or ``None`` when allowed).

    ``bool`` is refused (``True`` is not a count).
    """
    if value is None and allow_none:
        return value
    if _is_int(value) and value >= minimum:
        return int(value)
    if minimum == 1:
        expected = "It must be a positive integer"
    elif minimum == 0:
        expected = "It must be a non-negative integer"
    else:
        expected = f"It must be an integer >= {minimum}"
    if allow_none:
        expected += " or None"
    raise InvalidParameterError(_invalid("value", parameter, extra, expected, repr(value), fix))


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_fraction(value, parameter: str, *, low: float = 0.0, high: float = 1.0,
                   low_inclusive: bool = False, high_inclusive: bool = False,
                   allow_none: bool = False, extra: str = "", fix: str = ""):
    """Return ``value`` if it is a number in the interval from ``low`` to ``high``.

    The interval is open by default, ``(0, 1)``; ``low_inclusive`` / ``high_inclusive`` close
    either end (``[0, 1)`` for a dropout probability).
    """
    if value is None and allow_none:
        return value
    if _is_real(value) and math.isfinite(value):
        above = value >= low if low_inclusive else value > low
        below = value <= high if high_inclusive else value < high
        if above and below:
            return value
    interval = f"{'[' if low_inclusive else '('}{low:g}, {high:g}{']' if high_inclusive else ')'}"
    expected = f"It must be a number in {interval}" + (" or None" if allow_none else "")
    raise InvalidParameterError(_invalid("value", parameter, extra, expected, repr(value), fix))


def check_positive_number(value, parameter: str, *, unit: str = "", allow_none: bool = False,
                          extra: str = "", fix: str = ""):
    """Return ``value`` if it is a finite number > 0 (``unit`` names it: ``"seconds"``)."""
    if value is None and allow_none:
        return value
    if _is_real(value) and math.isfinite(value) and value > 0:
        return value
    expected = "It must be a positive number" + (f" of {unit}" if unit else "")
    expected += " or None" if allow_none else ""
    raise InvalidParameterError(_invalid("value", parameter, extra, expected, repr(value), fix))


def parse_json_object(text: str, parameter: str, *, example: str = '{"dropout": 0.2}',
                      extra: str = "") -> dict:
    """``text`` parsed as a JSON object (a dict), for options such as ``--model-options``.

    Raises :class:`InvalidParameterError` for text that is not JSON, or JSON that is not an
    object, naming the parameter and showing ``example``.
    """
    import json

    try:
        value = json.loads(text)
    except (TypeError, json.JSONDecodeError) as err:
        expected = f"It must be a JSON object ({err})"
    else:
        if isinstance(value, dict):
            return value
        expected = f"It must be a JSON object, not a {type(value).__name__}"
    raise InvalidParameterError(
        _invalid("value", parameter, extra, expected, repr(text), f"For example '{example}'.")
    )
