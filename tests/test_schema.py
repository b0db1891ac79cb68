from pathlib import Path

import numpy as np
import pytest

from npfm.events import vocabulary
from npfm.events.errors import NpfmError
from npfm.events.labels import NOISE_PT_GEV, hit_labels, pid_class
from npfm.events.schema import COLUMNS, SCHEMA_VERSION, arrow_schema
from npfm.events.units import factor, to_canonical

DOC = Path(__file__).resolve().parents[1] / "docs" / "event-model.md"


def test_schema_has_every_column_and_version() -> None:
    schema = arrow_schema()
    assert schema.names == [c.name for c in COLUMNS]
    assert schema.metadata[b"npfm.schema_version"] == str(SCHEMA_VERSION).encode()
    required = {f.name for f in schema if not f.nullable}
    assert required == {"facility", "experiment", "run", "event", "data_level"}


def test_documentation_describes_every_column() -> None:
    text = DOC.read_text()
    missing = [c.name for c in COLUMNS if f"`{c.name}`" not in text]
    assert not missing, f"docs/event-model.md lacks {missing}"
    for name in vocabulary.names("subsystems"):
        assert f"`{name}`" in text


def test_vocabulary_codes_are_stable() -> None:
    # Codes are positions; these must never change (tensors and checkpoints rely on them).
    assert vocabulary.names("subsystems")[:3] == ("MVTX", "INTT", "TPC")
    assert vocabulary.code("pid_classes", "electron") == 4
    assert vocabulary.names("data_levels") == ("simulated", "real", "real-archived")
    with pytest.raises(KeyError):
        vocabulary.code("subsystems", "HCAL")


def test_units_convert_and_reject_wrong_dimension() -> None:
    np.testing.assert_allclose(to_canonical([10.0, 1.0], "mm"), [1.0, 0.1])
    assert factor("MeV", "energy") == pytest.approx(1e-3)
    assert factor("us", "time") == 1e3
    with pytest.raises(NpfmError, match="is a time unit where a length unit is needed"):
        factor("ns", "length")
    with pytest.raises(NpfmError, match="unknown unit"):
        factor("furlong")


def test_pid_classes_follow_fm4npp() -> None:
    pdg = [211, -211, 321, -321, 2212, -2212, 11, -11, 13, 22, 2112]
    assert pid_class(pdg).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 0, 0, 0]


def test_hit_labels_noise_threshold_and_noise_hits() -> None:
    # particle 0: pT just below 60 MeV; particle 1: just above; hit 2 is a noise hit.
    pdg, px, py = [211, 2212], [NOISE_PT_GEV - 1e-4, 0.0], [0.0, NOISE_PT_GEV + 1e-4]
    pid, noise = hit_labels([0, 1, -1, 1], pdg, px, py)
    assert pid.tolist() == [1, 3, 0, 3]
    assert noise.tolist() == [True, False, True, False]
