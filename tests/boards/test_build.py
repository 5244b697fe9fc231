"""A real iCEBreaker bitstream of a small array with the YoWASP tools: the file exists, nextpnr's
report meets the clock constraint, and build.json agrees with the report."""

import json
import os
from dataclasses import replace
from pathlib import Path

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
        main(["build", "--board", "icebreaker", "--config", str(cfg), "--out", str(tmp_path / "ice"), "--freq-mhz", "15",
              "--json"])
    assert e.value.code in (0, None)
    r = json.loads(capsys.readouterr().out)
    out = tmp_path / "ice"
    assert (out / "rowmix_board.bin").stat().st_size > 100_000  # an UP5K image is 104 kB
    report = json.loads((out / "report.json").read_text())
    assert r["pll"] is not None and abs(r["clock_mhz"] - 15.0) < 0.3  # the core clock comes from the SB_PLL40
    assert r["timing_met"] and r["fmax_mhz"] >= r["clock_mhz"] and r["clocks"]
    assert parse_report(report, "ice40", None)["resources"]["lut"]["used"] == r["resources"]["lut"]["used"] > 500
    assert r["resources"]["dsp"]["used"] >= 2 and r["macs_per_cycle"] == SMALL.macs_per_cycle == 6
    assert json.loads((out / "build.json").read_text()) == r


