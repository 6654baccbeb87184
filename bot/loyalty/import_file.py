"""Reading a members file (a POS export, or a file export_members wrote): its header checked,
its rows counted and the keys that may repeat found in one pass, then its rows read again
a batch at a time as they are imported, so the memory an import takes does not grow with
the file."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import TextIO

from bot.loyalty.errors import ImportFileError
from bot.loyalty.import_rows import identify, row_values
from bot.loyalty.member_csv import EXPORT_COLUMNS, IMPORT_COLUMNS


class CsvRows:
    """The data rows of a CSV file read_csv checked, read from the file as they are iterated.

    len() is the number of rows. `repeats` holds the external ids ("id") and phones
    ("phone") that may be on more than one row: every one that is, and a few others (about
    one key in a thousand for rows of 40 bytes), the only ones import_members remembers.
    Each iteration reads the file again from where read_csv began: iterate once at a time.
    """

    def __init__(self, stream: TextIO, start: int, count: int,
                 repeats: dict[str, frozenset[str]]) -> None:
        self._stream, self._start, self._count, self.repeats = stream, start, count, repeats

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[tuple[int, dict[str | None, str | None]]]:
        self._stream.seek(self._start)
        reader = csv.reader(self._stream)
        try:
            columns = _check_header(next(reader, []))
            yield from _data_rows(reader, columns)
        except csv.Error as exc:  # the file changed since read_csv read it
            raise ImportFileError(detail=f"line {reader.line_num}: {exc}") from None


def read_csv(stream: TextIO) -> CsvRows:
    """The (line number, row) pairs of a CSV file, checked and counted before any is imported.

    The header must name the import columns (phone, name, birthday, points, external_id, in
    any order) or be a file written by export_members (its points_balance is then the opening
    points, member_code also identifies a row already imported, its other columns are
    ignored). Header names are matched without regard to case or surrounding spaces, and a
    UTF-8 byte order mark is dropped. Anything else raises ImportFileError, as does a file the
    csv module cannot read (and UnicodeDecodeError one that is not in the stream's encoding);
    either way before anything is imported: the whole file is read once here, a row at a
    time, to count its rows and find the ids and phones that may repeat (see CsvRows), and
    again as it is imported. So `stream` must be seekable (a file, io.StringIO).

    Line numbers are the file's lines (the header is line 1; a quoted value spanning lines
    counts them all); empty lines are passed over. A row with too many fields has them under
    the key None and one with too few has None values, as csv.DictReader does.
    """
    start = stream.tell()
    size = stream.seek(0, io.SEEK_END) - start
    stream.seek(start)
    reader = csv.reader(stream)
    try:
        header = next(reader, None)
        if header is None:
            raise ImportFileError(detail="the file is empty (no header line)")
        count, repeats = _scan(_data_rows(reader, _check_header(header)), bits=size)
    except csv.Error as exc:
        raise ImportFileError(detail=f"line {reader.line_num}: {exc}") from None
    return CsvRows(stream, start, count, repeats)


def _data_rows(reader: Iterator[list[str]], columns: list[str]
               ) -> Iterator[tuple[int, dict[str | None, str | None]]]:
    last = reader.line_num
    for fields in reader:
        line, last = last + 1, reader.line_num
        if not any(value.strip() for value in fields):
            continue
        row: dict[str | None, str | None] = dict(
            itertools.zip_longest(columns, fields[:len(columns)]))
        if len(fields) > len(columns):
            row[None] = fields[len(columns):]
        yield line, row


def _scan(rows: Iterable[tuple[int, Mapping[str | None, object]]], bits: int
          ) -> tuple[int, dict[str, frozenset[str]]]:
    """How many rows there are, and the external ids and phones that may be on several."""
    sightings = _Sightings(bits)
    count = 0
    for line, raw in rows:
        count += 1
        values, _ = row_values(raw)
        if values is not None:
            identify(line, values, sightings)
    return count, {kind: frozenset(keys) for kind, keys in sightings.repeats.items()}


class _Sightings:
    """Notes every key in a Bloom filter of `bits` bits, to find the keys that may repeat.

    A key seen before is always caught (it goes into `repeats`); a new one is taken for
    seen now and then (with 20 bits a key, about once in a thousand), which only costs
    remembering it while importing. A million rows of 40 bytes take 5 MB instead of the
    210 MB that remembering every id and phone with its line takes."""

    HASHES = 4

    def __init__(self, bits: int) -> None:
        self._bits = bytearray(max(bits, 1024) // 8)
        self._size = len(self._bits) * 8
        self.repeats: dict[str, set[str]] = {"id": set(), "phone": set()}

    def first(self, kind: str, key: str, line: int) -> int:
        """This line: the scan reports nothing, it only collects `repeats`."""
        digest = hashlib.blake2b(f"{kind}:{key}".encode(), digest_size=16).digest()
        at, step = int.from_bytes(digest[:8]), int.from_bytes(digest[8:]) | 1
        new = False
        for _ in range(self.HASHES):
            at = (at + step) % self._size
            byte, bit = at >> 3, 1 << (at & 7)
            if not self._bits[byte] & bit:
                self._bits[byte] |= bit
                new = True
        if not new:
            self.repeats[kind].add(key)
        return line


def _check_header(header: list[str]) -> list[str]:
    names = [name.removeprefix("\ufeff").strip().lower() for name in header]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ImportFileError(detail=f"column(s) named twice: {', '.join(twice)}; the "
                              f"columns are {', '.join(IMPORT_COLUMNS)}")
    known = set(IMPORT_COLUMNS) | set(EXPORT_COLUMNS)
    unknown = [n or "(blank)" for n in names if n not in known]
    if "points" not in names and "points_balance" in names:  # an exported file
        names = ["points" if n == "points_balance" else n for n in names]
    missing = [n for n in IMPORT_COLUMNS if n not in names]
    if unknown or missing:
        parts = ([f"unknown column(s): {', '.join(unknown)}"] if unknown else []) + \
                ([f"missing column(s): {', '.join(missing)}"] if missing else [])
        raise ImportFileError(detail="; ".join(parts) + "; the columns are "
                              + ", ".join(IMPORT_COLUMNS))
    return names
