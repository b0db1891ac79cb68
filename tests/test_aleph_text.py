"""MIT ALEPH text importer: the real archive files and the format's variants."""

from pathlib import Path

import numpy as np
import pytest

from npfm.events.build import events_to_table
from npfm.events.checks import check_table
from npfm.events.errors import NpfmError
from npfm.formats.aleph_text import link, read_aleph, to_event

RECO = "LEP2MCGGBBY2000E207_recons_aftercut-001.aleph"
TRUTH = "LEP2MCGGBBY2000E207_mctrue_aftercut-001.aleph"

VARIANT = "\n".join([
    "ALEPH_DATA RUN = 14209 EVENT  4218 ECM =   91.276 GEV",
    " Primary vertex info flag =  4 vx = -0.0855 vy =  0.0485 ex =  0.0057 ey =  0.0000",
    "px=    0.001 py=    0.150 pz=   -0.126 m=    0.140 charge -1.0 pwflag    0"
    " d0   0.051 z0  -0.359 ntpc   4 nitc   7 nvdet   2",
    "px=    3.001 py=   -2.409 pz=   -2.398 m=    0.140 charge  1.0 pwflag    1"
    " d0  -0.013 z0  -0.393 ntpc  21 nitc   5 nvdet   2",
    "px=-12.345 py=0.5 pz=1.0 m=0.000 charge 0.0 pwflag 4 d0 -999.000 z0 -999.000 ntpc 0"
    " nitc 0 nvdet 0",
    "END_EVENT",
    "ALEPH_DATA RUN = 14209 EVENT  4219 ECM =   91.276 GEV",
    "  1.0  2.0  3.0  0.140  1.0  0",
    "END_EVENT",
    "END_FILE",
    "",
])


def test_real_files_link_reco_and_truth(aleph_dir: Path) -> None:
    stats = {"linked": 0, "reco_only": 0, "truth_only": 0}
    pairs = list(link(read_aleph(aleph_dir / RECO), read_aleph(aleph_dir / TRUTH), stats))
    assert stats == {"linked": 680, "reco_only": 0, "truth_only": 0}
    events = [to_event(r, t) for r, t in pairs]
    table = events_to_table(events)
    check_table(table, "aleph")
    # Every object and particle line of the files is kept (15087 and 26200 lines minus
    # 680 headers, 680 END_EVENT and one END_FILE each).
    assert sum(len(e["object_px"]) for e in events) == 15087 - 1361
    assert sum(len(e["particle_px"]) for e in events) == 26200 - 1361
    first = events[0]
    assert (first["run"], first["event"], first["sqrt_s"]) == (10, 60, 206.5)
    assert first["data_level"] == "simulated"
    assert first["beam1_energy"] == 103.25
    # First object line: px=-0.204 py=0.120 pz=-0.160 m=0.140 charge -1.0 pwflag 0
    np.testing.assert_allclose([first["object_px"][0], first["object_py"][0],
                                first["object_pz"][0], first["object_mass"][0]],
                               [-0.204, 0.120, -0.160, 0.140])
    assert first["object_type"][6] == "muon"  # pwflag 2
    assert first["object_type"][-1] == "neutral_hadron"  # pwflag 5
    assert first["object_d0"] is None  # not in these files: null, not zero
    # First truth line: pid 3 pname e-, pz = 78.081
    assert first["particle_pdg"][:3] == [11, -11, 211]
    assert first["particle_pz"][0] == pytest.approx(78.081)
    assert first["particle_mass"][:2] == pytest.approx([0.001, 0.001])  # m= of the e-, e+


def test_variants_keyword_columns_vertex_and_bare_numbers(tmp_path: Path) -> None:
    path = tmp_path / "data.aleph"
    path.write_text(VARIANT)
    blocks = list(read_aleph(path))
    assert [b.kind for b in blocks] == ["ALEPH_DATA", "ALEPH_DATA"]
    assert blocks[0].vertex == pytest.approx((4, -0.0855, 0.0485, 0.0057, 0.0))
    event = to_event(blocks[0], None)
    assert event["data_level"] == "real-archived"
    assert event["vertex_x"] == pytest.approx(-0.0855)
    assert event["object_type"] == ["charged_track", "electron", "photon"]
    assert event["subsystems"] == ["TPC", "ITC", "VDET"]
    assert event["object_nhits"].tolist() == [[4, 7, 2], [21, 5, 2], [0, 0, 0]]
    assert event["object_px"][2] == pytest.approx(-12.345)
    assert event["object_d0"][:2] == pytest.approx([0.051, -0.013])
    assert event["object_d0"][2] is None
    assert event["object_z0"][2] is None
    bare = to_event(blocks[1], None)
    assert bare["object_pz"].tolist() == [3.0]
    assert bare["object_d0"] is None
    check_table(events_to_table([event, bare]), "variant")


def test_unpaired_blocks_are_kept(tmp_path: Path) -> None:
    reco, truth = tmp_path / "r.aleph", tmp_path / "t.aleph"
    line = "px= 1 py= 0 pz= 0 m= 0.14 charge 1 pwflag 0"
    reco.write_text(f"MC_RECO RUN = 1 EVENT 2 ECM = 91.2 GEV\n{line}\nEND_EVENT\n"
                    f"MC_RECO RUN = 1 EVENT 5 ECM = 91.2 GEV\n{line}\nEND_EVENT\nEND_FILE\n")
    truth.write_text(f"MC_TRUE_BEFORE_CUT RUN = 1 EVENT 1 ECM = 91.2 GEV\n{line} pid 8 "
                     f"pname pi+\nEND_EVENT\nMC_TRUE_BEFORE_CUT RUN = 1 EVENT 5 ECM = 91.2 GEV"
                     f"\n{line} pid 8 pname pi+\nEND_EVENT\nEND_FILE\n")
    stats = {"linked": 0, "reco_only": 0, "truth_only": 0}
    keys = [((r or t).event, r is not None, t is not None)
            for r, t in link(read_aleph(reco), read_aleph(truth), stats)]
    assert keys == [(2, True, False), (5, True, True), (1, False, True)]
    assert stats == {"linked": 1, "reco_only": 1, "truth_only": 1}


@pytest.mark.parametrize(("text", "message"), [
    ("MC_RECO RUN = 1 EVENT 2 ECM = 91.2 GEV\npx= 1 py= 0 pz= 0 m= 0.1 charge 1 pwflag 0\n",
     "file ends without END_FILE"),
    ("MC_RECO RUN = 1 EVENT 2 ECM = 91.2 GEV\npx= 1 py= zero pz= 0 m= 0.1 charge 1 pwflag 0\n",
     r"line 2: cannot parse object line"),
    ("MC_RECO RUN = 1 EVENT 2 ECM = 91.2 GEV\npx= 1 py= 0 pz= 0 m= 0.1 charge 1\n",
     r"line 2: object line lacks \['pwflag'\]"),
    ("MC_RECO RUN = 1 EVENT 2 ECM = 91.2 GEV\nMC_RECO RUN = 1 EVENT 3 ECM = 91.2 GEV\n",
     r"line 2: new header before END_EVENT"),
    ("LEP_STUFF RUN = 1 EVENT 2 ECM = 91.2 GEV\n", r"line 1: unknown header kind"),
])
def test_bad_files_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.aleph"
    path.write_text(text)
    with pytest.raises(NpfmError, match=message) as info:
        list(read_aleph(path))
    assert str(path) in str(info.value)
