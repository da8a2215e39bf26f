"""Argument checks (eegattn.utils.check): one message shape, the accepted value returned."""

from __future__ import annotations

import re

import numpy as np
import pytest

from eegattn.utils.check import (
    InvalidParameterError,
    check_fraction,
    check_option,
    check_positive_int,
    check_positive_number,
    parse_json_object,
    validate_type,
)


def test_check_option_message_names_parameter_allowed_values_and_fix():
    assert check_option("optimizer", "adam", ("adamw", "adam", "sgd")) == "adam"
    expected = ("Invalid value for the 'optimizer' parameter. Allowed values are 'adamw', "
                "'adam', 'sgd', but got 'x'.")
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        check_option("optimizer", "x", ["adamw", "adam", "sgd"])
    with pytest.raises(ValueError, match=r"^Invalid value for the 'challenge' parameter\. The "
                       r"only allowed value is 1, but got 3\. Use 1\.$"):
        check_option("challenge", 3, {1: "c1"}, fix="Use 1.")
    with pytest.raises(ValueError, match=r"parameter for challenge 1\. Allowed"):
        check_option("target", "x", ("rt", "success"), extra="for challenge 1")


def test_validate_type():
    assert validate_type(3, (int, None), "threads") == 3
    assert validate_type(None, (int, None), "threads") is None
    with pytest.raises(TypeError, match=r"^Invalid type for the 'threads' parameter\. Allowed "
                       r"types are int, None, but got str\.$"):
        validate_type("3", (int, None), "threads")
    with pytest.raises(TypeError, match="The only allowed type is int, but got bool"):
        validate_type(True, int, "threads")
    assert validate_type(True, (bool, int), "flag") is True


@pytest.mark.parametrize("bad", [0, -1, 1.0, "2", True, None])
def test_check_positive_int_refuses(bad):
    with pytest.raises(ValueError, match=r"'n' parameter\. It must be a positive integer, but "
                       rf"got {re.escape(repr(bad))}\."):
        check_positive_int(bad, "n")


def test_check_positive_int_accepts_and_bounds():
    assert check_positive_int(np.int64(4), "n") == 4 and type(check_positive_int(np.int64(4),
                                                                               "n")) is int
    assert check_positive_int(None, "n", allow_none=True) is None
    assert check_positive_int(0, "seed", minimum=0) == 0
    with pytest.raises(ValueError, match="non-negative integer, but got -1"):
        check_positive_int(-1, "seed", minimum=0)
    with pytest.raises(ValueError, match="integer >= 2 or None, but got 1. Use 2 or more."):
        check_positive_int(1, "n_splits", minimum=2, allow_none=True, fix="Use 2 or more.")


def test_check_fraction_intervals():
    assert check_fraction(0.2, "valid_fraction") == 0.2
    assert check_fraction(0.0, "dropout", low_inclusive=True) == 0.0
    assert check_fraction(None, "f", allow_none=True) is None
    for bad in (0.0, 1.0, float("nan"), "0.5", True):
        with pytest.raises(ValueError, match=r"It must be a number in \(0, 1\), but got"):
            check_fraction(bad, "valid_fraction")
    with pytest.raises(ValueError, match=r"in \(0, 0\.5\], but got 0\.7"):
        check_fraction(0.7, "test_fraction", high=0.5, high_inclusive=True)


def test_check_positive_number():
    assert check_positive_number(2.5, "crop", unit="seconds") == 2.5
    for bad in (0, -1.0, float("inf"), "1"):
        with pytest.raises(ValueError, match="It must be a positive number of seconds, but got"):
            check_positive_number(bad, "crop", unit="seconds")


def test_errors_are_both_value_and_type_errors():
    """The command line catches ValueError; Python callers may expect TypeError for types."""
    for call in (lambda: validate_type("3", int, "n"), lambda: check_positive_int("3", "n"),
                 lambda: check_option("o", "x", ("a",))):
        with pytest.raises(InvalidParameterError) as info:
            call()
        assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


def test_parse_json_object():
    assert parse_json_object('{"dropout": 0.2}', "--model-options") == {"dropout": 0.2}
    with pytest.raises(InvalidParameterError, match=r"^Invalid value for the '--model-options' "
                       r"parameter\. It must be a JSON object \(Expecting .*\), but got "
                       r"'\{dropout: 1\}'\. For example '\{\"dropout\": 0\.2\}'\.$"):
        parse_json_object("{dropout: 1}", "--model-options")
    with pytest.raises(ValueError, match="not a list, but got '\\[1\\]'"):
        parse_json_object("[1]", "--model-options")
