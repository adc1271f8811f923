"""Detection mAP and proposal AR@AN, matching ActivityNet's reference evaluation."""

from talnet.evaluate.detection import (
    ACTIVITYNET_TIOUS,
    THUMOS_TIOUS,
    DetectionReport,
    evaluate_detection,
    precision_recall,
    video_ap,
)
from talnet.evaluate.proposals import AN_VALUES, PROPOSAL_TIOUS, ProposalReport, evaluate_proposals
from talnet.evaluate.tiou import tiou_matrix

__all__ = [
    "ACTIVITYNET_TIOUS",
    "AN_VALUES",
    "PROPOSAL_TIOUS",
    "THUMOS_TIOUS",
    "DetectionReport",
    "ProposalReport",
    "evaluate_detection",
    "evaluate_proposals",
    "precision_recall",
    "tiou_matrix",
    "video_ap",
]
