"""The front end's methods on the digits model: deterministic Hessian ranking, the ratio in every
layer, presets, reassignment schedule, QAT (history, checkpoint resume, artifact consistency,
DDP on two gloo processes), USP changing running statistics and nothing else, QMSE scales."""

import os

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from rowmix import golden
from rowmix.evaluate import torch_predictions
from rowmix.formats import FIXED8, GROUPS, quantize_values
from rowmix.quant import RMSMP, Ratio, TrainConfig, fakequant_from_artifact, make_method, quantize
from rowmix.quant.calibrate import collect, set_activation_formats
from rowmix.quant.methods import Calib
from rowmix.quant.qat import train
from rowmix.quant.qmse import qmse_weight_scales, update_bn_statistics
from rowmix.quant.qnet import QuantNet
from rowmix.quant.scales import weight_scales
from rowmix.quant.sensitivity import hutchinson_row_traces


def prepared(digits_model, digits_tune, method, act_bits=4):
    model, _ = digits_model
    qnet = QuantNet(model, digits_tune.mean, digits_tune.std)
    stats, _ = collect(qnet, digits_tune.images[:256])
    set_activation_formats(qnet, stats, act_bits, method.activation_scale)
    calib = Calib(digits_tune.images[:256], digits_tune.labels[:256])
    method.assign(qnet, calib)
    method.init_scales(qnet)
    return qnet, calib


def test_hessian_traces_are_deterministic(digits_model, digits_tune):
    qnet, _ = prepared(digits_model, digits_tune, make_method("mixed"))
    x, y = digits_tune.images[:128], digits_tune.labels[:128]
    a = hutchinson_row_traces(qnet, x, y, samples=4, batches=1, seed=3)
    b = hutchinson_row_traces(qnet, x, y, samples=4, batches=1, seed=3)
    c = hutchinson_row_traces(qnet, x, y, samples=4, batches=1, seed=4)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    assert all(np.isfinite(v).all() for v in a.values())


@pytest.mark.parametrize("name, ratio", [("rmsmp", "65:30:5"), ("rmsmp", "60:35:5"), ("ilmpq", "65:30:5"), ("msq", "65:30:5")])
def test_ratio_holds_in_every_layer(digits_model, digits_tune, name, ratio):
    method = make_method(name, ratio=ratio, samples=4)
    qnet, _ = prepared(digits_model, digits_tune, method)
    for node in qnet.nodes:
        if node.kind not in ("conv", "linear"):
            continue
        mac = qnet.mac(node.name)
        counts = tuple(sum(f.group == g for f in mac.formats) for g in GROUPS)
        assert counts == method.ratio.counts(mac.rows), (node.name, counts)
        assert np.isfinite(mac.sensitivity.numpy()).all()
    if name == "ilmpq":
        assert method.ratio.sp2 == 0
    if name == "msq":
        assert method.ratio.fixed8 == 0


def test_reassignment_stops_for_the_frozen_epochs(monkeypatch):
    method = RMSMP(Ratio.parse("65:30:5"), ranking="variance", reassign_every=2)
    calls = []
    monkeypatch.setattr(RMSMP, "assign", lambda self, qnet, calib: calls.append(1))
    monkeypatch.setattr(RMSMP, "init_scales", lambda self, qnet, rows=None: None)

    class Net:
        nodes = []

    epochs_seen = []
    for epoch in range(10):
        before = len(calls)
        method.on_epoch(epoch, 10, Net(), None)
        if len(calls) > before:
            epochs_seen.append(epoch)
    assert epochs_seen == [2, 4, 6]  # epochs 8 and 9 are the frozen last 20 %


def test_qat_exports_what_it_trained_and_resumes(tmp_path, digits_model, digits_tune, digits_eval):
    model, info = digits_model
    cfg = TrainConfig(epochs=2, batch=64, lr=0.002, checkpoint=str(tmp_path / "ckpt.pt"))
    method = make_method("rmsmp", ratio="65:30:5", samples=4)
    q = quantize(model, info, method, digits_tune.images[:256], digits_tune.mean, digits_tune.std, act_bits=4,
                 calib_labels=digits_tune.labels[:256], train_config=cfg, train_images=digits_tune.images,
                 train_labels=digits_tune.labels)
    assert len(q.history) == 2 and all(np.isfinite(h["loss"]) for h in q.history)
    g = golden.run(q.artifact, digits_eval.images)
    q.qnet.set_deploy(True)
    trained = torch_predictions(q.qnet, digits_eval.images)
    assert (trained == g.predictions).mean() >= 0.99  # the trained network is what the hardware runs
    reloaded = torch_predictions(fakequant_from_artifact(model, q.artifact), digits_eval.images)
    assert (reloaded == g.predictions).mean() >= 0.995
    assert golden.accuracy(g, digits_eval.labels) > 0.9
    assert q.artifact.method["params"]["qat"]["epochs"] == 2
    # resume: a 3-epoch run from the 2-epoch checkpoint trains only the third epoch
    qnet, calib = prepared(digits_model, digits_tune, method)
    history = train(qnet, model, digits_tune.images, digits_tune.labels,
                    TrainConfig(epochs=3, batch=64, lr=0.002, checkpoint=str(tmp_path / "ckpt.pt")), method, calib)
    assert [h["epoch"] for h in history] == [1, 2, 3] and history[:2] == list(q.history)


