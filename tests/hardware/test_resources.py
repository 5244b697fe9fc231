"""Resource model: tiny Yosys units (fast), the budget/ratio arithmetic on made-up lane costs
(exact), the resource-model file round trip and its error messages. Synthesizing every lane unit
is marked slow."""

import json
from dataclasses import replace

import pytest

from rowmix.errors import RowmixError
from rowmix.hardware import resources as res
from rowmix.hardware.config import ArrayConfig
from rowmix.hardware.devices import BOARDS, Board, Device, get_board

# -- Yosys on tiny units ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_costs(tmp_path_factory):
    """SP2 and Booth LUT units (1 row x 4 lanes) and a packed FIXED-4 DSP unit (2 rows x 2 lanes) on
    ECP5, synthesized in the process pool; the progress callback sees each one."""
    cache = tmp_path_factory.mktemp("yosys-cache")
    specs = [res.UnitSpec("SP2", "sp2", "ecp5", 8, rows=1, t_k=4),
             res.UnitSpec("FIXED4", "booth", "ecp5", 5, rows=1, t_k=4),
             res.UnitSpec("FIXED4", "dsp", "ecp5", 8, rows=2, t_k=2)]
    seen = []
    costs = res.measure_lane_costs(specs, cache_dir=cache, workers=2, progress=lambda d, n, c: seen.append((d, n)))
    return cache, specs, costs, seen


def test_lut_units_use_luts_and_no_dsp(tiny_costs):
    _, specs, costs, seen = tiny_costs
    assert sorted(seen) == [(1, 3), (2, 3), (3, 3)]
    for spec, c in zip(specs[:2], costs[:2]):
        assert c.spec == spec
        assert c.lut > 0 and c.ff > 0 and c.carry > 0
        assert c.dsp == 0
        assert c.cells["LUT4"] > 0 and "MULT18X18D" not in c.cells
        assert c.lut == (c.cells["LUT4"] + 2 * c.cells.get("CCU2C", 0)) / spec.lanes
        assert c.tool.startswith("Yosys 0.")


def test_dsp_unit_packs_two_rows_per_multiplier(tiny_costs):
    c = tiny_costs[2][2]
    assert c.cells["MULT18X18D"] == 2  # 2 rows x 2 lanes on 2 multipliers
    assert c.dsp == 0.5 and c.to_json()["macs_per_dsp"] == 2


def test_cache_hit(tiny_costs):
    cache, specs, costs, _ = tiny_costs
    again = res.synthesize_unit(specs[0], cache)
    assert again.cached and not costs[0].cached
    assert again.cells == costs[0].cells and again.lut == costs[0].lut


def test_synth_flags():
    assert "-nodsp" in res.synth_script(res.UnitSpec("FIXED4", "mul", "ecp5", 8))
    assert "-nodsp" not in res.synth_script(res.UnitSpec("FIXED4", "dsp", "ecp5", 8))
    assert "-dsp" not in res.synth_script(res.UnitSpec("FIXED4", "dsp", "ice40", 8))
    assert "synth_xilinx -family xc7" in res.synth_script(res.UnitSpec("SP2", "sp2", "xc7", 5))
    with pytest.raises(RowmixError, match="not a lane kind"):
        res.UnitSpec("SP2", "booth", "ecp5", 8)


def test_per_lane_counting_rules():
    assert res.per_lane("ice40", {"SB_LUT4": 40, "SB_CARRY": 8, "SB_DFFSR": 6, "SB_DFFESR": 2, "SB_MAC16": 2}, 4) == \
        {"lut": 10, "carry": 2, "ff": 2, "dsp": 0.5}
    assert res.per_lane("ecp5", {"LUT4": 30, "CCU2C": 5, "PFUMX": 9, "TRELLIS_FF": 8, "MULT18X18D": 1}, 4) == \
        {"lut": 10, "carry": 1.25, "ff": 2, "dsp": 0.25}
    assert res.per_lane("xc7", {"LUT2": 4, "LUT6": 4, "CARRY4": 2, "FDRE": 6, "FDSE": 2, "DSP48E1": 4, "BUFG": 1}, 4) == \
        {"lut": 2, "carry": 0.5, "ff": 2, "dsp": 1}


# -- board arithmetic on made-up lane costs ---------------------------------------------------------

TOY = Device("toy", "ecp5", luts=1000, lut_kind="LUT4", ffs=1000, dsps=4, dsp_kind="MULT18X18D", bram_blocks=1,
             bram_kind="DP16KD", bram_kbits=18)


