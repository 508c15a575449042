"""Spreadsheets (XLSX with openpyxl, CSV with the csv module) into one section per data row:
"Header: value | ...", with `sheet` (XLSX) and `row` as a spreadsheet program numbers it."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

from langchain_core.documents import Document

from ingest.formats.base import Budget, LoadError, check_zip, decode_text, detail, doc, squash


def load_xlsx(path: Path) -> list[Document]:
    check_zip(path, "XLSX")
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise LoadError(f"not a valid XLSX ({detail(exc)})") from exc
    docs, budget = [], Budget("rows")
    try:
        for ws in wb.worksheets:
            ws.reset_dimensions()  # stored dimensions are often wrong; read every row
            docs += rows_to_docs(enumerate(ws.iter_rows(min_row=1, values_only=True), 1), ws.title, budget)
    except LoadError:
        raise
    except Exception as exc:
        raise LoadError(f"not a valid XLSX ({detail(exc)})") from exc
    finally:
        wb.close()
    if not docs:
        raise LoadError("no data rows in any sheet (a header row alone is not indexed)")
    return docs


def load_csv(path: Path) -> list[Document]:
    text = decode_text(path.read_bytes())
    try:
        dialect = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    try:
        docs = rows_to_docs(enumerate(csv.reader(io.StringIO(text), dialect), 1))
    except csv.Error as exc:
        raise LoadError(f"not a valid CSV ({detail(exc)})") from exc
    if not docs:
        raise LoadError("no data rows (a header row alone is not indexed)")
    return docs


def rows_to_docs(rows, sheet: str | None = None, budget: Budget | None = None) -> list[Document]:
    """(row number, values) pairs -> one "Header: value | ..." section per data row; the first
    non-empty row is the header."""
    header, docs = None, []
    budget = budget or Budget("rows")
    for number, values in rows:
        budget.tick()
        cells = [_cell_str(v) for v in values]
        if not any(cells):
            continue
        if header is None:
            header = cells
            continue
        parts = [f"{header[i] if i < len(header) and header[i] else f'Column {i + 1}'}: {v}"
                 for i, v in enumerate(cells) if v]
        docs.append(doc(" | ".join(parts), sheet=sheet, row=number))
    return docs


def _cell_str(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return squash(str(value))
