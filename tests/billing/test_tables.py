"""The one CSV and XLSX writer behind every download: text that a spreadsheet would run as a formula stays text,
numbers stay numbers, and a long table is written as it is read (no database)."""

import csv
import io
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from billing.tables import Table, csv_cell, csv_lines, json_rows, write_xlsx

HYPERLINK = '=HYPERLINK("http://evil","x")'


@pytest.mark.parametrize(("value", "cell"), [
    (HYPERLINK, f"'{HYPERLINK}"),
    ("+SUM(1,2)", "'+SUM(1,2)"),
    ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    ("-1.5", "'-1.5"),  # text that looks like a number is still text
    ("gpt-4o-mini", "gpt-4o-mini"),
    ("a=b", "a=b"),
    ("", ""),
    (None, ""),
    (Decimal("-1.5"), "-1.5"),  # a number, negative or not, is written as its digits
    (Decimal("1E-10"), "0.0000000001"),
    (Decimal("1.2500000001"), "1.2500000001"),
    (-3, "-3"),
    (-0.25, "-0.25"),
    (date(2026, 11, 1), "2026-11-01"),
    (datetime(2026, 11, 1, 12, 30, tzinfo=UTC), "2026-11-01T12:30:00+00:00"),
])
def test_a_csv_cell_is_a_number_or_text_that_no_spreadsheet_runs(value, cell):
    assert csv_cell(value) == cell


def test_the_csv_has_the_header_then_a_line_per_row():
    table = Table(["model", "calls", "cost_usd"], [
        {"model": HYPERLINK, "calls": 3, "cost_usd": Decimal("0.0012345678")},
        {"model": "gpt-4o, mini", "calls": 0, "cost_usd": Decimal(0)},
    ])
    rows = list(csv.reader(io.StringIO("".join(csv_lines(table)))))
    assert rows == [["model", "calls", "cost_usd"], [f"'{HYPERLINK}", "3", "0.0012345678"], ["gpt-4o, mini", "0", "0"]]


def test_the_csv_is_written_while_the_rows_are_read():
    read = 0

    def rows():
        nonlocal read
        for n in range(100_000):
            read += 1
            yield {"model": f"model-{n}", "cost_usd": Decimal(n)}

    pieces = csv_lines(Table(["model", "cost_usd"], rows()))
    first = next(pieces)
    assert first.startswith("model,cost_usd\r\nmodel-0,0\r\n")
    assert read < 10_000  # the first piece went out long before the last row was read
    assert sum(len(piece) for piece in pieces) + len(first) > 1_000_000


def _sheet(table: Table):
    file = io.BytesIO()
    write_xlsx(table, file, sheet="chargeback 2026-11")
    return file, load_workbook(io.BytesIO(file.getvalue()))["chargeback 2026-11"]


def test_xlsx_text_is_never_a_formula_and_numbers_are_numbers():
    table = Table(["model", "team", "error", "calls", "cost_usd", "share"], [
        {"model": HYPERLINK, "team": "+growth", "error": "#N/A", "calls": 7, "cost_usd": Decimal("1.2500000001"),
         "share": -1.5},
        {"model": "-1.5", "team": None, "error": "bad\x01byte", "calls": 0, "cost_usd": Decimal(0), "share": 0.0},
    ], money=["cost_usd"])
    file, sheet = _sheet(table)
    header, first, second = sheet.iter_rows(min_row=1, max_row=3)
    assert [cell.value for cell in header] == ["model", "team", "error", "calls", "cost_usd", "share"]
    assert [(cell.data_type, cell.value) for cell in first] == [
        ("s", HYPERLINK), ("s", "+growth"), ("s", "#N/A"), ("n", 7), ("n", 1.2500000001), ("n", -1.5)]
    assert first[0].quotePrefix and first[1].quotePrefix and not first[2].quotePrefix
    assert [(cell.data_type, cell.value) for cell in second][:3] == [("s", "-1.5"), ("n", None), ("s", "badbyte")]
    assert first[4].number_format.startswith('"$"') and not first[3].number_format.startswith('"$"')
    assert header[0].font.bold and sheet.freeze_panes == "A2"
    with zipfile.ZipFile(file) as workbook:
        assert "<f>" not in workbook.read("xl/worksheets/sheet1.xml").decode()


def test_xlsx_keeps_a_decimals_digits():
    _, sheet = _sheet(Table(["cost_usd"], [{"cost_usd": Decimal("0.0012345678")}, {"cost_usd": Decimal("1.2500000001")}]))
    costs = [Decimal(str(value)) for (value,) in sheet.iter_rows(min_row=2, values_only=True)]
    assert costs == [Decimal("0.0012345678"), Decimal("1.2500000001")]


def test_json_rows_carry_money_as_decimal_strings():
    table = Table(["model", "calls", "cost_usd"], iter([{"model": HYPERLINK, "calls": 2, "cost_usd": Decimal("1E-10")}]))
    assert json_rows(table) == [{"model": HYPERLINK, "calls": 2, "cost_usd": "0.0000000001"}]
