"""`rowmix bench methods`: the goal bookkeeping, the compression accounting it reads from artifacts,
and (slow) a real run of one configuration through the golden model and the RTL."""

import json

import numpy as np
import pytest

from rowmix.artifact import summarize
from rowmix.bench.methods_bench import MethodsOptions, goals, run
from rowmix.errors import RowmixError


def test_compression_counts_the_non_zero_weights(digits_artifacts):
    _, art, _ = digits_artifacts["mixed"]
    t = summarize(art)["totals"]
    weights = sum(layer.r * layer.k for layer in art.mac_layers)
    bits = sum(int((layer.rows.bits * np.count_nonzero(layer.values, axis=1)).sum()) for layer in art.mac_layers)
    dense = sum(int(layer.rows.bits.sum()) * layer.k for layer in art.mac_layers)
    assert t["compression"] == round(32 * weights / bits, 2) and t["compression_dense"] == round(32 * weights / dense, 2)
    assert t["compression"] >= t["compression_dense"] and 0 < t["sparsity"] < 0.5


def row(golden=0.913, **kw):
    return {"float": 0.92, "fakequant": golden, "golden": golden, "average_weight_bits": 4.0, "compression": 8.0,
            "act_bits": 4, "rtl_mismatches": 0, "seconds": 60.0, **kw}


def test_goal_bookkeeping():
    g = {x["goal"].split(":")[0]: x["pass"] for x in goals({
        "bitsplit-w4a8": row(golden=0.905), "bitsplit-w3a8": row(golden=0.895), "dpq": row(compression=15.4, golden=0.915),
        "csq-ste": row(average_weight_bits=3.2, epochs=40),
        "csq-ste-s1": row(golden=0.906, average_weight_bits=3.0), "csq": row(golden=0.5),
        "msq": row(rtl_mismatches=1, seconds=50 * 60)})}
    assert g == {"Bit-Split W4A8, no retraining": False, "Bit-Split W3A8, no retraining": True, "DPQ": True,
                 "CSQ (40 epochs)": False, "CSQ (40 epochs, seed 1)": True,
                 "golden vs fake-quant accuracy within 0.1 point, every method": True,
                 "every artifact through the RTL with zero mismatches": False,
                 "each run fits in 45 minutes on 2 CPU cores": False}


def test_unknown_config(tmp_path):
    with pytest.raises(RowmixError, match="unknown configuration"):
        run(MethodsOptions(out=tmp_path, keys=("nope",)))


@pytest.mark.slow
def test_methods_bench_small(tmp_path, cifar_dir):
    o = MethodsOptions(out=tmp_path / "m", data_dir=cifar_dir, keys=("qmse-w8a8",), rtl_images=1, eval_limit=32)
    doc = run(o)
    (r,) = doc["rows"]
    assert r["rtl_images"] == 1 and r["rtl_mismatches"] == 0 and r["bit_widths"] == [8]
    for name in ("methods.json", "methods.md", "methods.png"):
        assert (tmp_path / "m" / name).stat().st_size > 0
    cache = tmp_path / "m" / "results" / "qmse-w8a8.rtl.json"
    stamp = cache.stat().st_mtime_ns
    assert run(o)["rows"] == json.loads((tmp_path / "m" / "methods.json").read_text())["rows"]
    assert cache.stat().st_mtime_ns == stamp  # the RTL run is cached with the artifact
    doc = json.loads(cache.read_text())
    assert set(doc["settings"]) >= {"rtl", "testbench"}  # keyed on what it simulates
    doc["settings"]["rtl"] = "another array"
    cache.write_text(json.dumps(doc))
    run(o)
    assert json.loads(cache.read_text())["settings"]["rtl"] != "another array"  # other RTL: checked again
