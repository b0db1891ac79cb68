"""ILDG gauge-configuration files: LIME records, their XML, and the SciDAC checksum.

Layout written (as by QIO, the USQCD I/O library, in ILDG mode):

    message 1: scidac-private-file-xml, scidac-file-xml
    message 2: scidac-private-record-xml, scidac-record-xml, ildg-format,
               ildg-binary-data, scidac-checksum
    message 3: ildg-data-lfn

``ildg-binary-data`` holds big-endian complex numbers ordered [t][z][y][x][mu][a][b]
(mu = x, y, z, t; a row, b column), 32- or 64-bit per real number (ILDG file format 1.0,
www.lqcd.org/ildg). The SciDAC checksum (QIO's DML_checksum) takes the CRC32 of each
site's bytes as stored in the file; with r the lexicographic site rank (x fastest), it
XORs crc rotated left by r mod 29 into suma and by r mod 31 into sumb.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from npfm.events.errors import NpfmError
from npfm.events.shards import FILE_MODE
from npfm.lqcd.lime import LimeRecord, LimeWriter, find_record, read_records

ILDG_NS = "http://www.lqcd.org/ildg"
LINKS_PER_SITE = 4 * 3 * 3  # complex numbers per site
Lattice = tuple[int, int, int, int]  # (lx, ly, lz, lt)


@dataclass
class Checksum:
    """Running SciDAC checksum over sites in rank order."""

    suma: int = 0
    sumb: int = 0
    rank: int = 0

    def update(self, data: bytes, site_bytes: int) -> None:
        """Fold in consecutive whole sites of file bytes, starting at the next rank."""
        for start in range(0, len(data), site_bytes):
            crc = zlib.crc32(data[start:start + site_bytes])
            a, b = self.rank % 29, self.rank % 31
            self.suma ^= ((crc << a) | (crc >> (32 - a))) & 0xFFFFFFFF if a else crc
            self.sumb ^= ((crc << b) | (crc >> (32 - b))) & 0xFFFFFFFF if b else crc
            self.rank += 1

    def xml(self) -> bytes:
        return ('<?xml version="1.0" encoding="UTF-8"?><scidacChecksum><version>1.0</version>'
                f"<suma>{self.suma:x}</suma><sumb>{self.sumb:x}</sumb></scidacChecksum>"
                ).encode()


@dataclass
class GaugeConfig:
    """An ILDG configuration read back: links as (4, T, Z, Y, X, 3, 3) and its records."""

    u: torch.Tensor
    lattice: Lattice
    precision: int  # bits per real number
    lfn: str = ""
    file_xml: str = ""
    record_xml: str = ""
    private_file_xml: str = ""  # SciDAC: spacetime, dims, volfmt
    private_record_xml: str = ""  # SciDAC: date, datatype, precision, typesize, datacount
    suma: int = 0
    sumb: int = 0
    checksum_verified: bool = False
    records: list[LimeRecord] = field(default_factory=list)


def _xml_text(xml: str, tag: str) -> str | None:
    """Text of the first element with local name ``tag`` (namespace-agnostic)."""
    try:
        root = ET.fromstring(xml.strip().rstrip("\0"))
    except ET.ParseError:
        match = re.search(rf"<{tag}>\s*([^<]*?)\s*</{tag}>", xml)
        return match.group(1) if match else None
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == tag:
            return (element.text or "").strip()
    return None


def format_xml(lattice: Lattice, precision: int) -> bytes:
    lx, ly, lz, lt = lattice
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<ildgFormat xmlns="{ILDG_NS}" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xsi:schemaLocation="{ILDG_NS} http://www.lqcd.org/ildg/filefmt.xsd">\n'
            "<version>1.0</version>\n<field>su3gauge</field>\n"
            f"<precision>{precision}</precision>\n"
            f"<lx>{lx}</lx>\n<ly>{ly}</ly>\n<lz>{lz}</lz>\n<lt>{lt}</lt>\n</ildgFormat>\n"
            ).encode()


def _private_file_xml(lattice: Lattice) -> bytes:
    dims = " ".join(str(n) for n in lattice)
    return ('<?xml version="1.0" encoding="UTF-8"?><scidacFile><version>1.1</version>'
            f"<spacetime>4</spacetime><dims>{dims} </dims><volfmt>0</volfmt></scidacFile>"
            ).encode()


def _private_record_xml(precision: int, date: str) -> bytes:
    letter, size = ("D", 144) if precision == 64 else ("F", 72)
    return ('<?xml version="1.0" encoding="UTF-8"?><scidacRecord><version>1.1</version>'
            f"<date>{date}</date><recordtype>0</recordtype>"
            f"<datatype>QDP_{letter}3_ColorMatrix</datatype><precision>{letter}</precision>"
            f"<colors>3</colors><spins>4</spins><typesize>{size}</typesize>"
            "<datacount>4</datacount></scidacRecord>").encode()


def _dtype(precision: int) -> np.dtype:
    return np.dtype(">c16" if precision == 64 else ">c8")


def site_bytes(precision: int) -> int:
    """Bytes of one site (4 links of 3 x 3 complex numbers)."""
    return LINKS_PER_SITE * 2 * precision // 8


def _slices(u: torch.Tensor, precision: int) -> Iterator[bytes]:
    """Big-endian bytes of one time slice at a time, in ILDG order."""
    for t in range(u.shape[1]):
        block = u[:, t].permute(1, 2, 3, 0, 4, 5).contiguous().cpu().numpy()
        yield block.astype(_dtype(precision)).tobytes()


def write_config(path: Path, u: torch.Tensor, *, precision: int = 64, lfn: str = "",
                 file_xml: str = "", record_xml: str = "", date: str = "") -> Checksum:
    """Write links ``u`` (4, T, Z, Y, X, 3, 3) as an ILDG file, atomically; returns checksum."""
    if precision not in (32, 64):
        raise ValueError(f"ILDG precision must be 32 or 64, got {precision}")
    t, z, y, x = u.shape[1:5]
    lattice: Lattice = (x, y, z, t)
    checksum = Checksum()
    for block in _slices(u, precision):
        checksum.update(block, site_bytes(precision))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as fh:
            writer = LimeWriter(fh)
            writer.message([("scidac-private-file-xml", _private_file_xml(lattice)),
                            ("scidac-file-xml", file_xml.encode())])
            writer.write_record("scidac-private-record-xml", _private_record_xml(precision, date),
                                mb=True, me=False)
            writer.write_record("scidac-record-xml", record_xml.encode(), mb=False, me=False)
            writer.write_record("ildg-format", format_xml(lattice, precision), mb=False,
                                me=False)
            writer.write_record("ildg-binary-data", chunks=_slices(u, precision),
                                length=x * y * z * t * site_bytes(precision), mb=False, me=False)
            writer.write_record("scidac-checksum", checksum.xml(), mb=False, me=True)
            writer.message([("ildg-data-lfn", lfn.encode())])
        tmp.chmod(FILE_MODE)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return checksum


def read_format(path: Path, records: list[LimeRecord]) -> tuple[Lattice, int]:
    """Lattice size and precision from the ``ildg-format`` record."""
    xml = find_record(records, "ildg-format", path).read().decode(errors="replace")
    where = f"{path} record ildg-format"
    values = {tag: _xml_text(xml, tag) for tag in ("field", "precision", "lx", "ly", "lz", "lt")}
    if values["field"] != "su3gauge":
        raise NpfmError(where, f"field is {values['field']!r}, not 'su3gauge'",
                        "only SU(3) gauge configurations are read")
    try:
        lattice = tuple(int(values[k] or "") for k in ("lx", "ly", "lz", "lt"))
        precision = int(values["precision"] or "")
    except ValueError:
        raise NpfmError(where, f"missing or non-integer lattice size/precision in {values}",
                        "repair the ildg-format XML (lx, ly, lz, lt, precision)") from None
    if precision not in (32, 64):
        raise NpfmError(where, f"precision {precision}", "ILDG precision must be 32 or 64")
    return lattice, precision  # type: ignore[return-value]


def read_config(path: Path, expected: Lattice | None = None, verify: bool = True,
                chunk_sites: int = 4096) -> GaugeConfig:
    """Read an ILDG file, streaming the binary data ``chunk_sites`` sites at a time.

    Checks the data length against the lattice in ``ildg-format`` (and ``expected`` when
    given) and, when ``verify`` and the file has one, the SciDAC checksum.
    """
    path = Path(path)
    records = read_records(path)
    lattice, precision = read_format(path, records)
    if expected is not None and tuple(expected) != lattice:
        raise NpfmError(str(path), f"lattice is {'x'.join(map(str, lattice))} (lx ly lz lt), "
                        f"expected {'x'.join(map(str, expected))}",
                        "pass the configuration of the matching ensemble, or the right size")
    binary = find_record(records, "ildg-binary-data", path)
    nbytes = site_bytes(precision)
    volume = lattice[0] * lattice[1] * lattice[2] * lattice[3]
    if binary.length != volume * nbytes:
        raise NpfmError(f"{path} record ildg-binary-data",
                        f"holds {binary.length} bytes, but a {'x'.join(map(str, lattice))} "
                        f"lattice at {precision} bit needs {volume * nbytes}",
                        "the ildg-format lattice size does not match the data; fix the XML")
    flat = np.empty(volume * LINKS_PER_SITE, dtype=np.complex128 if precision == 64
                    else np.complex64)
    checksum = Checksum()
    pos = 0
    for block in binary.iter_chunks(size=chunk_sites * nbytes):
        if verify:
            checksum.update(block, nbytes)
        values = np.frombuffer(block, dtype=_dtype(precision))
        flat[pos:pos + len(values)] = values
        pos += len(values)
    lx, ly, lz, lt = lattice
    u = torch.from_numpy(flat.reshape(lt, lz, ly, lx, 4, 3, 3)).permute(4, 0, 1, 2, 3, 5, 6)
    config = GaugeConfig(u=u.contiguous(), lattice=lattice, precision=precision,
                         records=records)
    _read_metadata(path, records, config)
    if verify and any(r.type == "scidac-checksum" for r in records):
        if (checksum.suma, checksum.sumb) != (config.suma, config.sumb):
            raise NpfmError(f"{path} record scidac-checksum",
                            f"checksum mismatch: data give suma {checksum.suma:x} sumb "
                            f"{checksum.sumb:x}, record says {config.suma:x} {config.sumb:x}",
                            "the binary data are corrupted; copy the file again from its source")
        config.checksum_verified = True
    return config


def _read_metadata(path: Path, records: list[LimeRecord], config: GaugeConfig) -> None:
    by_type = {r.type: r for r in records}
    text = {k: by_type[k].read().decode(errors="replace").rstrip("\0") for k in
            ("ildg-data-lfn", "scidac-file-xml", "scidac-record-xml", "scidac-checksum",
             "scidac-private-file-xml", "scidac-private-record-xml") if k in by_type}
    config.lfn = text.get("ildg-data-lfn", "").strip()
    config.private_file_xml = text.get("scidac-private-file-xml", "")
    config.private_record_xml = text.get("scidac-private-record-xml", "")
    dims = _xml_text(config.private_file_xml, "dims") if config.private_file_xml else None
    if dims and tuple(int(d) for d in dims.split()) != config.lattice:
        raise NpfmError(f"{path} record scidac-private-file-xml", f"dims {dims} differ from "
                        f"the ildg-format lattice {config.lattice}",
                        "the file's records disagree on the lattice size; fix the XML")
    config.file_xml = text.get("scidac-file-xml", "")
    config.record_xml = text.get("scidac-record-xml", "")
    if "scidac-checksum" in text:
        try:
            config.suma = int(_xml_text(text["scidac-checksum"], "suma") or "", 16)
            config.sumb = int(_xml_text(text["scidac-checksum"], "sumb") or "", 16)
        except ValueError:
            raise NpfmError(f"{path} record scidac-checksum", "suma/sumb are not hex numbers",
                            "repair or drop the scidac-checksum record") from None
