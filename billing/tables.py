"""Every table the app lets people download — the dashboard's CSVs and the chargeback and FOCUS exports, from pages
and from the API — is written here: one CSV writer and one XLSX writer, so what a cell may become is decided once.

A table is its column names in order and its rows as dicts (a list, or an iterator read once, row by row: a CSV
streams as it is read, an XLSX goes through a temporary file, so memory stays flat however long the table is).

What a value becomes is decided by its Python type, never by how it looks:

- `int`, `float` and `Decimal` are numbers. The CSV holds their digits (a Decimal as plain '0.0000000001', never
  '1E-10'; a negative number as '-1.5'); the XLSX a number cell (a Decimal's exact digits).
- `str` is text, and text comes from ingested spans (model, team, feature, user names) that anyone with an API key
  controls. Text starting with `=`, `+`, `-`, `@`, tab or carriage return is what a spreadsheet would run as a
  formula (`=HYPERLINK("http://evil","x")`), so the CSV writes it behind a `'` — the mark spreadsheets show as
  "this is text" — and the XLSX writes it as a text cell, marked quote-prefixed so that editing it keeps it
  text. A string that looks like a number ('-1.5') is still text and is escaped the same: numbers reach the
  writers as numbers.
- `None` is an empty cell; dates and datetimes are ISO 8601 text.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import BinaryIO

from django.http import FileResponse, StreamingHttpResponse
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_CHUNK = 64 * 1024  # characters per streamed piece: few writes to the socket, little memory
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_MONEY_FORMAT = '"$"#,##0.00########'


@dataclass(frozen=True)
class Table:
    """Column names in order, rows as dicts keyed by them; `money` names the columns holding US dollars."""

    columns: Sequence[str]
    rows: Iterable[Mapping[str, object]]
    money: Collection[str] = ()


def is_number(value: object) -> bool:
    return isinstance(value, int | float | Decimal)


def as_text(value: object) -> str:
    """A non-number as the text a cell shows: '' for None, ISO 8601 for dates."""
    if value is None:
        return ""
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    return str(value)


def csv_cell(value: object) -> str:
    """One CSV field: a number's digits, or text with a leading ' where a spreadsheet would see a formula."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if is_number(value):
        return str(value)
    text = as_text(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_lines(table: Table) -> Iterator[str]:
    """The CSV (header first) in pieces of about CSV_CHUNK characters, reading the rows as it goes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([csv_cell(name) for name in table.columns])
    for row in table.rows:
        writer.writerow([csv_cell(row[name]) for name in table.columns])
        if buffer.tell() >= CSV_CHUNK:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def write_xlsx(table: Table, file: BinaryIO, sheet: str) -> None:
    """One worksheet, bold frozen header, into a binary `file`: numbers as number cells (dollar columns shown
    as dollars), everything else as text cells that are never formulas."""
    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(sheet[:31])  # Excel's limit on sheet names
    worksheet.freeze_panes = "A2"
    for index, name in enumerate(table.columns, start=1):
        worksheet.column_dimensions[get_column_letter(index)].width = max(10, min(40, len(name) + 2))

    def cell(value: object, money: bool = False) -> WriteOnlyCell:
        if is_number(value):
            out = WriteOnlyCell(worksheet, value=value)
            if money:
                out.number_format = XLSX_MONEY_FORMAT
            return out
        text = ILLEGAL_CHARACTERS_RE.sub("", as_text(value))  # control characters are not allowed in a sheet
        out = WriteOnlyCell(worksheet, value=text or None)
        if text:
            out.data_type = "s"  # openpyxl would otherwise store "=..." as a formula and "#N/A" as an error
            if text.startswith(FORMULA_STARTS):
                out.quotePrefix = True
        return out

    header = [cell(name) for name in table.columns]
    for heading in header:
        heading.font = Font(bold=True)
    worksheet.append(header)
    money = set(table.money)
    for row in table.rows:
        worksheet.append([cell(row[name], money=name in money) for name in table.columns])
    workbook.save(file)


def json_rows(table: Table) -> list[dict]:
    """Rows for a JSON body: money and other Decimals as exact decimal strings, never floats."""
    return [{name: format(row[name], "f") if isinstance(row[name], Decimal) else row[name] for name in table.columns}
            for row in table.rows]


def csv_response(table: Table, filename: str) -> StreamingHttpResponse:
    """The table as a CSV download, streamed while the rows are read."""
    response = StreamingHttpResponse(csv_lines(table), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def xlsx_response(table: Table, filename: str, sheet: str) -> FileResponse:
    """The table as an Excel download, built in a temporary file that is deleted once sent."""
    file = tempfile.TemporaryFile()  # FileResponse closes it once sent, which deletes it
    try:
        write_xlsx(table, file, sheet)
    except BaseException:
        file.close()
        raise
    file.seek(0)
    return FileResponse(file, as_attachment=True, filename=filename, content_type=XLSX_TYPE)
