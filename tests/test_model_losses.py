import math

import torch

from talnet.model.losses import stage_loss


def test_stage_loss_tiny_case():
    logits = torch.zeros(4, 2)  # uniform: cross-entropy log 2 each
    labels = torch.tensor([1, 1, 0, 0])
    offsets = torch.tensor([[0.5, 0.0], [0.0, 2.0], [9.0, 9.0], [9.0, 9.0]])
    targets = torch.zeros(4, 2)
    cls, reg = stage_loss(logits, labels, offsets, targets, reg_weight=1.0)
    assert math.isclose(cls.item(), math.log(2), rel_tol=1e-6)
    # smooth L1: 0.5 * 0.5^2 = 0.125 and 2 - 0.5 = 1.5; background rows ignored; / 4 examples
    assert math.isclose(reg.item(), (0.125 + 1.5) / 4, rel_tol=1e-6)


def test_stage_loss_lambda_and_no_foreground():
    logits = torch.tensor([[10.0, -10.0]])
    cls, reg = stage_loss(logits, torch.tensor([0]), torch.ones(1, 2), torch.zeros(1, 2), 5.0)
    assert cls.item() < 1e-6 and reg.item() == 0.0
    _, reg2 = stage_loss(logits, torch.tensor([1]), torch.ones(1, 2), torch.zeros(1, 2), 2.0)
    assert math.isclose(reg2.item(), 2.0 * (0.5 + 0.5), rel_tol=1e-6)
