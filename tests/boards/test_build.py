"""A real iCEBreaker bitstream of a small array with the YoWASP tools: the file exists, nextpnr's
report meets the clock constraint, and build.json agrees with the report."""

import json

import pytest

from rowmix.boards.build import parse_report
from rowmix.cli import main
from rowmix.hardware.config import ArrayConfig, GroupConfig

SMALL = ArrayConfig(target="ice40", t_k=2, max_k=64, max_rows=16, acc_bits=24,
                    groups={"SP2": GroupConfig(1, "sp2"), "FIXED4": GroupConfig(2, "dsp"), "FIXED8": GroupConfig(0, "dsp")})


def test_icebreaker_bitstream_of_a_small_array(tmp_path, capsys):
    cfg = tmp_path / "array.json"
    cfg.write_text(json.dumps(SMALL.to_json()))
    with pytest.raises(SystemExit) as e:
        main(["build", "--board", "icebreaker", "--config", str(cfg), "--out", str(tmp_path / "ice"), "--json"])
    assert e.value.code in (0, None)
    r = json.loads(capsys.readouterr().out)
    out = tmp_path / "ice"
    assert (out / "rowmix_board.bin").stat().st_size > 100_000  # an UP5K image is 104 kB
    report = json.loads((out / "report.json").read_text())
    assert r["timing_met"] and r["fmax_mhz"] >= 12.0
    assert parse_report(report, "ice40", None)["resources"]["lut"]["used"] == r["resources"]["lut"]["used"] > 500
    assert r["resources"]["dsp"]["used"] >= 2 and r["macs_per_cycle"] == SMALL.macs_per_cycle == 6
    assert json.loads((out / "build.json").read_text()) == r


def test_unknown_board(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["build", "--board", "nope", "--config", str(tmp_path / "x.json"), "--out", str(tmp_path / "o")])
    assert e.value.code == 2


def test_pynq_z2_vivado_project_and_estimate(tmp_path, capsys):
    cfg = tmp_path / "array.json"
    cfg.write_text(json.dumps({**SMALL.to_json(), "target": "xc7"}))
    with pytest.raises(SystemExit) as e:
        main(["build", "--board", "pynq-z2", "--config", str(cfg), "--out", str(tmp_path / "pynq"), "--json"])
    assert e.value.code in (0, None)
    r = json.loads(capsys.readouterr().out)
    out = tmp_path / "pynq"
    assert r["estimate"] is True and r["bitstream"] is None and r["resources"]["lut"]["used"] > 200
    tcl = (out / "rowmix_pynq_z2.tcl").read_text()
    assert "-part xc7z020clg400-1" in tcl and "rowmix_link.v" in tcl and "write_bitstream" in tcl
    xdc = (out / "rowmix_pynq_z2.xdc").read_text()
    assert "PACKAGE_PIN H16" in xdc and "-period 8.000" in xdc and "leds[3]" in xdc
    assert "module rowmix_link" in (out / "rowmix_link.v").read_text()


@pytest.mark.slow
def test_ulx3s_bitstream_of_a_small_array(tmp_path):
    """ECP5-85F through nextpnr-ecp5 and ecppack (about 2 minutes)."""
    from rowmix.boards.build import BuildOptions, build_board

    cfg = ArrayConfig(target="ecp5", t_k=4, max_k=64, max_rows=16, acc_bits=24, shared_requant=True,
                      groups={"SP2": GroupConfig(2, "sp2"), "FIXED4": GroupConfig(2, "dsp"), "FIXED8": GroupConfig(1, "dsp")})
    r = build_board(cfg, tmp_path / "ulx3s", BuildOptions("ulx3s-85f"))
    assert (tmp_path / "ulx3s" / "rowmix_board.bit").stat().st_size > 100_000
    assert r["timing_met"] and r["resources"]["dsp"]["used"] >= 4 and r["macs_per_cycle"] == 20
