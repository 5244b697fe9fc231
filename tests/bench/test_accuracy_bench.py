"""`rowmix bench accuracy` on a handful of real CIFAR-10 images: every column filled, the table, JSON
and plot written, and a rerun served from the per-configuration cache."""

import json

import pytest

from rowmix.bench.accuracy_bench import AccuracyOptions, goals, run
from rowmix.errors import RowmixError


def test_accuracy_bench_small(tmp_path, cifar_dir):
    o = AccuracyOptions(out=tmp_path / "acc", data_dir=cifar_dir, epochs=1, calib=64, eval_limit=48, train_limit=128,
                        configs=("rmsmp-65", "brevitas-w4a4"))
    doc = run(o)
    r, b = doc["results"]
    assert r["key"] == "rmsmp-65" and r["settings"]["epochs"] == 1 and len(r["history"]) == 1
    assert 0 <= r["golden"] <= 1 and 0 <= r["fakequant"] <= 1 and 0 <= r["float"] <= 1
    assert r["row_shares"]["FIXED8"] > 0 and 4 < r["average_weight_bits"] < 5
    assert (tmp_path / "acc" / "artifacts" / "rmsmp-65" / "manifest.json").is_file()
    assert b["golden"] is None and b["average_weight_bits"] == 4 and b["model_bytes"] == 268336 // 2
    for name in ("accuracy.json", "accuracy.md", "accuracy.png"):
        assert (tmp_path / "acc" / name).stat().st_size > 0
    assert "RMSMP 65:30:5 W4A4" in (tmp_path / "acc" / "accuracy.md").read_text()
    cache = tmp_path / "acc" / "results" / "rmsmp-65.json"
    stamp = cache.stat().st_mtime_ns
    assert run(o)["results"][0] == json.loads(cache.read_text())
    assert cache.stat().st_mtime_ns == stamp  # served from the cache, not recomputed


def test_goal_bookkeeping():
    base = {"float": 0.92, "fakequant": 0.915, "golden": 0.913}
    g = goals({"rmsmp-65": base, "rmsmp-65-random": {**base, "golden": 0.90}})
    assert [x["pass"] for x in g] == [True, True, False]  # 0.7 below float; Hessian +1.3; golden 0.2 off fake-quant
    assert g[0]["goal"].startswith("RMSMP 65:30:5") and g[1]["goal"].startswith("Hessian")


def test_unknown_config(tmp_path):
    with pytest.raises(RowmixError, match="unknown configuration"):
        run(AccuracyOptions(out=tmp_path, configs=("nope",)))


def test_settings_compare_equal_after_the_cache_round_trip():
    """A configuration with method options must be served from its cache file (tuples become lists
    in JSON: the comparison is on the JSON form)."""
    from rowmix.bench.accuracy_bench import CONFIGS, _settings

    o = AccuracyOptions()
    for c in CONFIGS:
        assert json.loads(json.dumps(_settings(c, o))) == _settings(c, o), c.key
    assert any(c.options for c in CONFIGS)
