"""Writing and reading artifacts: exact round trip, schema, atomic replacement."""

import json
import os

import jsonschema
import numpy as np
import pytest

from rowmix.artifact import FORMAT_VERSION, read_artifact, schema, write_artifact
from rowmix.formats import GROUPS, codes_to_values


def test_round_trip_is_exact(digits_artifacts, tmp_path):
    path, art, _ = digits_artifacts["mixed"]
    again = read_artifact(write_artifact(art, tmp_path / "again"))
    assert [op.name for op in again.ops] == [op.name for op in art.ops]
    for a, b in zip(art.mac_layers, again.mac_layers):
        assert np.array_equal(a.values, b.values)
        for g in GROUPS:
            assert np.array_equal(a.codes[g], b.codes[g])
        for field in ("bits", "scale", "m0", "n", "bias", "negated"):
            assert np.array_equal(getattr(a.rows, field), getattr(b.rows, field))
    assert (tmp_path / "again" / "manifest.json").read_text() == (path / "manifest.json").read_text()


def test_manifest_follows_its_json_schema(digits_artifacts):
    m = json.loads((digits_artifacts["mixed"][0] / "manifest.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema())
    jsonschema.validate(m, schema())
    assert m["format_version"] == FORMAT_VERSION and m["rounding"] == "half_away_from_zero"
    layer = next(op for op in m["ops"] if op["op"] == "conv")
    assert set(layer["rows"][0]) >= {"scheme", "bits", "scale", "M0", "n", "bias", "negated", "sensitivity"}
    assert all(layer["row_groups"][g] == sorted(layer["row_groups"][g]) for g in GROUPS)


def test_codes_follow_the_contract(digits_artifacts):
    """Canonical codes only; group containers hold the row's own format; code 0 pads."""
    art = digits_artifacts["mixed"][1]
    for layer in art.mac_layers:
        for g in GROUPS:
            codes = layer.group_codes[g]
            assert not codes[:, layer.k :].any()
            if g == "SP2" and codes.size:
                assert not np.isin(codes[:, : layer.k], [0b1000, 0b0001, 0b1001]).any()  # non-canonical
            for i, r in enumerate(layer.row_groups[g]):
                v = codes_to_values(codes[i, : layer.k], g)
                assert np.abs(v).max(initial=0) <= layer.rows.format(r).qmax


def test_write_replaces_atomically_and_leaves_no_temporaries(digits_artifacts, tmp_path):
    art_a, art_b = digits_artifacts["mixed"][1], digits_artifacts["fixed8"][1]
    target = tmp_path / "a"
    write_artifact(art_a, target)
    write_artifact(art_b, target)
    assert read_artifact(target).method["name"] == "fixed"
    assert sorted(os.listdir(tmp_path)) == ["a"]


def test_failed_write_keeps_the_previous_artifact(digits_artifacts, tmp_path, monkeypatch):
    art = digits_artifacts["mixed"][1]
    target = tmp_path / "a"
    write_artifact(art, target)
    before = (target / "manifest.json").read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError):
        write_artifact(digits_artifacts["fixed8"][1], target)
    assert (target / "manifest.json").read_text() == before
    assert sorted(os.listdir(tmp_path)) == ["a"]
