"""LIME container files (as used by ILDG and SciDAC/QIO), read and written from scratch.

A LIME file is a sequence of records. Each record is a 144-byte big-endian header
followed by its data, zero-padded to a multiple of 8 bytes:

    u32 magic 0x456789AB | u16 version (1) | u16 flags (bit 15 MB, bit 14 ME)
    u64 data length (bytes, without padding) | 128-byte NUL-padded type string

MB/ME mark the first/last record of a message (a group of records). Reference: the
c-lime library of USQCD (B. Joo, C. DeTar et al., "LIME: Lattice QCD Interchange Message
Encapsulation"). Records are read lazily: ``LimeRecord.iter_chunks`` streams the data, so
files far larger than memory can be read.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from npfm.events.errors import NpfmError

MAGIC = 0x456789AB
VERSION = 1
HEADER = struct.Struct(">IHHQ128s")  # 144 bytes
MB_FLAG = 1 << 15
ME_FLAG = 1 << 14
CHUNK = 1 << 20  # streaming read size, bytes


def padding(length: int) -> int:
    """Zero bytes that follow ``length`` data bytes so the next header is 8-aligned."""
    return (-length) % 8


@dataclass(frozen=True)
class LimeRecord:
    """One record of a LIME file: its header and where its data lie (not the data)."""

    path: Path
    index: int  # position in the file, 0-based
    type: str
    length: int  # data bytes, without padding
    offset: int  # file offset of the first data byte
    mb: bool
    me: bool

    def read(self) -> bytes:
        """The whole data of the record (use ``iter_chunks`` for large records)."""
        return b"".join(self.iter_chunks())

    def iter_chunks(self, size: int = CHUNK, start: int = 0,
                    length: int | None = None) -> Iterator[bytes]:
        """Data bytes ``[start, start + length)`` of the record, ``size`` bytes at a time."""
        remaining = self.length - start if length is None else length
        with open(self.path, "rb") as fh:
            fh.seek(self.offset + start)
            while remaining > 0:
                block = fh.read(min(size, remaining))
                if not block:
                    raise NpfmError(f"{self.path} record {self.index} ({self.type})",
                                    f"truncated: data ends {remaining} bytes early",
                                    "the file was cut short; copy it again from its source")
                remaining -= len(block)
                yield block


def _read_header(fh: BinaryIO, path: Path, index: int) -> tuple[int, int, str] | None:
    raw = fh.read(HEADER.size)
    if not raw:
        return None
    where = f"{path} record {index}"
    if len(raw) < HEADER.size:
        raise NpfmError(where, f"truncated header ({len(raw)} of {HEADER.size} bytes)",
                        "the file was cut short; copy it again from its source")
    magic, version, flags, length, type_raw = HEADER.unpack(raw)
    if magic != MAGIC:
        raise NpfmError(where, f"bad LIME magic 0x{magic:08X} (expected 0x{MAGIC:08X})",
                        "this is not a LIME/ILDG file, or it is corrupted")
    if version != VERSION:
        raise NpfmError(where, f"unsupported LIME version {version}",
                        "only LIME version 1 files are read")
    return flags, length, type_raw.rstrip(b"\0").decode("ascii", errors="replace")


def iter_records(path: Path) -> Iterator[LimeRecord]:
    """Headers of all records in file order, checking that each record's data is present."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        index = 0
        while (header := _read_header(fh, path, index)) is not None:
            flags, length, type_ = header
            offset = fh.tell()
            end = offset + length + padding(length)
            if offset + length > size:
                raise NpfmError(f"{path} record {index} ({type_})",
                                f"truncated: header promises {length} data bytes, file holds "
                                f"{size - offset}", "the file was cut short; copy it again")
            yield LimeRecord(path, index, type_, length, offset, bool(flags & MB_FLAG),
                             bool(flags & ME_FLAG))
            fh.seek(min(end, size))
            index += 1


def read_records(path: Path) -> list[LimeRecord]:
    """All record headers of a LIME file."""
    return list(iter_records(path))


def find_record(records: list[LimeRecord], type_: str, path: Path) -> LimeRecord:
    """The first record of a type, or an error naming the missing record."""
    for record in records:
        if record.type == type_:
            return record
    raise NpfmError(str(path), f"no '{type_}' record",
                    "the file is not a complete ILDG configuration; write it with an ILDG "
                    "writer (e.g. npfm lqcd convert)")


class LimeWriter:
    """Writes records to an open binary file; ``message`` groups records (MB/ME flags)."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh

    def write_record(self, type_: str, data: bytes | None = None, *, mb: bool, me: bool,
                     chunks: Iterator[bytes] | None = None, length: int | None = None
                     ) -> None:
        """One record from ``data``, or streamed from ``chunks`` totalling ``length`` bytes."""
        encoded = type_.encode("ascii")
        if len(encoded) > 128:
            raise ValueError(f"LIME type longer than 128 bytes: {type_!r}")
        if data is not None:
            length, chunks = len(data), iter([data])
        if chunks is None or length is None:
            raise ValueError("give data, or chunks with their total length")
        flags = (MB_FLAG if mb else 0) | (ME_FLAG if me else 0)
        self.fh.write(HEADER.pack(MAGIC, VERSION, flags, length, encoded))
        written = 0
        for block in chunks:
            self.fh.write(block)
            written += len(block)
        if written != length:
            raise ValueError(f"record {type_}: wrote {written} bytes, header says {length}")
        self.fh.write(b"\0" * padding(length))

    def message(self, records: list[tuple[str, bytes]]) -> None:
        """Records ``(type, data)`` as one message: MB on the first, ME on the last."""
        for i, (type_, data) in enumerate(records):
            self.write_record(type_, data, mb=i == 0, me=i == len(records) - 1)