def toy_costs(extra=None):
    c = lambda lut, ff, dsp: {"lut": lut, "carry": 0, "ff": ff, "dsp": dsp}  # noqa: E731
    table = {"SP2": {"sp2": {"5": c(10, 5, 0)}}, "FIXED4": {"dsp": {"5": c(5, 3, 0.5)}},
             "FIXED8": {"dsp": {"5": c(4, 2, 1)}}}
    for (group, kind), cost in (extra or {}).items():
        table[group][kind] = {"5": cost}
    return {"ecp5": table}


def test_board_model_exact():
    board = Board("toyboard", TOY, lane_share=0.5)
    m = res.board_model(board, toy_costs(), act_bits=4, t_k=2)
    # budget 500; all 4 DSPs on FIXED4: 8 lanes, fabric 40 -> N_L = 46 -> D8 = 0.05 (46 + 8) / 1.05 = 2.57 -> 3;
    # D8 = 3: FIXED4 2 lanes, FIXED8 3 lanes, fabric 2*5 + 3*4 = 22 -> N_L = floor(478 / 10) = 47 (stable)
    assert m["lanes"] == {"SP2": 47, "FIXED4": 2, "FIXED8": 3}
    assert m["dsps_used"] == {"FIXED4": 1, "FIXED8": 3}
    assert m["macs_per_cycle"] == 52 and m["dsp_macs_per_cycle"] == 5
    assert m["fractions"] == {"SP2": 47 / 52, "FIXED4": 2 / 52, "FIXED8": 3 / 52}
    # 90.38 / 3.85 / 5.77 -> 90 + 3 + 5 = 98, the two largest remainders (FIXED4, FIXED8) get one each
    assert m["ratio"] == {"SP2": 90, "FIXED4": 4, "FIXED8": 6, "source": "resource-model:toyboard"}
    assert m["speedup_vs_dsp_only"] == 52 / 5
    assert m["luts_used"] == {"SP2": 470, "DSP_fabric": 22}
    assert m["ffs_used"] == 47 * 5 + 2 * 3 + 3 * 2
    # suggested rows (t_k = 2): FIXED4 2 rows on 1 DSP pair x 2 lanes = 2 DSPs, FIXED8 1 row = 2 DSPs;
    # LUTs (2*5 + 1*4) * 2 = 28 -> SP2 rows = floor(472 / 20) = 23
    assert m["suggested_array"] == {"target": "ecp5", "t_k": 2, "act_bits": 4, "groups": {
        "SP2": {"rows": 23, "kind": "sp2"}, "FIXED4": {"rows": 2, "kind": "dsp"}, "FIXED8": {"rows": 1, "kind": "dsp"}}}
    assert m["suggested_array_usage"]["dsps"] == 4 and m["suggested_array_usage"]["macs_per_cycle"] == 52
    ArrayConfig(**m["suggested_array"])  # a valid array configuration


def test_board_model_plain_lut_budget_and_shares():
    board = Board("toyboard", TOY, lane_share=0.5)
    m = res.board_model(board, toy_costs(), act_bits=4, t_k=2, charge_dsp_fabric=False)
    # N_L = floor(500 / 10) = 50, D8 = 0.05 (50 + 8) / 1.05 = 2.76 -> 3
    assert m["lanes"] == {"SP2": 50, "FIXED4": 2, "FIXED8": 3}
    assert m["ratio"]["SP2"] == 91 and m["ratio"]["FIXED4"] == 4 and m["ratio"]["FIXED8"] == 5
    m0 = res.board_model(board, toy_costs(), act_bits=4, t_k=2, fixed8_share=0.0)
    assert m0["lanes"] == {"SP2": 46, "FIXED4": 8, "FIXED8": 0}
    assert m0["ratio"]["FIXED8"] == 0 and m0["suggested_array"]["groups"]["FIXED8"]["rows"] == 0
    m6 = res.board_model(replace(board, lane_share=0.6), toy_costs(), act_bits=4, t_k=2)
    assert m6["lanes"]["SP2"] > m["lanes"]["SP2"]


