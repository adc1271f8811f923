import torch

from talnet.model.matching import label_anchors, label_proposals, pairwise_tiou
from talnet.model.sampling import sample_labels


def test_pairwise_tiou_hand_case():
    iou = pairwise_tiou(torch.tensor([[0.0, 10.0]]), torch.tensor([[5.0, 15.0], [20.0, 30.0]]))
    assert torch.allclose(iou, torch.tensor([[5 / 15, 0.0]]))


def test_anchor_labels_positive_negative_ignored():
    gt = torch.tensor([[0.0, 10.0]])
    anchors = torch.tensor(
        [
            [0.0, 10.0],  # tIoU 1.0 -> positive
            [0.0, 8.0],  # 0.8 -> positive
            [0.0, 6.0],  # 0.6 -> ignored
            [0.0, 3.5],  # 0.35 -> ignored
            [0.0, 2.0],  # 0.2 -> negative
            [50.0, 60.0],  # 0 -> negative
        ]
    )
    labels, matched = label_anchors(anchors, gt, 0.7, 0.3)
    assert labels.tolist() == [1, 1, -1, -1, 0, 0]
    assert matched[:2].tolist() == [0, 0]


def test_every_ground_truth_forced_to_a_positive_anchor():
    gt = torch.tensor([[0.0, 10.0], [100.0, 101.0]])
    # the second ground truth's best anchor overlaps it only 0.4: still made positive
    anchors = torch.tensor([[0.0, 10.0], [100.0, 102.5], [99.0, 103.0], [200.0, 210.0]])
    labels, matched = label_anchors(anchors, gt, 0.7, 0.3)
    assert labels.tolist() == [1, 1, 0, 0]
    assert matched[1].item() == 1


def test_no_ground_truth_means_all_negative():
    labels, _ = label_anchors(torch.tensor([[0.0, 1.0], [1.0, 3.0]]), torch.zeros(0, 2))
    assert labels.tolist() == [0, 0]


def test_proposal_labels_need_tiou_above_half():
    gt = torch.tensor([[0.0, 10.0], [20.0, 30.0]])
    gt_labels = torch.tensor([3, 7])
    proposals = torch.tensor(
        [[0.0, 6.0], [0.0, 5.0], [21.0, 30.0], [12.0, 18.0], [0.0, 4.0]]  # .6, .5, .9, 0, .4
    )
    labels, matched = label_proposals(proposals, gt, gt_labels, 0.5)
    assert labels.tolist() == [3, 0, 7, 0, 0]
    assert matched[2].item() == 1


def test_sampler_counts_and_fraction():
    labels = torch.cat([torch.ones(300), torch.zeros(1000), -torch.ones(50)]).long()
    gen = torch.Generator().manual_seed(0)
    pos, neg = sample_labels(labels, 256, 0.5, gen)
    assert len(pos) == 128 and len(neg) == 128
    assert (labels[pos] == 1).all() and (labels[neg] == 0).all()
    assert len(set(pos.tolist())) == 128  # no repeats


def test_sampler_with_fewer_positives_than_asked_fills_with_negatives():
    labels = torch.cat([torch.full((5,), 2), torch.zeros(1000), -torch.ones(10)]).long()
    pos, neg = sample_labels(labels, 64, 0.25, torch.Generator().manual_seed(1))
    assert len(pos) == 5 and len(neg) == 59


def test_sampler_with_too_few_examples_returns_what_exists():
    labels = torch.tensor([1, 0, 0, -1, -1])
    pos, neg = sample_labels(labels, 256, 0.5)
    assert sorted(pos.tolist()) == [0] and sorted(neg.tolist()) == [1, 2]


def test_pairwise_tiou_broadcasts_leading_dimensions():
    a = torch.tensor([[[0.0, 10.0], [5.0, 15.0]], [[0.0, 4.0], [2.0, 3.0]]])  # (2, 2, 2)
    b = torch.tensor([[[0.0, 10.0]], [[1.0, 3.0]]])  # (2, 1, 2)
    iou = pairwise_tiou(a, b)
    assert iou.shape == (2, 2, 1)
    assert torch.allclose(iou[:, :, 0], torch.tensor([[1.0, 5 / 15], [2 / 4, 1 / 2]]))
    for g in range(2):  # the same as one group at a time
        assert torch.equal(iou[g], pairwise_tiou(a[g], b[g]))