def _ddp_worker(rank, world, port, out, digits_state):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        qnet, model, images, labels, method = digits_state()
        train(qnet, model, images, labels, TrainConfig(epochs=1, batch=64, lr=0.002), method)
        if rank == 0:
            torch.save({k: v for k, v in qnet.state_dict().items()}, out)
    finally:
        torch.distributed.destroy_process_group()


def _digits_state():
    from rowmix.data import load_dataset
    from rowmix.models import build_model

    model, _ = build_model("digits")
    tune = load_dataset("digits", "tune")
    method = make_method("mixed")
    qnet = QuantNet(model, tune.mean, tune.std)
    stats, _ = collect(qnet, tune.images[:256])
    set_activation_formats(qnet, stats, 4, method.activation_scale)
    method.assign(qnet, None)
    method.init_scales(qnet)
    return qnet, model, tune.images[:640], tune.labels[:640], method


def test_ddp_two_gloo_processes_equal_one_process(tmp_path):
    qnet, model, images, labels, method = _digits_state()
    train(qnet, model, images, labels, TrainConfig(epochs=1, batch=64, lr=0.002), method)
    port = 29500 + os.getpid() % 1000
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path / "ddp.pt"), _digits_state), nprocs=2, join=True)
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    for k, v in qnet.state_dict().items():
        assert torch.allclose(v.float(), ddp[k].float(), atol=1e-4, rtol=1e-4, equal_nan=True), k


def test_usp_changes_running_statistics_and_nothing_else(digits_model, digits_tune):
    qnet, _ = prepared(digits_model, digits_tune, make_method("qmse", 8), act_bits=8)
    before = {k: v.clone() for k, v in qnet.state_dict().items()}
    update_bn_statistics(qnet, digits_tune.images[:256])
    after = qnet.state_dict()
    same = lambda a, b: torch.equal(a, b) or (a.is_floating_point() and torch.equal(a.isnan(), b.isnan())  # noqa: E731
                                               and torch.equal(a.nan_to_num(), b.nan_to_num()))
    changed = {k for k in before if not same(before[k], after[k])}
    assert changed and all(("running_" in k) or ("num_batches_tracked" in k) for k in changed), changed
    assert any("running_var" in k for k in changed)


def test_qmse_weight_scales_beat_max_scaling():
    w = np.random.default_rng(0).standard_t(3, size=(16, 200)).astype(np.float32)
    s = qmse_weight_scales(w, FIXED8)
    mse = lambda s: ((w - s[:, None] * quantize_values(w, s[:, None], FIXED8)) ** 2).mean(axis=1)  # noqa: E731
    assert np.all(mse(s) <= mse((np.abs(w).max(axis=1) / 127).astype(np.float32)) + 1e-12)
    assert np.mean(mse(s)) <= np.mean(mse(weight_scales(w, FIXED8))) * 1.001


def test_torchrun_cli_two_processes(tmp_path):
    """The documented launch: torchrun starts two rowmix processes, rank 0 writes one artifact."""
    import subprocess
    import sys
    from pathlib import Path

    from rowmix.artifact import read_artifact

    torchrun = Path(sys.executable).with_name("torchrun")
    port = 30500 + os.getpid() % 1000
    cmd = [str(torchrun), "--nproc-per-node", "2", "--master-port", str(port), "-m", "rowmix", "quantize",
           "--model", "digits", "--method", "rmsmp", "--act-bits", "4", "--epochs", "1", "--batch", "64",
           "--out", str(tmp_path / "art")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    art = read_artifact(tmp_path / "art")
    assert art.method["name"] == "rmsmp" and art.method["params"]["qat"]["epochs"] == 1
