"""Stata ``.dta`` (format 118) and SPSS ``.sav`` files written in chunks, so memory stays flat in
the number of rows.

pyreadstat writes each file from a one-row template: the header, the variables with their labels,
formats and value labels, everything but the rows. The rows are then streamed in the layout both
formats use for uncompressed data (numbers as little-endian doubles, strings padded to the
variable's width, the template's own encoding of a missing value), and the header is patched: the
number of rows, the section offsets (.dta) and the creation time, set to a given moment so that
the same data always gives the same bytes. A test checks the result equals, byte for byte, what
pyreadstat writes from the whole table at once.
"""

from __future__ import annotations

import datetime as dt
import struct
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

Format = Literal["dta", "sav"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DTA_DOUBLE = 65526
_SAV_CASES64 = struct.pack("<iiii", 7, 16, 8, 2)
_SAV_MAX_STRING = 255  # longer strings are split into segments, which this writer does not do
_LABEL_LIMIT = {"dta": 80, "sav": 255}
_VALUE_LABEL_LIMIT = {"dta": 32000, "sav": 120}


@dataclass(frozen=True)
class StatColumn:
    name: str
    label: str
    kind: Literal["number", "string"]
    width: int = 0  # strings: the most bytes a value may have (UTF-8)
    value_labels: dict[int, str] = field(default_factory=dict)


class StatFileError(ValueError):
    pass


def _clip(text: str, limit: int) -> str:
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode(errors="ignore")


def _template(fmt: Format, path: Path, columns: Sequence[StatColumn], file_label: str) -> bytes:
    import pandas as pd
    import pyreadstat

    row: dict[str, Any] = {}
    for column in columns:
        if column.kind == "string":
            if column.width < 1 or (fmt == "sav" and column.width > _SAV_MAX_STRING):
                raise StatFileError(f"{column.name}: string width {column.width} is not supported.")
            row[column.name] = pd.Series(["X" * column.width], dtype=object)
        else:
            row[column.name] = pd.Series([np.nan], dtype="float64")
    frame = pd.DataFrame(row)
    labels: dict[str, str | None] = {c.name: _clip(c.label, _LABEL_LIMIT[fmt]) for c in columns}
    value_labels: dict[str, dict[int | float, str]] = {
        c.name: {value: _clip(text, _VALUE_LABEL_LIMIT[fmt]) for value, text in c.value_labels.items()}
        for c in columns
        if c.value_labels
    }
    if fmt == "dta":
        pyreadstat.write_dta(
            frame, path, file_label=_clip(file_label, 80), column_labels=labels, version=14, variable_value_labels=value_labels
        )
    else:
        measure = {c.name: "nominal" for c in columns if c.value_labels or c.kind == "string"}
        pyreadstat.write_sav(
            frame,
            path,
            file_label=_clip(file_label, 64),
            column_labels=labels,
            variable_value_labels=value_labels,
            variable_measure=measure,
        )
    return path.read_bytes()


@dataclass
class _Layout:
    head: bytearray  # everything before the first row
    tail: bytes  # everything after the last row (.dta only)
    fields: list[tuple[int, int, bytes]]  # per column: offset in the row, size, missing value (numbers)
    row_size: int


def _dta_layout(data: bytes, columns: Sequence[StatColumn]) -> _Layout:
    start = data.index(b"<map>") + 5
    offsets = struct.unpack("<14Q", data[start : start + 112])
    rows_start, rows_end = offsets[9] + len(b"<data>"), offsets[10] - len(b"</data>")
    if data[offsets[9] : rows_start] != b"<data>" or data[rows_end : offsets[10]] != b"</data>":
        raise StatFileError("Unexpected .dta layout.")
    types_at = data.index(b"<variable_types>") + len(b"<variable_types>")
    types = struct.unpack(f"<{len(columns)}H", data[types_at : types_at + 2 * len(columns)])
    fields, at = [], 0
    for column, code in zip(columns, types, strict=True):
        size = 8 if column.kind == "number" else column.width
        if (column.kind == "number" and code != _DTA_DOUBLE) or (column.kind == "string" and code != column.width):
            raise StatFileError(f"{column.name}: unexpected .dta type {code}.")
        fields.append((at, size, data[rows_start + at : rows_start + at + size] if column.kind == "number" else b""))
        at += size
    if at != rows_end - rows_start:
        raise StatFileError("Unexpected .dta row size.")
    return _Layout(bytearray(data[:rows_start]), data[rows_end:], fields, at)


def _sav_layout(data: bytes, columns: Sequence[StatColumn]) -> _Layout:
    layout_code, slots, compression = struct.unpack("<iii", data[64:76])
    if layout_code != 2 or compression != 0:
        raise StatFileError("Unexpected .sav header.")
    row_size = slots * 8
    rows_start = len(data) - row_size
    if data[rows_start - 8 : rows_start] != struct.pack("<ii", 999, 0):
        raise StatFileError("Unexpected .sav layout.")
    fields, at = [], 0
    for column in columns:
        size = 8 if column.kind == "number" else -(-column.width // 8) * 8
        fields.append((at, size, data[rows_start + at : rows_start + at + size] if column.kind == "number" else b""))
        at += size
    if at != row_size:
        raise StatFileError("Unexpected .sav row size.")
    return _Layout(bytearray(data[:rows_start]), b"", fields, row_size)


def _encode(fmt: Format, layout: _Layout, columns: Sequence[StatColumn], chunk: Sequence[Sequence[Any]]) -> bytes:
    """Rows (given column by column) in the file's fixed-width layout."""
    count = len(chunk[0]) if chunk else 0
    dtype = np.dtype(
        {
            "names": [f"c{i}" for i in range(len(columns))],
            "formats": [
                "<u8" if c.kind == "number" else f"S{size}" for c, (_, size, _) in zip(columns, layout.fields, strict=True)
            ],
            "offsets": [offset for offset, _, _ in layout.fields],
            "itemsize": layout.row_size,
        }
    )
    rows = np.zeros(count, dtype=dtype)
    for index, (column, values, (_, size, missing)) in enumerate(zip(columns, chunk, layout.fields, strict=True)):
        name = f"c{index}"
        if column.kind == "number":
            numbers = np.array([np.nan if v is None else float(v) for v in values], dtype="<f8")
            bits = numbers.view("<u8").copy()
            bits[np.isnan(numbers)] = np.frombuffer(missing, dtype="<u8")[0]
            rows[name] = bits
        else:
            encoded = []
            for value in values:
                text = b"" if value is None else str(value).encode()
                if len(text) > column.width:
                    raise StatFileError(f"{column.name}: a value is longer than {column.width} bytes.")
                encoded.append(text.ljust(size, b" ") if fmt == "sav" else text)
            rows[name] = encoded
    return rows.tobytes()


def _stamp(fmt: Format, head: bytearray, rows: int, extra_bytes: int, created: dt.datetime) -> None:
    """Patch the row count, the offsets after the rows (.dta) and the creation time into ``head``."""
    if fmt == "dta":
        at = head.index(b"<N>") + 3
        head[at : at + 8] = struct.pack("<Q", rows)
        at = head.index(b"<timestamp>") + len(b"<timestamp>")
        text = (
            f"{created.day:02d} {_MONTHS[created.month - 1]} {created.year:04d} {created.hour:02d}:{created.minute:02d}".encode()
        )
        if head[at] != len(text):
            raise StatFileError("Unexpected .dta timestamp.")
        head[at + 1 : at + 1 + len(text)] = text
        start = head.index(b"<map>") + 5
        offsets = list(struct.unpack("<14Q", head[start : start + 112]))
        offsets[10:14] = [offset + extra_bytes for offset in offsets[10:14]]
        head[start : start + 112] = struct.pack("<14Q", *offsets)
    else:
        head[80:84] = struct.pack("<i", rows)
        # The extended case count (record 7, subtype 16): 1, then the count, as 64-bit integers.
        at = head.find(_SAV_CASES64)
        if at >= 0:
            head[at + len(_SAV_CASES64) + 8 : at + len(_SAV_CASES64) + 16] = struct.pack("<q", rows)
        head[92:101] = f"{created.day:02d} {_MONTHS[created.month - 1]} {created.year % 100:02d}".encode()
        head[101:109] = f"{created.hour:02d}:{created.minute:02d}:{created.second:02d}".encode()


def write_stat_files(
    *,
    targets: dict[Format, BinaryIO],
    columns: Sequence[StatColumn],
    chunks: Iterable[Sequence[Sequence[Any]]],
    file_label: str,
    created: dt.datetime,
) -> int:
    """Write the rows (chunks of column-major values: numbers or None, strings or None) to each
    target, a seekable binary file; return the number of rows."""
    layouts: dict[Format, _Layout] = {}
    with tempfile.TemporaryDirectory(prefix="statfile-") as work:
        for fmt in targets:
            layouts[fmt] = (_dta_layout if fmt == "dta" else _sav_layout)(
                _template(fmt, Path(work) / f"template.{fmt}", columns, file_label), columns
            )
    for fmt, target in targets.items():
        target.write(layouts[fmt].head)
    rows = 0
    for chunk in chunks:
        for fmt, target in targets.items():
            target.write(_encode(fmt, layouts[fmt], columns, chunk))
        rows += len(chunk[0]) if chunk else 0
    for fmt, target in targets.items():
        layout = layouts[fmt]
        target.write(layout.tail)
        _stamp(fmt, layout.head, rows, (rows - 1) * layout.row_size, created)
        target.seek(0)
        target.write(layout.head)
        target.seek(0, 2)
    return rows
