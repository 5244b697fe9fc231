"""CSQ (bit-level continuous sparsification): the bit-plane parameterization starts at the n-bit
model and ends as an exact integer model, the budget holds, the temperatures anneal to hard steps,
and a short digits training exports an artifact the golden model, the fake-quant network and the RTL
agree on."""

import numpy as np
import pytest
import torch

from rowmix import golden
from rowmix.artifact import write_artifact
from rowmix.errors import RowmixError
from rowmix.evaluate import torch_predictions
from rowmix.formats import RowFormat, Scheme, quantize_values, round_half_away
from rowmix.hardware.generate import default_config, generate
from rowmix.quant import QuantNet, TrainConfig, fakequant_from_artifact, quantize
from rowmix.quant.csq import CSQ, _Loop, average_bits, bit_planes, freeze_gates, write_back
from rowmix.quant.scales import weight_scales
from rowmix.sim import simulate

TARGET = 3.0
EPOCHS = 6


def planes_integers(p) -> torch.Tensor:
    """sum over kept planes of 2^b (1{P > 0} - 1{N > 0}), computed here independently of csq.py."""
    q = torch.zeros(p.pos.shape[1:], dtype=torch.long)
    for b in range(p.n):
        bit = (p.pos[b] > 0).long() - (p.neg[b] > 0).long()
        q += (2**b) * bit * p.kept[b][:, None].long()
    return q


def assert_exact(qnet) -> None:
    """Every layer's exported values times scale equal its binarised kept planes times s / (2^n - 1)."""
    for k, p in bit_planes(qnet).items():
        mac = qnet.macs[k]
        assert mac.weight_override is None and all(f.scheme is Scheme.FIXED for f in mac.formats)
        v = mac.weight_values()
        w = mac.weight.detach().reshape(mac.rows, -1).double()
        planes = planes_integers(p).double() * (p.scale().detach().double() / (2**p.n - 1))[:, None]
        np.testing.assert_allclose(w.numpy(), planes.numpy(), rtol=1e-6, atol=1e-9)
        qmax = torch.tensor([f.qmax for f in mac.formats])[:, None]
        assert (v.abs() <= qmax).all()
        np.testing.assert_allclose((v.double() * mac.scale.detach().double()[:, None]).numpy(), planes.numpy(),
                                   rtol=1e-6, atol=1e-9)


def prepared(digits_model, digits_tune, method: CSQ) -> QuantNet:
    model, _ = digits_model
    qnet = QuantNet(model, digits_tune.mean, digits_tune.std)
    method.assign(qnet, None)
    return qnet


@pytest.mark.parametrize("init", ["rounded", "binary"])
@pytest.mark.parametrize("n", [3, 7])
def test_start_is_an_n_bit_model(digits_model, digits_tune, n, init):
    """binary: the code's max-scaled n-bit expansion; rounded: round(w / step) clipped, with the
    MSE-optimal FIXED-3 scale at plane n - 2, so the top two planes alone are that FIXED-3 quantizer."""
    qnet = prepared(digits_model, digits_tune, CSQ(n=n, target_bits=3.0, init=init))
    for k, p in bit_planes(qnet).items():
        w = qnet.macs[k].weight.detach().reshape(p.pos.shape[1], -1).double()
        if init == "binary":
            step = w.abs().amax(1, keepdim=True) / (2**n - 1)
        else:
            s3 = torch.from_numpy(weight_scales(w.numpy(), RowFormat(Scheme.FIXED, 3))).double()[:, None]
            step = s3 / 2 ** (n - 2)
            top = p.signed_bits()[n - 2 :] * torch.tensor([1, 2])[:, None, None]
            fixed3 = quantize_values(w, step * 2 ** (n - 2), RowFormat(Scheme.FIXED, 3))
            assert torch.equal(top.sum(0).double(), fixed3)
        limit = 2**n - 1 if init == "binary" else 1.5 * 2 ** (n - 1) - 0.5
        want = round_half_away(torch.clamp(w / step, -limit, limit)) * step
        for beta in (1.0, 30.0):  # the normalised bits keep the start exact at any temperature
            p.beta = p.gate_beta = beta
            got = qnet.macs[k].quantized_weight().detach().reshape(w.shape).double()
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("per_row", [False, True])
def test_random_planes_write_back_exactly_within_budget(digits_model, digits_tune, per_row):
    method = CSQ(n=6, per_row=per_row, target_bits=3.5)
    qnet = prepared(digits_model, digits_tune, method)
    gen = torch.Generator().manual_seed(1)
    planes = bit_planes(qnet)
    with torch.no_grad():
        for p in planes.values():
            p.pos.copy_(torch.randn(p.pos.shape, generator=gen))
            p.neg.copy_(torch.randn(p.neg.shape, generator=gen) - 1)
            p.gate.copy_(torch.randn(p.gate.shape, generator=gen))
            p.log_scale.copy_(0.3 * torch.randn(p.log_scale.shape, generator=gen))
    freeze_gates(planes, method.target_bits)
    assert average_bits(planes) <= method.target_bits
    bits = write_back(qnet)
    assert_exact(qnet)
    counts = {k: qnet.macs[k].weight[0].numel() for k in bits}
    avg = sum(counts[k] * sum(b) for k, b in bits.items()) / sum(counts[k] * len(b) for k, b in bits.items())
    assert avg <= average_bits(planes) <= method.target_bits  # all-zero planes only ever shrink the span
    assert all(2 <= b <= 7 for bs in bits.values() for b in bs)
    if per_row:
        assert any(len(set(b)) > 1 for b in bits.values())  # rows of one layer differ


