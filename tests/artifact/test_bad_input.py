"""Bad artifacts and bad options: one clear line naming file, layer, row and field; exit code 2;
no partial output."""

import json
from pathlib import Path

import numpy as np
import pytest

from rowmix.artifact import ArtifactError, read_artifact, sha256
from rowmix.cli import main


def edit_manifest(art: Path, fn) -> None:
    p = art / "manifest.json"
    m = json.loads(p.read_text())
    fn(m)
    p.write_text(json.dumps(m))


def edit_arrays(art: Path, fn) -> None:
    """Change arrays in weights.npz and re-sign them, so only the semantic checks can object."""
    with np.load(art / "weights.npz", allow_pickle=False) as z:
        arrays = {k: z[k].copy() for k in z.files}
    fn(arrays)
    np.savez(art / "weights.npz", **arrays)
    edit_manifest(art, lambda m: m["arrays"].update(
        {k: {"dtype": str(a.dtype), "shape": list(a.shape), "sha256": sha256(a)} for k, a in arrays.items()}))


def op(m, name):
    return next(o for o in m["ops"] if o["name"] == name)


def cli_error(capsys, *args) -> str:
    with pytest.raises(SystemExit) as e:
        main(list(args))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def truncate(art):
    data = (art / "weights.npz").read_bytes()
    (art / "weights.npz").write_bytes(data[: len(data) // 2])


def pickled(art):
    with np.load(art / "weights.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["conv2.bias"] = np.array([{"evil": "payload"}], dtype=object)
    np.savez(art / "weights.npz", **arrays)


def edited_checksum(art):
    edit_manifest(art, lambda m: m["arrays"]["conv2.bias"].update(sha256="0" * 64))


def wrong_version(art):
    edit_manifest(art, lambda m: m.update(format_version=2))


def missing_layer(art):
    edit_manifest(art, lambda m: m.update(ops=[o for o in m["ops"] if o["name"] != "conv2"]))


def illegal_code(art):
    def fn(arrays):
        a = arrays["conv3.codes.FIXED4"]
        a[0, 0] = (a[0, 0] & 0xF0) | 0x8  # -8 in a FIXED-4 row: the never-exported code
    edit_arrays(art, fn)


def shape_mismatch(art):
    edit_manifest(art, lambda m: op(m, "conv4").update(out={**op(m, "conv4")["out"], "shape": [32, 3, 3]}))


def accumulator_bound(art):
    big = (1 << 31) - 10
    edit_manifest(art, lambda m: op(m, "conv2")["rows"][5].update(bias=big))

    def fn(arrays):
        arrays["conv2.bias"][5] = big
    edit_arrays(art, fn)


def schema_violation(art):
    edit_manifest(art, lambda m: op(m, "conv2")["rows"][3].update(scale=-0.5))


def missing_array(art):
    def fn(arrays):
        del arrays["conv4.codes.SP2"]
    with np.load(art / "weights.npz", allow_pickle=False) as z:
        arrays = {k: z[k].copy() for k in z.files}
    fn(arrays)
    np.savez(art / "weights.npz", **arrays)


CASES = {
    # corruption: (what the message must say, layer, row, field)
    "truncated npz": (truncate, "weights.npz", "truncated or corrupt", None, None),
    "pickled object": (pickled, "weights.npz", "pickled Python objects", None, None),
    "edited checksum": (edited_checksum, "weights.npz", "sha256", None, None),
    "wrong format version": (wrong_version, "manifest.json", "unsupported format version 2", None, None),
    "missing layer": (missing_layer, "manifest.json", "input 'conv2' is not produced", "conv3", None),
    "missing array": (missing_array, "weights.npz", "'conv4.codes.SP2' listed in manifest.json is missing", None, None),
    # the row is named by output channel: the first row of conv3's FIXED4 group
    "illegal code": (illegal_code, "weights.npz", "illegal code at column 0: value -8", "conv3",
                     lambda m: op(m, "conv3")["row_groups"]["FIXED4"][0]),
    "shape mismatch": (shape_mismatch, "manifest.json", "shape mismatch", "conv4", None),
    "accumulator bound": (accumulator_bound, "manifest.json", "accumulator bound exceeded", "conv2", 5),
    "schema violation": (schema_violation, "manifest.json", "less than or equal to the minimum of 0", "conv2", 3),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_artifact_is_named_precisely(case, artifact_copy, capsys):
    corrupt, file, text, layer, row = CASES[case]
    if callable(row):
        row = row(json.loads((artifact_copy / "manifest.json").read_text()))
    corrupt(artifact_copy)
    with pytest.raises(ArtifactError) as e:
        read_artifact(artifact_copy)
    msg = str(e.value)
    assert msg.startswith(str(artifact_copy / file)) and text in msg, msg
    if layer is not None:
        assert e.value.layer == layer and f"layer '{layer}'" in msg
    if row is not None:
        assert e.value.row == row and f"row {row}" in msg
    for command in ("inspect", "golden"):
        assert text in cli_error(capsys, command, str(artifact_copy))


def test_illegal_sp2_codes_do_not_exist_but_fixed8_has_one(artifact_copy):
    """All 16 SP2 codes are legal (non-canonical ones decode fine); FIXED-8's 0x80 is not."""
    def fn(arrays):
        arrays["conv2.codes.SP2"][0, 0] = 0x88  # two non-canonical zeros
        arrays["conv2.codes.FIXED8"][0, 3] = 0x80
    edit_arrays(artifact_copy, fn)
    with pytest.raises(ArtifactError, match=r"row \d+.*illegal code at column 3: value -128"):
        read_artifact(artifact_copy)


def test_not_an_artifact(tmp_path, capsys):
    assert "artifact directory does not exist" in cli_error(capsys, "inspect", str(tmp_path / "nope"))
    (tmp_path / "manifest.json").write_text("{not json")
    assert "not valid JSON (line 1" in cli_error(capsys, "inspect", str(tmp_path))


@pytest.mark.parametrize("args, text", [
    (["--method", "magic"], "unknown method 'magic'"),
    (["--method", "mixed", "--ratio", "60:30:5"], "must sum to 100 (it sums to 95)"),
    (["--method", "mixed", "--ratio", "a:b:c"], "three non-negative numbers"),
    (["--method", "fixed", "--bits", "9"], "--bits must be 2..8"),
    (["--model", "vgg"], "unknown model 'vgg'"),
    (["--act-bits", "6"], "--act-bits must be 4 or 8"),
])
def test_bad_quantize_options_exit_2_without_output(tmp_path, capsys, args, text):
    out = tmp_path / "art"
    assert text in cli_error(capsys, "quantize", "--out", str(out), *args)
    assert not out.exists() and list(tmp_path.iterdir()) == []
