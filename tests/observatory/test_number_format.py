"""The dashboard's number filter gives what Django's floatformat gives (its output is what users read)."""

from decimal import Decimal

import pytest
from django.template.defaultfilters import floatformat

from observatory.templatetags.numbers import grouped

VALUES = [0, 1, -1, 7, 999, 1000, 1234567, -1234567, 0.5, 1.5, 2.5, -2.5, 0.004, -0.004, 0.005, 1234.5678, 99999.995,
          1e-7, 123456789.123, Decimal("0.0001542"), Decimal("2.675"), Decimal("-0.0049"), Decimal("1234567.8951"),
          Decimal("0E-10"), "12.5", "3"]


@pytest.mark.parametrize("places", [0, 1, 2, 4])
@pytest.mark.parametrize("value", VALUES)
def test_grouped_is_floatformat_with_grouping(value, places):
    assert grouped(value, places) == floatformat(value, f"{places}g")


@pytest.mark.parametrize("value", ["", "n/a", float("nan"), float("inf"), float("-inf")])
def test_what_is_not_a_number_is_written_as_floatformat_writes_it(value):
    assert grouped(value) == floatformat(value, "0g")


def test_no_value_is_an_empty_cell():
    assert grouped(None) == ""