def test_every_gate_off_leaves_a_two_bit_floor(digits_model, digits_tune):
    qnet = prepared(digits_model, digits_tune, CSQ(n=5, target_bits=2.0))
    planes = bit_planes(qnet)
    with torch.no_grad():
        for p in planes.values():
            p.gate.fill_(-3.0)
            p.gate[2] = -1.0  # the least negative gate survives
    freeze_gates(planes, 2.0)
    assert all(p.kept.sum() == 1 and p.kept[2].all() for p in planes.values())
    assert average_bits(planes) == 2.0


@pytest.mark.parametrize("kw", [dict(target_bits=1.5), dict(n=3, target_bits=4.5), dict(n=8), dict(search_frac=0.0)])
def test_unreachable_settings_are_rejected(kw):
    with pytest.raises(RowmixError):
        CSQ(**kw)


@pytest.mark.parametrize("target, start_logit, direction", [(2.5, 2.0, -1), (7.0, -0.5, 1)], ids=["prune", "grow"])
def test_regulariser_prunes_above_and_grows_below_the_budget(digits_model, digits_tune, target, start_logit,
                                                             direction):
    """lambda_eff follows the size gap: all 8 bits on against a 2.5-bit budget pushes every gate down;
    only the top plane on (2 bits) against a 7-bit budget pushes them up (precision grows)."""
    model, _ = digits_model
    method = CSQ(target_bits=target, n=7, reg=1000.0)
    qnet = prepared(digits_model, digits_tune, method)
    planes = bit_planes(qnet)
    with torch.no_grad():
        for p in planes.values():
            p.gate.fill_(start_logit)
            p.gate[-1] = 2.0
    before = {k: p.gate.detach().clone() for k, p in planes.items()}
    loop = _Loop(method, qnet, planes, TrainConfig(epochs=1, batch=64), 64)
    x, y = torch.from_numpy(digits_tune.images[:64]), torch.from_numpy(digits_tune.labels[:64])
    with torch.no_grad():
        t_logits = model((x - qnet.mean) / qnet.std)
    loop.step(x, y, t_logits)
    assert np.sign(loop.lam) == -direction
    for k, p in planes.items():
        assert (torch.sign(p.gate.detach() - before[k]) == direction).all()


def train_on_digits(digits_model, digits_tune, method: CSQ):
    """A short CSQ training on digits. One torch thread: the tiny convolutions gain nothing from more,
    and spinning threads on a busy machine made this setup 10x slower."""
    model, info = digits_model
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return quantize(model, info, method, digits_tune.images, digits_tune.mean, digits_tune.std, act_bits=4,
                        train_config=TrainConfig(epochs=EPOCHS, batch=64), train_images=digits_tune.images,
                        train_labels=digits_tune.labels)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(digits_model, digits_tune):
    """The bit-plane fine-tune's run, shared by the tests below."""
    method = CSQ(target_bits=TARGET, n=5, gate_lr=0.2, finetune="planes")
    return train_on_digits(digits_model, digits_tune, method), method


