"""Feature rows from a CSV file, cut into request-sized batches, without ever holding the file in memory.

A 1,000,000-row file streams through: the reader yields one row at a time, a batch holds at most
`max_rows` rows (the service's per-request limit) and `max_bytes` of JSON (Lambda's payload limit), and is
sent and dropped before the next is read.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import orjson

from deployment_model.local.client import ClientError
from deployment_model.local.server import MAX_BODY_BYTES

# x_test's share of a request body: the rest (names, version) is small, and the margin keeps clear of the limit.
DEFAULT_MAX_BATCH_BYTES = MAX_BODY_BYTES - 256 * 1024


class CountingReader(io.RawIOBase):
    """A binary file that counts the bytes read through it (for a progress bar over the file's size)."""

    def __init__(self, raw: BinaryIO, on_read: Callable[[int], None]) -> None:
        super().__init__()
        self._raw, self._on_read = raw, on_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        self._on_read(len(data))
        return len(data)


@dataclass(frozen=True)
class CsvRows:
    """The header's feature columns and a lazy iterator over their values, one float row at a time."""

    columns: list[str]
    rows: Iterator[list[float]]


def read_feature_rows(binary: BinaryIO, source: str, features: Sequence[str] | None = None) -> CsvRows:
    """Rows of the named feature columns (all columns when none are named), in that order.

    The first line is the header. A cell that is not a finite number is an error naming its line and column.
    """
    text = io.TextIOWrapper(
        io.BufferedReader(binary) if isinstance(binary, io.RawIOBase) else binary, encoding="utf-8-sig", newline=""
    )
    reader = csv.reader(text)
    try:
        first = next(reader, None)
        if first is None or _blank(first):
            if first is None or all(_blank(cells) for cells in reader):
                raise ClientError(
                    f"{source} has no rows: its first line must name the feature columns, then one row of values "
                    "per line"
                )
            raise ClientError(f"{source} line 1 is blank: its first line must name the feature columns")
    except (UnicodeDecodeError, csv.Error) as error:
        raise ClientError(f"{source} is not a readable UTF-8 CSV file: {error}") from None
    header = [name.strip() for name in first]
    wanted = list(features) if features else header
    missing = [name for name in wanted if name not in header]
    if missing:
        raise ClientError(
            f"{source} has no column {', '.join(map(repr, missing))}; its header names {', '.join(header)}"
        )
    indexes = [header.index(name) for name in wanted]
    hint = "" if features else " (name the feature columns with --columns)"
    rows = _rows(reader, indexes, wanted, len(header), source, hint)
    first_row = next(rows, None)  # read now: a file with nothing to predict is refused before anything is sent
    if first_row is None:
        raise ClientError(f"{source} has a header but no rows: add one row of values per line under it")
    return CsvRows(wanted, itertools.chain([first_row], rows))


def _blank(cells: list[str]) -> bool:
    """A blank line, as the csv module reads it (e.g. at the end of the file)."""
    return not cells or (len(cells) == 1 and not cells[0].strip())


def _rows(
    reader: Iterable[list[str]], indexes: list[int], names: list[str], width: int, source: str, hint: str
) -> Iterator[list[float]]:
    line = 1
    try:
        for line, cells in enumerate(reader, start=2):
            if _blank(cells):
                continue
            if len(cells) != width:
                raise ClientError(f"{source} line {line}: {len(cells)} cells, the header has {width}")
            row = []
            for index, name in zip(indexes, names, strict=True):
                try:
                    value = float(cells[index])
                except ValueError:
                    raise ClientError(
                        f"{source} line {line}, column {name!r}: {cells[index]!r} is not a number{hint}"
                    ) from None
                if not math.isfinite(value):
                    raise ClientError(f"{source} line {line}, column {name!r}: {cells[index]!r} is not a finite number")
                row.append(value)
            yield row
    except (UnicodeDecodeError, csv.Error) as error:
        raise ClientError(f"{source} line {line + 1}: not readable as UTF-8 CSV: {error}") from None


@dataclass(frozen=True)
class Batch:
    """Rows ready to send: `x_test` as JSON text, and how many rows it holds."""

    x_test: bytes
    rows: int


def max_rows_per_request() -> int:
    """The service's row limit (imported on demand: the API's schemas load scikit-learn, a second's work)."""
    from deployment_model.api.schemas import MAX_ROWS_PER_REQUEST

    return MAX_ROWS_PER_REQUEST


def batches(
    rows: Iterable[Sequence[float]], max_rows: int, max_bytes: int = DEFAULT_MAX_BATCH_BYTES
) -> Iterator[Batch]:
    """Consecutive batches of at most `max_rows` rows and `max_bytes` of JSON, pulled from `rows` as needed."""
    if not 1 <= max_rows <= (limit := max_rows_per_request()):
        raise ClientError(f"a batch holds 1 to {limit} rows; got {max_rows}")
    parts: list[bytes] = []
    size = 2  # the brackets
    for row in rows:
        encoded = orjson.dumps(list(row))
        if parts and (len(parts) == max_rows or size + len(encoded) + 1 > max_bytes):
            yield Batch(b"[" + b",".join(parts) + b"]", len(parts))
            parts, size = [], 2
        parts.append(encoded)
        size += len(encoded) + 1
    if parts:
        yield Batch(b"[" + b",".join(parts) + b"]", len(parts))