def test_ice40_pairs_fixed8_and_fallback_kinds():
    ice = Device("toy-ice", "ice40", luts=1000, lut_kind="LC", ffs=1000, dsps=2, dsp_kind="SB_MAC16", bram_blocks=1,
                 bram_kind="EBR", bram_kbits=4, macs_per_dsp={"FIXED4": 2, "FIXED8": 2})
    costs = {"ice40": toy_costs({("FIXED4", "booth"): {"lut": 20, "carry": 0, "ff": 9, "dsp": 0},
                                   ("FIXED8", "mul"): {"lut": 50, "carry": 0, "ff": 9, "dsp": 0}})["ecp5"]}
    board = Board("toyice", ice, lane_share=0.5)
    m = res.board_model(board, costs, act_bits=4, t_k=2)
    # D8 = 0: N_L = floor((500 - 4*5) / 10) = 48 -> D8 = 0.05 (48 + 4) / (2 * 0.95 + 0.1) = 1.3 -> 1 DSP, whose
    # dual 8x8 mode gives 2 FIXED8 lanes; N_L = floor((500 - 2*5 - 2*4) / 10) = 48 (stable)
    assert m["lanes"] == {"SP2": 48, "FIXED4": 2, "FIXED8": 2}
    assert m["dsps_used"] == {"FIXED4": 1, "FIXED8": 1}
    # Rows of t_k = 2 lanes: FIXED4 (2 rows = 2 DSPs) and FIXED8 (1-2 rows = 2 DSPs) do not both fit the
    # 2 DSPs. Best balance: FIXED4 on Booth LUT lanes (2 rows, 80 LUTs), FIXED8 2 rows on the paired DSPs
    # (16 LUTs), SP2 floor((500 - 96) / 20) = 20 rows (ties on the score go to more rows).
    assert m["suggested_array"]["groups"] == {
        "SP2": {"rows": 20, "kind": "sp2"}, "FIXED4": {"rows": 2, "kind": "booth"}, "FIXED8": {"rows": 2, "kind": "dsp"}}
    assert m["suggested_array_usage"]["dsps"] == 2 and m["suggested_array_usage"]["luts"] == 496
    ArrayConfig(**m["suggested_array"])


def test_ratio_percentages():
    assert res.ratio_percentages({"SP2": 1, "FIXED4": 1, "FIXED8": 1}) == {"SP2": 34, "FIXED4": 33, "FIXED8": 33}
    assert res.ratio_percentages({"SP2": 0.7, "FIXED4": 0.25, "FIXED8": 0.05}) == {"SP2": 70, "FIXED4": 25, "FIXED8": 5}
    assert sum(res.ratio_percentages({"SP2": 0.123, "FIXED4": 0.456, "FIXED8": 0.421}).values()) == 100
    with pytest.raises(RowmixError):
        res.ratio_percentages({"SP2": 0, "FIXED4": 0, "FIXED8": 0})


def test_missing_lane_cost_is_a_clear_error():
    with pytest.raises(RowmixError, match="no lane cost for ecp5 SP2/sp2 with 8-bit lanes"):
        res.board_model(Board("toyboard", TOY), toy_costs(), act_bits=8)


def test_devices_and_boards():
    assert {b: BOARDS[b].device.name for b in BOARDS} == {
        "icebreaker": "iCE40UP5K", "ulx3s-85f": "LFE5U-85F", "pynq-z2": "XC7Z020"}
    assert [BOARDS[b].target for b in BOARDS] == ["ice40", "ecp5", "xc7"]
    assert all(b.lane_share == 0.6 for b in BOARDS.values())
    assert BOARDS["icebreaker"].synth == "synth_ice40" and BOARDS["pynq-z2"].synth == "synth_xilinx -family xc7"
    up5k = BOARDS["icebreaker"].device
    assert (up5k.luts, up5k.dsps, up5k.bram_blocks, up5k.spram_blocks) == (5280, 8, 30, 4)
    assert BOARDS["pynq-z2"].device.dsps == 220 and BOARDS["ulx3s-85f"].device.dsps == 156
    with pytest.raises(RowmixError, match="unknown board"):
        get_board("arty")


# -- the resource-model file -------------------------------------------------------------------------


def fake_costs() -> list[res.LaneCost]:
    lut = {"sp2": 50, "dsp": 20, "booth": 55, "mul": 120}
    out = []
    for spec in res.unit_specs():
        scale = {"ice40": 1.0, "ecp5": 1.2, "xc7": 0.8}[spec.target] * (1 if spec.act_width == 8 else 0.7)
        dsp = (0.5 if spec.group == "FIXED4" or spec.target == "ice40" else 1.0) if spec.kind == "dsp" else 0.0
        out.append(res.LaneCost(spec, lut=lut[spec.kind] * scale, carry=5.0, ff=30.0, dsp=dsp, cells={"X": 1},
                                tool="Yosys test", seconds=0.0))
    return out


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model" / "resource_model.json"
    model = res.write_resource_model(path, fake_costs())
    return path, model