def test_training_ends_exact_and_within_budget(trained):
    q, method = trained
    assert_exact(q.qnet)
    ops = [op for op in q.artifact.ops if hasattr(op, "values")]
    bits = np.concatenate([op.rows.bits for op in ops])
    weights = np.concatenate([np.full(op.r, op.k) for op in ops])
    avg = float((bits * weights).sum() / weights.sum())
    assert avg <= TARGET  # enforced exactly when the gates freeze; all-zero planes only lower it
    assert avg == pytest.approx(method.params()["achieved_bits"], abs=1e-3)
    assert all(2 <= b <= 8 for b in bits) and all(s == "FIXED" for op in ops for s in op.rows.scheme)
    for op in ops:  # the artifact's integers are the trained planes'
        p = bit_planes(q.qnet)[op.name.replace(".", "__")]
        v = np.where(op.rows.negated[:, None], -op.values, op.values)
        lo = np.log2(op.rows.scale / (p.scale().detach().numpy() / (2**p.n - 1))).round().astype(int)
        np.testing.assert_array_equal(v * (2 ** lo)[:, None], planes_integers(p).numpy())


def test_temperatures_anneal_to_hard_steps(trained):
    q, method = trained
    betas = [h["beta"] for h in q.history]
    assert all(a < b for a, b in zip(betas, betas[1:])) and betas[-1] == pytest.approx(method.beta_final)
    frozen = [h["gates_frozen"] for h in q.history]
    assert frozen == sorted(frozen) and frozen[-1] and not frozen[0]  # search first, then fixed precision
    for k, p in bit_planes(q.qnet).items():
        assert p.frozen and set(p.gates().unique().tolist()) <= {0.0, 1.0}
        soft = p().detach().reshape(p.pos.shape[1], -1)  # the sigmoids at the final temperature
        hard = q.qnet.macs[k].weight.detach().reshape(soft.shape)
        step = q.qnet.macs[k].scale.detach()[:, None]
        assert ((soft - hard).abs() <= 0.01 * step).float().mean() >= 0.99


def test_training_loss_falls_and_golden_equals_fakequant(trained, digits_model, digits_eval):
    q, _ = trained
    losses = [h["loss"] for h in q.history]
    assert losses[-1] < losses[0]
    g = golden.run(q.artifact, digits_eval.images)
    fq = torch_predictions(fakequant_from_artifact(digits_model[0], q.artifact), digits_eval.images)
    np.testing.assert_array_equal(fq, g.predictions)
    q.qnet.set_deploy(True)  # the trained network itself (bit planes written back) is what the hardware runs
    try:
        assert (torch_predictions(q.qnet, digits_eval.images) == g.predictions).mean() >= 0.995
    finally:
        q.qnet.set_deploy(False)
    assert golden.accuracy(g, digits_eval.labels) > 0.9


def test_rtl_runs_the_csq_network_bit_exactly(tmp_path, trained, digits_eval):
    q, _ = trained
    path = write_artifact(q.artifact, tmp_path / "art")
    rtl = tmp_path / "rtl"
    generate(q.artifact, default_config(q.artifact, "generic"), rtl)
    images, labels = digits_eval.images[:2], digits_eval.labels[:2]
    r = simulate(path, rtl, images, labels, workers=1)
    assert r.mismatches == 0 and r.images == 2
    assert r.rtl_predictions == golden.run(q.artifact, images).predictions.tolist()


def test_ste_finetune_keeps_the_searched_precisions(digits_model, digits_tune, digits_eval):
    """finetune="ste": the search ends with the gates frozen and the model written back; QAT then
    trains the weights away from the planes but never changes a row's bits, and the result stays
    within budget and exact through the golden model."""
    method = CSQ(target_bits=TARGET, n=5, per_row=True, gate_lr=0.2, search_frac=0.5, finetune="ste")
    q = train_on_digits(digits_model, digits_tune, method)
    assert [h["epoch"] for h in q.history] == list(range(1, EPOCHS + 1))
    assert [h["gates_frozen"] for h in q.history] == [False] * (EPOCHS // 2) + [True] * (EPOCHS // 2)
    moved = 0
    for k, p in bit_planes(q.qnet).items():
        mac = q.qnet.macs[k]
        values, bits, _ = p.export()  # the frozen planes: what the search handed to the fine-tune
        assert [f.bits for f in mac.formats] == bits.tolist()
        moved += int((mac.weight_values().numpy() != values).sum())
    assert moved > 0
    assert method.params()["achieved_bits"] <= TARGET
    g = golden.run(q.artifact, digits_eval.images)
    fq = torch_predictions(fakequant_from_artifact(digits_model[0], q.artifact), digits_eval.images)
    np.testing.assert_array_equal(fq, g.predictions)
    assert golden.accuracy(g, digits_eval.labels) > 0.9
