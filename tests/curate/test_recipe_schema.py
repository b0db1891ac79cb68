"""Malformed recipes: one line naming the recipe key and the fix, exit status 2."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from npfm.cli import app
from npfm.curate.recipe import load_recipe
from npfm.events.errors import NpfmError

HEAD = "name: t\ntitle: test\nsplits: {train: 0.8, validation: 0.1, test: 0.1}\n"
SIM = "{detector: sphenix, physics: pp200, events: 2}"
ALEPH = "[../../shared/data/aleph/*.aleph]"

CASES = {
    "import_options": (f"sources:\n  - {{name: a, import: {{format: aleph_text, paths: "
                       f"{ALEPH}, options: {{bogus: 1}}}}}}\n",
                       r"sources\[0\].import.options.bogus: not an option of format "
                       r"aleph_text; fix: use finite, process"),
    "simulate_options": ("sources:\n  - {name: a, simulate: {detector: sphenix, physics: "
                         "pp200, events: 2, options: {bogus: 1}}}\n",
                         r"sources\[0\].simulate \(physics options \['bogus'\]\): not options"
                         " of pp200"),
    "simulate_string": ("sources:\n  - {name: a, simulate: sphenix}\n",
                        r"sources\[0\].simulate: not a mapping \(got 'sphenix'\); fix: give "
                        "detector, physics and events"),
    "events_word": ("sources:\n  - {name: a, simulate: {detector: sphenix, physics: pp200, "
                    "events: many}}\n", r"sources\[0\].simulate.events: Input should be a "
                    r"valid integer.*\(got 'many'\); fix: give a positive whole number"),
    "events_zero": ("sources:\n  - {name: a, simulate: {detector: sphenix, physics: pp200, "
                    "events: 0}}\n", r"sources\[0\].simulate.events: .*greater than or equal "
                    "to 1"),
    "sources_number": ("sources: 5\n", r"sources: Input should be a valid list \(got 5\)"),
    "sources_empty": ("sources: []\n", r"sources: List should have at least 1 item.*fix: "
                      "give a non-empty list of sources"),
    "chunk_word": (f"chunk_events: lots\nsources:\n  - {{name: a, simulate: {SIM}}}\n",
                   r"chunk_events: Input should be a valid integer.*\(got 'lots'\)"),
    "import_null": ("sources:\n  - {name: a, import: null}\n",
                    r"sources\[0\]: needs exactly one of simulate / import"),
    "paths_string": ("sources:\n  - {name: a, import: {format: aleph_text, paths: "
                     "'x.aleph'}}\n", r"sources\[0\].import.paths: Input should be a valid "
                     r"list \(got 'x.aleph'\); fix: give a list of file patterns"),
    "unknown_key": (f"colour: red\nsources:\n  - {{name: a, simulate: {SIM}}}\n",
                    r"recipe.yaml colour: unknown key; fix: remove it; known keys: "
                    "chunk_events, creators"),
    "unknown_source_key": (f"sources:\n  - {{name: a, simulate: {SIM}, seed: 3}}\n",
                           r"sources\[0\].seed: unknown key; fix: remove it; known keys: "
                           "import, name, simulate"),
    "source_list": ("sources:\n  - [a, b]\n", r"sources\[0\]: not a mapping"),
    "format_unknown": ("sources:\n  - {name: a, import: {format: root6, paths: [x]}}\n",
                       r"sources\[0\].import.format: unknown format 'root6'; fix: give one of"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_recipe_names_key_and_fix(tmp_path: Path, case: str) -> None:
    body, message = CASES[case]
    path = tmp_path / "recipe.yaml"
    path.write_text(HEAD + body)
    with pytest.raises(NpfmError, match=message) as err:
        load_recipe(path)
    assert "\n" not in str(err.value)


def test_splits_as_a_list(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(f"name: t\ntitle: t\nsplits: [0.8, 0.2]\nsources:\n  - {{name: a, "
                    f"simulate: {SIM}}}\n")
    with pytest.raises(NpfmError, match=r"recipe.yaml splits: not a mapping \(got \[0.8, "
                       r"0.2\]\); fix: give non-negative fractions of train, validation, test"):
        load_recipe(path)


def test_binary_file_and_directory(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(NpfmError, match=r"binary.yaml: not a text file"):
        load_recipe(binary)
    with pytest.raises(NpfmError, match=r": a directory, not a recipe file"):
        load_recipe(tmp_path)


@pytest.mark.parametrize("body", ["sources: []\n", "sources:\n  - {name: a, simulate: "
                                  "sphenix}\n"])
def test_cli_exit_status_2_and_nothing_published(tmp_path: Path, body: str) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(HEAD + body)
    result = CliRunner().invoke(app, ["curate", str(path), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert not (tmp_path / "c").exists()


def test_detector_level_release_recipe() -> None:
    """recipes/dapp-y1.yaml: every source resolves to a known detector x physics pair; the
    heavy-ion sources keep their own small chunks; --scale 0.01 gives the 1 % build."""
    recipe = load_recipe(Path(__file__).parents[2] / "recipes/dapp-y1.yaml", scale=0.01)
    jobs = {s.name: s.job for s in recipe.sources}
    assert all(job is not None for job in jobs.values())
    pairs = {(j.detector, j.physics) for j in jobs.values() if j is not None}
    assert pairs == {("sphenix", "auau200"), ("alice", "pbpb5020"), ("clas12", "clas12_ep"),
                     ("clas12", "clas12_ed"), ("sphenix", "pp200"), ("epic", "ep_eic")}
    heavy = jobs["alice-pbpb5020-tpc"]
    assert heavy is not None
    assert (heavy.n_events, heavy.shard_events) == (10, 10)
    clas = jobs["clas12-ep"]
    assert clas is not None
    assert (clas.n_events, clas.shard_events) == (200, 500)
