"""ILDG/LIME writer and reader: bit-identical roundtrip, SciDAC checksum, clear errors."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from npfm.events.errors import NpfmError
from npfm.lqcd import ildg, lime
from npfm.lqcd.su3 import random_field

LATTICE = (4, 2, 2, 6)  # lx, ly, lz, lt: unequal extents catch axis mix-ups


@pytest.fixture
def field() -> torch.Tensor:
    return random_field(LATTICE, torch.Generator().manual_seed(7))


def _patch(path: Path, offset: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset:offset + len(data)] = data
    path.write_bytes(bytes(raw))


def test_roundtrip_is_bit_identical_with_matching_checksum(tmp_path: Path,
                                                           field: torch.Tensor) -> None:
    first = tmp_path / "a.lime"
    written = ildg.write_config(first, field, lfn="lfn://test/a", file_xml="<f/>",
                                record_xml="<r/>")
    config = ildg.read_config(first, expected=LATTICE)
    assert config.checksum_verified
    assert (config.suma, config.sumb) == (written.suma, written.sumb)
    assert config.lattice == LATTICE
    assert config.precision == 64
    assert "<dims>4 2 2 6 </dims>" in config.private_file_xml
    assert "<datatype>QDP_D3_ColorMatrix</datatype>" in config.private_record_xml
    assert config.lfn == "lfn://test/a"
    assert config.file_xml == "<f/>"
    assert torch.equal(config.u, field)  # every bit of every link
    second = tmp_path / "b.lime"
    ildg.write_config(second, config.u, lfn=config.lfn, file_xml=config.file_xml,
                      record_xml=config.record_xml)
    assert first.read_bytes() == second.read_bytes()


def test_single_precision_roundtrip(tmp_path: Path, field: torch.Tensor) -> None:
    path = tmp_path / "f.lime"
    ildg.write_config(path, field, precision=32)
    config = ildg.read_config(path)
    assert config.precision == 32
    assert config.checksum_verified
    assert torch.equal(config.u, field.to(torch.complex64))


def test_binary_layout_is_big_endian_t_z_y_x_mu_row_col(tmp_path: Path,
                                                        field: torch.Tensor) -> None:
    path = tmp_path / "a.lime"
    ildg.write_config(path, field)
    binary = lime.find_record(lime.read_records(path), "ildg-binary-data", path)
    raw = np.frombuffer(binary.read(), dtype=">c16")
    lx, ly, lz, _ = LATTICE
    x, y, z, t, mu, a, b = 3, 1, 0, 5, 2, 1, 2
    index = (((((t * lz + z) * ly + y) * lx + x) * 4 + mu) * 3 + a) * 3 + b
    assert raw[index] == field[mu, t, z, y, x, a, b].item()


def test_scidac_checksum_follows_qio_definition() -> None:
    """Two sites by hand: suma = rotl(crc0, 0) ^ rotl(crc1, 1), likewise sumb."""
    site0, site1 = bytes(range(16)), bytes(range(16, 32))
    c0, c1 = zlib.crc32(site0), zlib.crc32(site1)
    rot1 = ((c1 << 1) | (c1 >> 31)) & 0xFFFFFFFF
    checksum = ildg.Checksum()
    checksum.update(site0 + site1, 16)
    assert checksum.suma == c0 ^ rot1
    assert checksum.sumb == c0 ^ rot1
    checksum.update(b"\x01" * 16 * 29, 16)  # ranks 2..30: rank 29 wraps mod 29 only
    crc = zlib.crc32(b"\x01" * 16)
    expected_a, expected_b = c0 ^ rot1, c0 ^ rot1
    for rank in range(2, 31):
        ka, kb = rank % 29, rank % 31
        expected_a ^= ((crc << ka) | (crc >> (32 - ka))) & 0xFFFFFFFF if ka else crc
        expected_b ^= ((crc << kb) | (crc >> (32 - kb))) & 0xFFFFFFFF if kb else crc
    assert (checksum.suma, checksum.sumb) == (expected_a, expected_b)


def test_streaming_reads_in_chunks(tmp_path: Path, field: torch.Tensor) -> None:
    path = tmp_path / "a.lime"
    ildg.write_config(path, field)
    binary = lime.find_record(lime.read_records(path), "ildg-binary-data", path)
    blocks = list(binary.iter_chunks(size=1000))
    assert max(len(b) for b in blocks) == 1000
    assert sum(map(len, blocks)) == binary.length
    odd_chunks = ildg.read_config(path, chunk_sites=5)  # 5 does not divide the volume
    assert torch.equal(odd_chunks.u, field)
    assert odd_chunks.checksum_verified


def test_records_are_8_byte_aligned_with_message_flags(tmp_path: Path,
                                                       field: torch.Tensor) -> None:
    path = tmp_path / "a.lime"
    ildg.write_config(path, field, lfn="odd-length")
    records = lime.read_records(path)
    assert all(r.offset % 8 == 0 for r in records)
    assert [r.type for r in records][-3:] == ["ildg-binary-data", "scidac-checksum",
                                              "ildg-data-lfn"]
    assert [(r.mb, r.me) for r in records if r.type == "ildg-data-lfn"] == [(True, True)]
    assert path.stat().st_size % 8 == 0


def test_bad_magic(tmp_path: Path, field: torch.Tensor) -> None:
    path = tmp_path / "a.lime"
    ildg.write_config(path, field)
    _patch(path, 0, struct.pack(">I", 0xDEADBEEF))
    with pytest.raises(NpfmError, match="record 0: bad LIME magic 0xDEADBEEF"):
        ildg.read_config(path)


def test_truncated_record(tmp_path: Path, field: torch.Tensor) -> None:
    path = tmp_path / "a.lime"
    ildg.write_config(path, field)
    binary = lime.find_record(lime.read_records(path), "ildg-binary-data", path)
    path.write_bytes(path.read_bytes()[:binary.offset + binary.length // 2])
    with pytest.raises(NpfmError, match=r"ildg-binary-data\): truncated"):
        ildg.read_config(path)


def test_checksum_mismatch(tmp_path: Path, field: torch.Tensor) -> None:
    path = tmp_path / "a.lime"
    ildg.write_config(path, field)
    binary = lime.find_record(lime.read_records(path), "ildg-binary-data", path)
    raw = path.read_bytes()
    flipped = bytes([raw[binary.offset + 1234] ^ 0x01])
    _patch(path, binary.offset + 1234, flipped)
    with pytest.raises(NpfmError, match="scidac-checksum: checksum mismatch"):
        ildg.read_config(path)
    assert ildg.read_config(path, verify=False).lattice == LATTICE


def test_wrong_lattice_size(tmp_path: Path, field: torch.Tensor) -> None:
    path = tmp_path / "a.lime"
    ildg.write_config(path, field)
    with pytest.raises(NpfmError, match=r"lattice is 4x2x2x6 .*expected 4x4x4x4"):
        ildg.read_config(path, expected=(4, 4, 4, 4))
    fmt = lime.find_record(lime.read_records(path), "ildg-format", path)
    text = fmt.read().replace(b"<lt>6</lt>", b"<lt>8</lt>")
    _patch(path, fmt.offset, text)
    with pytest.raises(NpfmError, match="4x2x2x8 lattice at 64 bit needs"):
        ildg.read_config(path)
