"""The command lines the issue quotes, exactly as written (run in-process through the entry point)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rowmix.boards.arrays import board_ratio
from rowmix.cli import main


def run(capsys, *args) -> str:
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out = capsys.readouterr()
    assert e.value.code in (0, None), out.err
    return out.out


def test_version_and_help(capsys):
    assert run(capsys, "--version").startswith("rowmix ")
    for cmd in ("quantize", "inspect", "golden", "flow", "bench"):
        assert "Usage" in run(capsys, cmd, "--help")


def test_digits_commands(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(capsys, "quantize", "--model", "digits", "--method", "mixed", "--ratio", "65:30:5", "--out", "RUN/art")
    run(capsys, "quantize", "--model", "digits", "--method", "fixed", "--bits", "8", "--out", "RUN/art8")
    info = json.loads(run(capsys, "inspect", "RUN/art", "--json"))
    conv2 = next(l for l in info["layers"] if l["name"] == "conv2")
    assert (conv2["R"], conv2["K"]) == (12, 108)
    assert conv2["rows_per_group"] == {"SP2": 8, "FIXED4": 3, "FIXED8": 1}  # 65:30:5 of 12 rows
    assert conv2["rows_per_format"] == {"FIXED-4": 3, "FIXED-8": 1, "SP2-4": 8}
    assert conv2["packed_bytes"] == 11 * 54 + 108
    assert info["totals"]["packed_bytes"] == sum(l["packed_bytes"] for l in info["layers"])
    result = json.loads(run(capsys, "golden", "RUN/art", "--data", "digits", "--json"))
    assert result["images"] == 540
    assert result["accuracy"] > 0.95 and result["float_accuracy"] > 0.97 and result["fakequant_accuracy"] > 0.95
    r8 = json.loads(run(capsys, "golden", "RUN/art8", "--data", "digits", "--json"))
    assert abs(r8["accuracy"] - r8["float_accuracy"]) <= 0.01


def test_resnet20_commands(tmp_path, capsys, cifar_dir):
    r20 = str(tmp_path / "r20")
    run(capsys, "quantize", "--model", "resnet20", "--data", "cifar10", "--data-dir", str(cifar_dir),
        "--method", "fixed", "--bits", "8", "--out", r20)
    result = json.loads(run(capsys, "golden", r20, "--data", "cifar10", "--data-dir", str(cifar_dir),
                            "--split", "eval", "--limit", "500", "--json"))
    assert result["images"] == 500
    assert result["accuracy"] >= 0.89 and abs(result["accuracy"] - result["float_accuracy"]) <= 0.015


def test_flow_end_to_end_and_cached(tmp_path, capsys):
    out = tmp_path / "flow"
    run(capsys, "flow", "--out", str(out), "--limit", "8")
    s = json.loads((out / "summary.json").read_text())
    assert s["images"] == 8 and s["mismatches"] == 0
    assert s["accuracy"]["RTL"] == s["accuracy"]["golden"] and s["agreement"]["golden vs RTL"] == 8
    r = board_ratio("icebreaker")  # the full iCEBreaker array's (75:25:0)
    assert s["ratio"] == f"{r['SP2']}:{r['FIXED4']}:{r['FIXED8']}" and s["ratio_source"].startswith("board-array:icebreaker")
    assert s["cycles_per_image"] == s["model_cycles_per_image"]
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "bit-exact" in html
    for f in ("artifact/manifest.json", "rtl/rowmix_array.v", "evaluation.json", "simulation.json", "stages.json"):
        assert (out / f).exists(), f
    with pytest.raises(SystemExit):  # unchanged inputs: every stage is reused
        main(["flow", "--out", str(out), "--limit", "8"])
    err = capsys.readouterr().err
    assert all(f"{stage}: cached" in err for stage in ("quantize", "generate", "evaluate", "simulate"))


def test_console_script_exit_codes(tmp_path):
    exe = Path(sys.executable).with_name("rowmix")
    ok = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("rowmix ")
    bad = subprocess.run([exe, "golden", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 2 and "manifest.json: cannot read" in bad.stderr and "Traceback" not in bad.stderr


def test_ratio_from_a_resource_model(tmp_path, capsys):
    model = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "resource_model.json"
    out = tmp_path / "art"
    run(capsys, "quantize", "--model", "digits", "--method", "mixed", "--ratio-from", str(model),
        "--board", "icebreaker", "--act-bits", "4", "--out", str(out))
    m = json.loads((out / "manifest.json").read_text())
    assert m["ratio"]["source"].startswith("resource-model:icebreaker")
    assert (m["ratio"]["SP2"], m["ratio"]["FIXED4"], m["ratio"]["FIXED8"]) == (83, 13, 4)


def test_front_end_commands_of_the_issue(tmp_path, capsys, monkeypatch, cifar_dir):
    """The front-end issue's three command lines, with ../shared/data/cifar10 as the data directory."""
    repo = Path(__file__).resolve().parents[1]
    if (repo.parent / "shared" / "data" / "cifar10").resolve() != cifar_dir.resolve():
        pytest.skip("the quoted commands expect the data in ../shared/data/cifar10")
    monkeypatch.chdir(repo)
    out = tmp_path / "RUN"
    d = ["--data", "cifar10", "--data-dir", "../shared/data/cifar10"]
    q = ["quantize", "--model", "resnet20", *d]
    run(capsys, *q, "--method", "qmse", "--bits", "8", "--out", f"{out}/r20q8")
    run(capsys, *q, "--method", "rmsmp", "--ratio", "65:30:5", "--epochs", "0", "--out", f"{out}/r20p")
    result = json.loads(run(capsys, "golden", f"{out}/r20q8", *d, "--split", "eval", "--json"))
    assert result["images"] == 5000
    assert abs(result["accuracy"] - result["float_accuracy"]) <= 0.006  # W8A8 PTQ stays near float
    info = json.loads(run(capsys, "inspect", f"{out}/r20p", "--json"))
    assert info["achieved_ratio"]["FIXED8"] >= 5 and info["achieved_ratio"]["SP2"] > 60
    convs = [l for l in info["layers"] if l["op"] == "conv"]
    assert convs[0]["act_in_bits"] == 8 and {l["act_in_bits"] for l in convs[1:]} == {4}  # RMSMP default A4