def _processes_in(path: Path) -> list[int]:
    """Processes whose working directory is under `path` (a build's tools run in its build directory)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.readlink(proc / "cwd").startswith(str(path)):
                pids.append(int(proc.name))
        except OSError:  # gone, or not ours to read
            pass
    return pids


def test_build_past_its_time_limit_stops_the_tools(tmp_path, capsys):
    """A build still running at --time-limit is an error naming the limit; Yosys and nextpnr are
    killed with the build script (a real build, stopped after 3 s), and nothing is left behind."""
    cfg = tmp_path / "array.json"
    cfg.write_text(json.dumps(SMALL.to_json()))
    with pytest.raises(SystemExit) as e:
        main(["build", "--board", "icebreaker", "--config", str(cfg), "--out", str(tmp_path / "ice"), "--time-limit", "0.05"])
    assert e.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "ran past the time limit of 0.05 min and were stopped after 0.1 min; Yosys was still synthesizing" in err
    assert not (tmp_path / "ice").exists() and [p.name for p in tmp_path.iterdir()] == ["array.json"]
    assert _processes_in(tmp_path) == []


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


def test_bench_boards_builds_resumes_and_reports(tmp_path, capsys, monkeypatch):
    """`rowmix bench boards` on the smallest real design (the iCEBreaker DSP-only baseline): one
    build directory per design, boards.{json,md,png}, and a rerun that reuses the finished build.
    A build the tools end with an error is recorded with its plan and reported as failed (the tools'
    failure is injected, the rest is real), and the next full run tries it again."""
    import rowmix.boards.build as build
    from rowmix.bench.boards_bench import BoardsOptions, _one, run
    from rowmix.errors import RowmixError

    def no_route(cfg, out, o):
        raise RowmixError("icebreaker build failed: exit status 255\nInfo: iter=57 overused=1422\n"
                          "ERROR: Failed to route design\n")

    out = tmp_path / "bench"
    monkeypatch.setattr(build, "build_board", no_route)
    r = _one("icebreaker", "dsp-only", str(out / "icebreaker-dsp-only-seed1"), 1)
    monkeypatch.undo()
    assert r["failed"] == "ERROR: Failed to route design" and (out / "icebreaker-dsp-only-seed1.failed.json").exists()
    doc = run(BoardsOptions(out=out, boards=("icebreaker",), designs=("dsp-only",), seeds=2, report_only=True))
    assert doc["failed"] == [{"build": "icebreaker dsp-only seed 1", "reason": "ERROR: Failed to route design"}]
    assert doc["not_built"] == ["icebreaker dsp-only seed 2"] and doc["builds"] == []
    assert "- icebreaker dsp-only seed 1: ERROR: Failed to route design" in (out / "boards.md").read_text()

    args = ["bench", "boards", "--boards", "icebreaker", "--designs", "dsp-only", "--out", str(out), "--jobs", "1",
            "--seeds", "1"]
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code in (0, None)
    doc = json.loads((out / "boards.json").read_text())
    assert doc["failed"] == [] and not (out / "icebreaker-dsp-only-seed1.failed.json").exists()  # tried again
    (b,) = doc["builds"]
    assert (b["board"], b["design"], b["macs_per_cycle"]) == ("icebreaker", "dsp-only", 12)
    assert b["dsp_used"] == 8 and b["fmax_mhz"] > 10 and (out / "icebreaker-dsp-only-seed1" / "rowmix_board.bin").exists()
    assert doc["ratios"] == {} and doc["sp2_row_share"]["icebreaker"]["SP2"] > 0
    assert b["fmax_by_seed"] == {"1": b["fmax_mhz"]} and (out / "boards.png").stat().st_size > 5000
    assert "| icebreaker | dsp-only | 12 |" in (out / "boards.md").read_text()
    stamp = (out / "icebreaker-dsp-only-seed1" / "build.json").stat().st_mtime_ns
    with pytest.raises(SystemExit):
        main(args)
    assert (out / "icebreaker-dsp-only-seed1" / "build.json").stat().st_mtime_ns == stamp  # reused, not rebuilt
    from rowmix.bench.boards_bench import _cached

    record = out / "icebreaker-dsp-only-seed1" / "build.json"
    assert _cached(record.parent, "icebreaker", "dsp-only", 1) is not None
    assert _cached(record.parent, "icebreaker", "dsp-only", 2) is None  # another seed: another build
    record.write_text(json.dumps({**json.loads(record.read_text()), "plan": "0" * 16}))
    assert _cached(record.parent, "icebreaker", "dsp-only", 1) is None  # another netlist: rebuilt


def test_plan_digest_follows_the_netlist_not_the_sources():
    """Two elaborations of one array agree (RTLIL source locations left out), and array or seed
    changes show."""
    from rowmix.boards.build import BuildOptions, plan_digest, prepare_board

    def digest(cfg, seed=1):
        return plan_digest(prepare_board(cfg, BuildOptions("icebreaker", freq_hz=15e6, seed=seed))[2])

    first = digest(SMALL)
    assert digest(SMALL) == first
    assert digest(SMALL, seed=2) != first
    assert digest(replace(SMALL, acc_bits=20)) != first


def test_board_arrays_fit_their_devices():
    """Every design of a board plan uses at most the device's DSPs (requant units included), the
    baselines are fixed-point only, and the mixed array's row shares are the board's ratio."""
    from rowmix.boards.arrays import DESIGNS, PLANS, REQUANT_DSPS, board_array, board_ratio
    from rowmix.hardware.estimate import dsp_count

    for board, p in PLANS.items():
        for design in DESIGNS:
            cfg = board_array(board, design)
            units = 1 if cfg.shared_requant else sum(1 for g in cfg.groups.values() if g.rows)
            assert dsp_count(cfg) + REQUANT_DSPS * units <= p.dsps, (board, design)
            if design != "mixed":
                assert cfg.groups["SP2"].rows == 0 and cfg.groups["FIXED4"].dsp_rows > 0
        mixed = board_array(board)
        total = sum(g.rows for g in mixed.groups.values())
        assert abs(board_ratio(board)["SP2"] - 100 * mixed.groups["SP2"].rows / total) <= 1


def test_only_all_dsp_groups_drain_by_shift():
    """The ULX3S plan's shift chain runs through DSP rows only: through LUT-lane rows it cost the
    DSPs + LUT multipliers baseline a third of its ECP5 clock (hardware.config.drain_shifts)."""
    from rowmix.boards.arrays import board_array

    mixed, mul, only = (board_array("ulx3s-85f", d) for d in ("mixed", "dsp+mul", "dsp-only"))
    assert [mixed.drain_shifts(g) for g in ("SP2", "FIXED4", "FIXED8")] == [False, True, True]
    assert mul.groups["FIXED4"].lut_rows and not mul.drain_shifts("FIXED4")
    assert only.drain_shifts("FIXED4") and not only.drain_shifts("SP2")  # an empty group drains nothing
    assert not any(board_array("icebreaker").drain_shifts(g) for g in ("SP2", "FIXED4", "FIXED8"))
    # the groups that mux pick among each 4 rows first (drain_fanout); the UP5K's one mux stays
    assert [mixed.drain_fanout(g) for g in ("SP2", "FIXED4", "FIXED8")] == [4, 0, 0]
    assert mul.drain_fanout("FIXED4") == 4 and only.drain_fanout("FIXED4") == 0
    assert not any(board_array("icebreaker").drain_fanout(g) for g in ("SP2", "FIXED4", "FIXED8"))


def test_board_rows_accumulate_at_the_width_their_sums_reach():
    """The board plans' rows are as wide as max_k products of their container's largest weight and
    a 5-bit activation reach: 128 on the UP5K (16 bits), 576 on the ULX3S (18 bits, FIXED-8 22);
    the bias add stays at 24."""
    from rowmix.boards.arrays import board_array

    for board, widths in (("icebreaker", {"SP2": 16, "FIXED4": 16}), ("ulx3s-85f", {"SP2": 18, "FIXED4": 18, "FIXED8": 22})):
        cfg = board_array(board)
        assert cfg.narrow_acc and cfg.acc_bits == 24
        assert {g: cfg.row_acc_bits(g) for g in widths} == widths