def test_round_trip(model_file):
    path, model = model_file
    data = json.loads(path.read_text())
    assert data == json.loads(json.dumps(model))
    assert data["format"] == "rowmix-resource-model" and data["version"] == 1 and data["tool"] == "Yosys test"
    assert data["unit"]["rows"] == 2 and data["unit"]["t_k"] == 8
    assert data["lane_costs"]["ecp5"]["FIXED4"]["booth"]["5"]["lut"] == pytest.approx(55 * 1.2 * 0.7)
    assert not list(path.parent.glob(".*tmp"))  # no temp file left behind
    for name in BOARDS:
        b = data["boards"][name]
        for key in ("device", "budget", "lane_share", "lanes", "ratio", "fractions", "speedup_vs_dsp_only",
                    "suggested_array"):
            assert key in b
        ratio = res.read_resource_model(path, name)
        assert ratio == b["ratio"] and ratio["source"] == f"resource-model:{name}"
        assert sum(ratio[g] for g in ("SP2", "FIXED4", "FIXED8")) == 100
        assert res.read_resource_model(path, name, act_bits=8) == b["by_act_bits"]["8"]["ratio"]
        assert res.ratio_string(ratio).count(":") == 2
        ArrayConfig.from_json(b["suggested_array"])


def _broken(path, edit):
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("boards"), "field 'boards' is missing"),
    (lambda d: d.update(format="something"), "field 'format' must be 'rowmix-resource-model'"),
    (lambda d: d.update(version=7), "unsupported resource model version 7"),
    (lambda d: d["boards"]["icebreaker"].pop("ratio"), "field 'boards.icebreaker.ratio' is missing"),
    (lambda d: d["boards"]["icebreaker"]["ratio"].update(SP2="lots"),
     "field 'boards.icebreaker.ratio.SP2' must be a non-negative integer"),
    (lambda d: d["boards"]["icebreaker"]["ratio"].update(SP2=1), "must sum to 100"),
])
def test_broken_file_errors(model_file, edit, message):
    path, _ = model_file
    _broken(path, edit)
    with pytest.raises(RowmixError) as e:
        res.read_resource_model(path, "icebreaker")
    assert message in str(e.value) and str(path) in str(e.value)


def test_unreadable_files(tmp_path, model_file):
    path, _ = model_file
    with pytest.raises(RowmixError, match="board 'arty' is not in field 'boards'"):
        res.read_resource_model(path, "arty")
    with pytest.raises(RowmixError, match=r"by_act_bits.8' is missing"):
        _broken(path, lambda d: d["boards"]["icebreaker"].pop("by_act_bits"))
        res.read_resource_model(path, "icebreaker", act_bits=8)
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.raises(RowmixError, match=r"bad.json: not valid JSON \(line 1"):
        res.read_resource_model(bad, "icebreaker")
    with pytest.raises(RowmixError, match="cannot read resource model"):
        res.read_resource_model(tmp_path / "missing.json", "icebreaker")


# -- everything (slow: ~1.5 min of Yosys from a cold cache) -------------------------------------------


@pytest.mark.slow
def test_hardware_bench_all_units(tmp_path, request):
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("synthesizes all 36 lane units; run with `pytest -m slow`")
    from rowmix.bench import hardware_bench

    out = tmp_path / "bench"
    result = hardware_bench.run(out, cache_dir=tmp_path / "cache")
    assert {p.name for p in out.iterdir()} == {"resource_model.json", "hardware_bench.md", "lane_costs.png"}
    model = result["model"]
    assert result["units"] == 36
    for target in res.TARGETS:
        for group, kind in res.LANE_KINDS:
            for aw in res.ACT_WIDTHS:
                c = model["lane_costs"][target][group][kind][str(aw)]
                assert c["lut"] > 0
                assert (c["dsp"] > 0) == (kind == "dsp")
    goals = {g["goal"]: g for g in result["goals"]}
    assert goals["T1"]["pass"] and goals["T2"]["pass"]  # two FIXED-4 MACs per SB_MAC16 / MULT18X18D
    for name in BOARDS:
        ratio = res.read_resource_model(out / "resource_model.json", name)
        assert ratio["SP2"] > ratio["FIXED4"] > 0 and ratio["FIXED8"] > 0
