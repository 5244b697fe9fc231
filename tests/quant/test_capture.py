"""torch.fx capture: op lists of the built-in models, and clear errors for what is not supported."""

import re

import pytest
import torch
from torch import nn

from rowmix.models import CifarResNet, DigitsNet
from rowmix.quant import CaptureError, capture


def kinds(model):
    nodes, out = capture(model)
    return [(n.name, n.kind, tuple(n.inputs), n.relu, n.bn is not None) for n in nodes], out


def test_digits_graph():
    nodes, out = kinds(DigitsNet())
    assert out == "fc"
    assert nodes == [
        ("conv1", "conv", ("input",), True, True),
        ("conv2", "conv", ("conv1",), True, True),
        ("conv3", "conv", ("conv2",), False, True),
        ("add", "add", ("conv3", "conv1"), True, False),
        ("pool", "maxpool", ("add",), False, False),
        ("conv4", "conv", ("pool",), True, True),
        ("gap", "global_avgpool", ("conv4",), False, False),
        ("flatten", "flatten", ("gap",), False, False),
        ("fc", "linear", ("flatten",), False, False),
    ]


def test_resnet20_graph_has_option_a_shortcuts_and_adds():
    nodes, out = kinds(CifarResNet(3))
    by_kind = {}
    for n in nodes:
        by_kind.setdefault(n[1], []).append(n)
    assert len(by_kind["conv"]) == 19 and len(by_kind["linear"]) == 1 and len(by_kind["add"]) == 9
    assert [n[0] for n in by_kind["shortcut"]] == ["layer2.0.shortcut", "layer3.0.shortcut"]
    assert ("layer2.0.add", "add", ("layer2.0.conv2", "layer2.0.shortcut"), True, False) in nodes
    assert all(n[4] for n in by_kind["conv"]) and out == "linear"


class Sigmoidal(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        return torch.sigmoid(self.conv(x))


class SharedPreBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, groups=2)

    def forward(self, x):
        return self.conv(x)


@pytest.mark.parametrize("model, text", [
    (Sigmoidal(), "operation 'sigmoid'"),
    (SharedPreBN(), "batch norm 'bn' must directly follow"),
    (Grouped(), "conv 'conv': only groups=1"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.GELU()), "module '1' (GELU) is not supported"),
])
def test_unsupported_models_are_named(model, text):
    with pytest.raises(CaptureError, match=re.escape(text)):
        capture(model)
