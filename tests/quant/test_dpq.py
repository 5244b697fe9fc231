"""DPQ on the digits model: pruned weights stay zero through QAT, export, the golden model and the
RTL; the sparsity setting is met; bits follow the pseudo-mean rule at every epoch; every scale is
2^e1 + 2^e2; RPC quantizes the requested share of elements; compression counted from the artifact."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from rowmix import golden
from rowmix.artifact.summary import compression, summarize
from rowmix.evaluate import torch_predictions
from rowmix.formats import FIXED4, quantize_values
from rowmix.quant import TrainConfig, fakequant_from_artifact, quantize
from rowmix.quant.dpq import (DPQ, is_two_power_sum, pseudo_mean_bits,
                              snapped_scales)
from rowmix.quant.scales import weight_scales

SPARSITY = 0.6


@dataclass(frozen=True)
class RecordingDPQ(DPQ):
    """DPQ that records, at every epoch start (after its own hook ran), the weights, the bit widths
    and the RPC share, and the weights after the last epoch: what the network trains with, before
    `post` re-zeroes anything."""

    seen: list = field(default_factory=list, compare=False, repr=False)
    trained: dict = field(default_factory=dict, compare=False, repr=False)

    def on_epoch(self, epoch, epochs, qnet, calib):
        super().on_epoch(epoch, epochs, qnet, calib)
        self.seen.append({
            "weights": {n: qnet.mac(n).weight.detach().clone() for n in self.masks},
            "bits": {n: [f.bits for f in qnet.mac(n).formats] for n in self.masks},
            "share": [a.train_share for a in self.hidden_acts(qnet)],
        })

    def post(self, qnet, calib):
        self.trained.update({n: qnet.mac(n).weight.detach().clone() for n in self.masks})
        super().post(qnet, calib)


@pytest.fixture(scope="module")
def run(digits_model, digits_tune):
    model, info = digits_model
    method = RecordingDPQ(sparsity=SPARSITY, b0=2, b_min=3, b_max=6, rpc_p0=0.4, rpc_ramp=0.5)
    q = quantize(model, info, method, digits_tune.images[:256], digits_tune.mean, digits_tune.std, act_bits=8,
                 calib_labels=digits_tune.labels[:256],
                 train_config=TrainConfig(epochs=2, batch=64, lr=0.01),
                 train_images=digits_tune.images[:768], train_labels=digits_tune.labels[:768])
    return method, q


def test_pruned_weights_stay_zero_through_training_and_export(run):
    method, q = run
    assert len(method.seen) == 2
    for name, mask in method.masks.items():
        pruned = mask == 0
        for w in [e["weights"][name] for e in method.seen] + [method.trained[name]]:  # before post re-zeroes
            assert torch.all(w[pruned] == 0), name
        assert torch.all(q.qnet.mac(name).weight.detach()[pruned] == 0)
        assert not torch.equal(method.seen[1]["weights"][name], method.seen[0]["weights"][name])  # it trained
        layer = q.artifact.op(name)
        v = layer.values.reshape(mask.shape)
        assert np.all(v[pruned.numpy()] == 0), name
    assert any(np.any(q.artifact.op(n).values != 0) for n in method.masks)


def test_achieved_sparsity_matches_the_setting(run):
    method, q = run
    names = list(method.masks)
    for i, name in enumerate(names):
        mask = method.masks[name]
        zeros = int((mask == 0).sum())
        want = 0 if i in (0, len(names) - 1) else round(SPARSITY * mask.numel())  # first / last dense
        assert zeros == want, name
    params = q.artifact.method["params"]
    assert params["achieved_sparsity_pruned_layers"] == pytest.approx(SPARSITY, abs=0.005)
    assert params["achieved_sparsity"] < SPARSITY  # the dense first and last layers count too


def test_bits_follow_the_pseudo_mean_rule_every_epoch(run):
    method, q = run
    for epoch in method.seen:
        for name, mask in method.masks.items():
            want = pseudo_mean_bits(epoch["weights"][name].numpy(), mask.numpy() > 0, 2, 3, 6)
            assert epoch["bits"][name] == [want] * len(epoch["bits"][name])
    for name, mask in method.masks.items():
        final = pseudo_mean_bits(q.qnet.mac(name).weight.detach().numpy(), mask.numpy() > 0, 2, 3, 6)
        bits = q.artifact.op(name).rows.bits
        assert np.all(bits == final) and 3 <= final <= 6
        assert set(q.artifact.op(name).rows.scheme) == {"FIXED"}


def test_pseudo_mean_rule_by_hand():
    w = np.array([0.01, 1.0, 1.0, 1.0, 5.0])
    kept = np.array([False, True, True, True, True])
    assert pseudo_mean_bits(w, kept, 2, 2, 8) == 4  # mean 2, max 5: ceil(log2 2.5) + 2
    assert pseudo_mean_bits(w, np.ones(5, bool), 2, 2, 8) == 4  # mean 1.602, ratio 3.12
    assert pseudo_mean_bits(np.array([1.0, 1.0]), np.ones(2, bool), 2, 3, 8) == 3  # ratio 1 -> b0, raised to b_min
    assert pseudo_mean_bits(np.array([1e-3] * 999 + [100.0]), np.ones(1000, bool), 2, 2, 8) == 8  # capped


def test_every_exported_scale_is_a_sum_of_two_powers_of_two(run):
    _, q = run
    for layer in q.artifact.mac_layers:
        assert np.all(is_two_power_sum(layer.rows.scale)), layer.name


def test_two_power_sum_detector():
    x = np.array([1.0, 0.75, 3 * 2.0**-10, 2.0**-3, 0.875, 7 * 2.0**-10, 0.1, 0.0], np.float32)
    assert is_two_power_sum(x).tolist() == [True, True, True, True, False, False, False, False]


def test_snapped_scales_are_the_best_two_term_candidate_and_close_to_optimal():
    rng = np.random.default_rng(4)
    w = rng.standard_t(5, size=(16, 200)) * rng.uniform(0.01, 1, (16, 1))
    s = snapped_scales(w, FIXED4)
    assert np.all(is_two_power_sum(s))

    def mse(scale):
        return ((w - scale[:, None] * quantize_values(w, scale[:, None], FIXED4)) ** 2).sum(axis=1)

    free = weight_scales(w, FIXED4).astype(np.float64)
    assert np.all(mse(s) <= 1.25 * mse(free))  # the constraint costs little (<= 13 % here)
    f = np.floor(np.log2(free))[:, None]  # brute force over a wider two-term neighbourhood
    wide = np.concatenate([2.0 ** (f + d) + 2.0 ** (f + d - k) for d in range(-3, 3) for k in range(13)], axis=1)
    errs = np.stack([mse(wide[:, j]) for j in range(wide.shape[1])], axis=1)
    assert np.allclose(mse(s.astype(np.float64)), errs.min(axis=1), rtol=1e-9, atol=0)


def test_compression_by_hand():
    a = (np.array([[0, 3, 0, -1], [2, 0, 0, 0]]), np.array([4, 4]))  # 3 non-zeros at 4 bits
    b = (np.array([[1, 0, 0, -1]]), np.array([2]))  # 2 non-zeros at 2 bits
    c = compression([a, b])
    assert c["ratio"] == pytest.approx(32 * 12 / (3 * 4 + 2 * 2))  # 24
    assert c["ratio_with_bitmap"] == pytest.approx(32 * 12 / (16 + 12))
    assert c["avg_bits"] == pytest.approx(16 / 5)
    assert c["zero_share"] == pytest.approx(7 / 12)


def test_artifact_compression_matches_the_trained_network(run):
    method, q = run
    c = compression((layer.values, layer.rows.bits) for layer in q.artifact.mac_layers)
    n_total = sum(m.numel() for m in method.masks.values())
    stored = sum(int((q.qnet.mac(n).weight_values() != 0).sum()) * q.qnet.mac(n).formats[0].bits for n in method.masks)
    assert c["weights"] == n_total
    assert c["ratio"] == pytest.approx(32 * n_total / stored)
    assert q.artifact.method["params"]["compression"] == pytest.approx(c["ratio"], abs=1e-3)
    assert summarize(q.artifact)["totals"]["compression"] == round(c["ratio"], 2)  # `rowmix inspect` agrees
    kept = sum(int(m.sum()) for m in method.masks.values())
    assert c["ratio"] >= 32 * n_total / (6 * kept)  # at most b_max bits on at most the kept weights


def test_rpc_share_schedule_and_element_share(run):
    method, q = run
    assert [e["share"][0] for e in method.seen] == [pytest.approx(0.4), pytest.approx(1.0)]  # ramp: 1 epoch of 2
    assert method.rpc_share(0, 10) == pytest.approx(0.4) and method.rpc_share(2, 10) == pytest.approx(0.64)
    assert all(a.train_share == 1.0 for a in method.hidden_acts(q.qnet))  # post restores full quantization
    act = method.hidden_acts(q.qnet)[0]
    x = torch.rand(64, 16, 8, 8) * act.fmt.scale * 50 + 1e-4  # almost surely off the grid
    quantized = act.codes(x) * act.fmt.scale
    torch.manual_seed(0)
    act.train()
    try:
        act.train_share = 0.3
        y = act(x.requires_grad_())
        share = (torch.isclose(y, quantized, rtol=0, atol=1e-6) & (y != x)).float().mean().item()
        assert share == pytest.approx(0.3, abs=0.02)
        assert torch.all((y == x) | torch.isclose(y, quantized, rtol=0, atol=1e-6))  # the rest pass through
        act.eval()
        with torch.no_grad():
            assert torch.allclose(act(x), quantized, rtol=0, atol=1e-6)  # evaluation quantizes all
    finally:
        act.train_share = 1.0
        act.eval()


def test_golden_equals_fakequant_on_digits(run, digits_model, digits_eval):
    _, q = run
    model, _ = digits_model
    g = golden.run(q.artifact, digits_eval.images)
    fq = torch_predictions(fakequant_from_artifact(model, q.artifact), digits_eval.images)
    assert (fq == g.predictions).mean() >= 0.995
    assert golden.accuracy(g, digits_eval.labels) > 0.9


def test_rtl_runs_the_pruned_network_bit_exact(run, tmp_path, digits_eval):
    from rowmix.artifact import read_artifact, write_artifact
    from rowmix.hardware.generate import default_config, generate
    from rowmix.sim import simulate

    _, q = run
    path = write_artifact(q.artifact, tmp_path / "art")
    art = read_artifact(path)
    generate(art, default_config(art, "generic"), tmp_path / "rtl")
    images, labels = digits_eval.images[:3], digits_eval.labels[:3]
    r = simulate(path, tmp_path / "rtl", images, labels, workers=1)
    assert r.mismatches == 0 and r.images == 3
    assert r.rtl_predictions == golden.run(art, images).predictions.tolist()
