"""The one config object of the model stage: dataclasses loaded from YAML (docs/design.md §3).

Every number of the paper's model and recipe is a key here; `talnet/configs/*.yaml` ship the
named presets (`thumos14_i3d`: the supplement's recipe; `cpu_fast`: the CPU-budget schedule).
Feature dimensions, streams, fps, stride and window are NOT config: they come from the features.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml

from talnet.config_legacy import upgrade_legacy_keys
from talnet.errors import TalnetError
from talnet.io.atomic import atomic_open

DEFAULT_CONFIG = "thumos14_i3d"
PROTOCOLS = ("thumos", "activitynet")  # evaluation protocols (tIoU thresholds), talnet.evaluate
DEFAULT_PROTOCOL = "thumos"
STEP_VOTES = ("probs", "logprobs")  # detect.step_vote: how a window's steps are pooled
# model.window_parts by default: the segment, half its length before it and as much after it
DEFAULT_WINDOW_PARTS = ((0.0, 1.0), (-0.5, 0.0), (1.0, 1.5))
DEFAULT_EDGE_BINS = (-0.4, -0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3, 0.4)  # model.edge_bins
PROPOSAL_SCORES = ("objectness", "actionness", "product")  # detect.proposal_score, _rank


@dataclass
class ModelConfig:
    """Architecture (docs/design.md §3). Scales and lengths are in feature steps."""

    # Anchor lengths in feature steps, one proposal tower per scale.
    anchors: list[float] = field(
        default_factory=lambda: [2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 91, 128, 181, 256, 362, 512]
    )
    # "steps": anchors in feature steps; "video": fractions of the N steps every video was
    # resampled to (talnet resample-features), turned into steps by `resolve_anchors`.
    anchor_unit: str = "steps"
    # Which feature streams to use; None = every stream the features have.
    streams: list[str] | None = None
    fusion: str = "late"  # "late": one network per stream, logits averaged; "early": concat
    multi_tower: bool = True  # False: one shared tower (receptive field `shared_rf`) for all K
    shared_rf: int = 16
    # The towers' stride-1 pooling: "max" (the paper) or "mean", which keeps a weak signal
    # spread over many steps where a max picks the noise's peaks.
    tower_pool: str = "max"
    spn_context: bool = True  # tower receptive field 2s instead of s
    cls_context: bool = True  # SoI pooling over the proposal extended by l/2 on each side
    spn_reduce_dim: int = 256  # 1x1 conv before the towers
    tower_dim: int = 256
    soi_reduce_dim: int = 128  # 1x1 conv before SoI pooling
    soi_bins: int = 16
    # "interp": linear interpolation; "max" / "mean": exact max / mean over each bin's steps
    soi_mode: str = "interp"
    soi_samples: int = 2  # interpolation samples per bin (averaged)
    fc_dim: int = 1024
    dropout: float = 0.5
    # Offset encoding weights (w_c, w_l): t_c = w_c (c - c_a) / l_a, t_l = w_l log(l / l_a).
    offset_weights: list[float] = field(default_factory=lambda: [10.0, 5.0])
    # A video-level classifier trained with the model (ActivityNet practice): the streams'
    # features averaged and max-pooled over time, one hidden layer (0: none, a linear map),
    # C class logits.
    video_classifier: bool = False
    video_hidden: int = 512
    # Beyond the paper: a per-step head of start, end and actionness probabilities
    # (talnet.model.boundary) that snaps detection edges and proposes long runs of action.
    boundary_head: bool = False
    boundary_dim: int = 64
    boundary_dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    # Beyond the paper: per-step class logits from the classifier's reduced map and its centred
    # means over `step_context` steps (talnet.model.step_head), trained on every step.
    step_classifier: bool = False
    step_context: list[int] = field(default_factory=lambda: [9, 33])
    step_input: str = "reduced"  # "reduced": the classifier's reduced map; "features": the input
    # Beyond the paper: a linear classifier of a segment's mean input beside the means over half
    # its length before and after it (talnet.model.window_head), fitted after training on every
    # anchor window of the training videos (train.window_refit_epochs); detect.window_score_weight
    # mixes its class probability into the proposal classifier's.
    window_classifier: bool = False
    # Its parts, [start, end) in units of the segment's length from its start: the segment,
    # half its length before and after it. Each part's mean is one block of inputs.
    window_parts: list[list[float]] = field(
        default_factory=lambda: [list(part) for part in DEFAULT_WINDOW_PARTS]
    )
    # Beyond the paper: a linear regressor of each detection's start and end offsets from bin
    # means of the step head's and the window classifier's per-step signals of its class around
    # each edge (talnet.model.edge_head), fitted after training (train.edge_refit_samples).
    # Needs step_classifier and window_classifier (with a part [0, 1]). Its bins' edges, in
    # units of the segment's length from each edge:
    edge_regressor: bool = False
    edge_bins: list[float] = field(default_factory=lambda: list(DEFAULT_EDGE_BINS))
    # A cascade of this many stages, each moving the edges the one before left (fitted on the
    # training windows as those stages moved them); 1: one linear map.
    edge_stages: int = 1


def budget(floor: int, per_step: float, length: int) -> int:
    """A count that grows with the video: at least `floor`, else `per_step` per step (rounded)."""
    return max(int(floor), int(round(per_step * length)))


@dataclass(frozen=True)
class ProposalBudget:
    """One phase's proposal settings (training or test), as `ProposalConfig.for_phase` gives."""

    pre_nms: int  # top-scoring anchors into proposal NMS
    post_nms: int  # proposals kept after NMS (at least; see post_nms_per_step)
    post_nms_per_step: float  # and this many per feature step of the video
    nms: float  # tIoU threshold of proposal NMS
    fill_per_step: float = 0.0  # this many more per step, kept by the looser `fill_nms`
    fill_nms: float = 0.9

    def counts(self, length: int) -> tuple[int, int]:
        """(pre_nms, post_nms) for a video of `length` steps: a budget grown with the video
        (and its fill) draws on proportionally more anchors before NMS."""
        post_nms = budget(self.post_nms, self.post_nms_per_step, length)
        total = post_nms + self.fill(length)
        return max(self.pre_nms, round(self.pre_nms * total / self.post_nms)), post_nms

    def fill(self, length: int) -> int:
        """How many proposals beyond post_nms a video of `length` steps gets from the looser
        NMS (ranked after the others: recall at strict tIoU without crowding the top)."""
        return int(round(self.fill_per_step * length))


@dataclass
class ProposalConfig:
    """Proposals from the proposal network into the classifier; like detectron2's RPN, each
    setting has a training value and a test value (`for_phase` picks one set)."""

    pre_nms_train: int = 2000  # top-scoring anchors into proposal NMS
    pre_nms_test: int = 1000
    post_nms_train: int = 300  # proposals kept after NMS, into the classifier
    post_nms_test: int = 100
    # Budgets that grow with the video: at least post_nms_* proposals, and this many per
    # feature step of the video (0 = a fixed count per video). A 28-minute THUMOS'14 video
    # holds 200 actions; a fixed count starves it while a 30 s clip drowns in proposals.
    post_nms_per_step_train: float = 0.0
    post_nms_per_step_test: float = 0.0
    nms_train: float = 0.7  # tIoU threshold of proposal NMS
    nms_test: float = 0.7
    # At test time, beyond the budget: this many more proposals per step, the best of those that
    # a looser NMS (tIoU fill_nms_test) keeps and the budget's did not, scored below every one of
    # the budget's. Near-duplicates that NMS at 0.7 drops are what matches at tIoU 0.8 - 0.95.
    fill_per_step_test: float = 0.0
    fill_nms_test: float = 0.9
    # With model.boundary_head (or else model.step_classifier: 1 - its background probability):
    # runs of steps whose actionness exceeds each threshold join the proposals before NMS,
    # reaching actions longer than any anchor.
    actionness_thresholds: list[float] = field(default_factory=list)
    # ... or, with model.step_classifier, the runs of each class's per-step probability
    actionness_per_class: bool = False
    # Runs are grouped on the actionness as it is (width 1) and on its centred moving average
    # over each of these widths (e.g. [1, 9]), all joined: a faint signal breaks a run that a
    # mean over a few steps keeps whole. Empty: as it is only.
    actionness_smooth: list[int] = field(default_factory=list)
    # Segments that always join the proposals after NMS, scored as the best one (ActivityNet
    # practice: a lone instance often fills most of its video): the whole video with its start
    # and its end each trimmed by every fraction listed ([0, 0.1]: the whole video and three
    # near-whole segments). Empty: none.
    whole_video_trims: list[float] = field(default_factory=list)

    def for_phase(self, training: bool) -> ProposalBudget:
        """The training or the test settings as one typed object."""
        if training:
            return ProposalBudget(
                self.pre_nms_train, self.post_nms_train, self.post_nms_per_step_train,
                self.nms_train,
            )  # fmt: skip
        return ProposalBudget(
            self.pre_nms_test, self.post_nms_test, self.post_nms_per_step_test, self.nms_test,
            self.fill_per_step_test, self.fill_nms_test,
        )  # fmt: skip


@dataclass
class TrainConfig:
    """The training recipe (docs/design.md §3, the supplement) and the schedule around it."""

    epochs: int = 30
    lr: float = 1e-4
    weight_decay: float = 0.0
    schedule: str = "constant"  # "constant", "cosine" or "step"
    warmup_epochs: float = 0.0  # linear warm-up from lr/10, counted in epochs (may be fractional)
    min_lr_ratio: float = 0.01  # cosine decays to lr * min_lr_ratio
    step_epochs: list[int] = field(default_factory=list)
    step_gamma: float = 0.1
    windows_per_video: int = 1  # sampled crops of each training video per epoch
    # Crops per optimizer step: crops of equal length run through the networks together, each
    # with its own sampled anchors and proposals; the step's losses are the crops' mean.
    videos_per_batch: int = 1
    max_steps: int = 2048  # longer videos are randomly cropped to this many steps
    spn_batch: int = 256
    spn_positive_fraction: float = 0.5
    spn_positive_iou: float = 0.7
    spn_negative_iou: float = 0.3
    cls_batch: int = 64
    cls_foreground_fraction: float = 0.25
    cls_foreground_iou: float = 0.5
    reg_weight: float = 1.0  # lambda of the supplement's Eq. (1), both stages
    add_gt_proposals: bool = True  # ground truth joins the classifier's proposal pool
    # Jittered copies of each ground truth joining the pool (centre +-10 %, length x0.8-1.25):
    # more foreground examples per step while the proposal network is still poor.
    gt_jitter: int = 0
    grad_clip: float = 0.0  # 0 = off
    video_cls_weight: float = 1.0  # weight of the video-level classifier's loss (if any)
    # Dropout on the input features while training: each number zeroed with this probability
    # (the rest scaled up), so that a few training videos are not memorized step by step.
    input_dropout: float = 0.0
    boundary_weight: float = 1.0  # weight of the boundary head's loss (if any)
    step_weight: float = 1.0  # weight of the per-step class head's loss (if any)
    # After the last epoch, fit the per-step head again on every step of every training video
    # at once (full-batch Adam for this many epochs, standardized inputs; 0 = off): a linear
    # head converges where a few thousand noisy crop steps leave it short (model.step_input
    # "features" only; talnet.train.step_refit).
    step_refit_epochs: int = 0
    # Adam's L2 on the refit's standardized weights: the steps of a few videos are many but
    # correlated, and where each step's evidence is faint a weak L2 fits their noise
    step_refit_weight_decay: float = 1e-4
    # Full-batch Adam epochs of the window classifier's fit after the last epoch (needed with
    # model.window_classifier; talnet.train.window_refit).
    window_refit_epochs: int = 0
    window_refit_weight_decay: float = 1e-4  # Adam's L2 on the standardized inputs' weights
    # After the last epoch, fit the video-level classifier again on every training video's
    # pooled features at once (L-BFGS for at most this many iterations, standardized inputs,
    # L2 of a logistic regression's C = 1; 0 = off): one example per video is too few for a
    # few hundred noisy steps to converge (talnet.train.video_refit).
    video_refit_iterations: int = 0
    # Choose detect.step_score_weight on training videos the model has not yet seen (0 = off):
    # this fraction of them is held out of every epoch but the last fusion_final_epochs; before
    # those, each of fusion_weights is scored on them (mAP averaged over evaluate.protocol's
    # tIoUs) and the best kept, since the classifier's and the step head's relative strength
    # depends on the data (talnet.train.fusion).
    fusion_holdout: float = 0.0
    fusion_weights: list[float] = field(default_factory=list)
    fusion_final_epochs: int = 4
    # Or choose it after training, with no video held out of it (0 = off, else >= 2): the
    # training videos in this many folds, the step head and the window classifier fitted again
    # on all folds but one, and each of fusion_weights scored on the one left out, pooled, with
    # the window classifier in place of the proposal classifier (which trained on every fold).
    # Needs model.window_classifier; the heads of the checkpoint are still fitted on all videos.
    fusion_folds: int = 0
    # Learn from the training annotations which labels imply others (nearly every instance of
    # a also labelled b on the same segment: THUMOS'14's CliffDiving and Diving) and add them
    # to detect.implied_labels (talnet.model.implications).
    learn_implications: bool = False
    # model.edge_regressor's fit after the last epoch (talnet.train.edge_refit): this many
    # windows drawn around each training instance, each edge moved by up to edge_refit_jitter x
    # its length (uniform), ridge penalty edge_refit_ridge on standardized inputs. With
    # fusion_folds and edge_fold_choice, detect.edge_regress is also chosen on the folds: off
    # where it loses there (edge_fold_choice false: it stays as detect.edge_regress says).
    edge_refit_samples: int = 30
    edge_refit_jitter: float = 0.15
    edge_refit_ridge: float = 1.0
    edge_fold_choice: bool = True
    boundary_region: float = 0.1  # start / end targets: steps within this * length of an edge
    eval_every: int = 1  # held-out mAP every N epochs when a validation subset is given
    seed: int = 0


@dataclass
class DetectConfig:
    """Inference after the classifier: per-class NMS, output size, long-video windows."""

    score_threshold: float = 0.001
    class_nms: float = 0.4
    soft_nms: bool = False
    soft_nms_sigma: float = 0.5
    max_detections: int = 200
    # At least max_detections per video, and this many per feature step (0 = fixed count).
    detections_per_step: float = 0.0
    # Longer videos run the proposal towers in overlapping windows of this many steps.
    window_steps: int = 4096
    # Where class scores come from. "proposal": TAL-Net's classifier on each proposal.
    # "video" (ActivityNet practice): class-agnostic proposals, each scored as its proposal
    # score x the video-level probability of each of the video's top-k classes.
    class_scores: str = "proposal"
    video_top_k: int = 2
    # The class-agnostic score of a proposal with class_scores "video": "objectness" (first
    # stage), "actionness" (1 - the classifier's background probability) or their "product".
    proposal_score: str = "actionness"
    # With model.boundary_head: move each detection's start and end to the most likely start /
    # end step within snap_reach * its length, where that probability is >= snap_min_prob;
    # snap_to "centroid": to the centre of that peak's run above half its height instead.
    boundary_snap: bool = True
    snap_to: str = "peak"
    # With model.step_classifier: a detection's score is (1 - w) * the classifier's probability
    # + w * the per-step probability of its class inside it against just outside it: the mean
    # inside minus step_contrast x the mean over a quarter of its length on each side (>= 0).
    step_score_weight: float = 0.0
    step_contrast: float = 1.0
    # Label pairs [a, b]: a implies b (every a is also a b, on the same segment); detection
    # scores b by the probability of b or of any label implying it, since a softmax gives a
    # doubly labelled segment one class only (train.learn_implications finds them).
    implied_labels: list[list[str]] = field(default_factory=list)
    # How the vote pools a window's steps: "probs", the mean probability of the class;
    # "logprobs", the class's softmax share of the mean log-probability of every class (the
    # head's logits averaged: a linear classifier of the window's mean, sharp where each step's
    # evidence is weak).
    step_vote: str = "probs"
    # With model.window_classifier: a detection's class probability is (1 - a) x the proposal
    # classifier's + a x the window classifier's, before the step head's vote is mixed in.
    window_score_weight: float = 0.0
    # How proposals are ranked where they are the output (talnet detect --proposals, AR):
    # "objectness" (the first stage, the paper), "actionness" (re-scored by the second stage:
    # the classifier's 1 - background probability, mixed with the step head's vote for any
    # action by step_score_weight) or "product" (the two multiplied).
    proposal_rank: str = "objectness"
    # Where proposals are the output: move each one as its detection of its most probable class
    # would be moved (the classifier's offsets of that class, the boundary snap, the edge
    # regressor), keeping its score: class-agnostic segments placed by the second stage.
    refine_proposals: bool = False
    # ... and then those that overlap a better refined one by tIoU > this ranked after all the
    # others (1 = off): refinement gathers near-duplicates onto one place.
    refined_proposal_nms: float = 1.0
    snap_reach: float = 0.25
    snap_min_prob: float = 0.5
    # Boundary voting (0 = off): after per-class NMS each detection's start and end become the
    # mean of its class's candidates overlapping it by tIoU >= this, weighted by score^power.
    boundary_vote: float = 0.0
    boundary_vote_power: float = 1.0
    # With model.edge_regressor: move each detection's edges by its regressed offsets before
    # it is scored (off: the classifier's refinement alone; train.fusion_folds may choose).
    edge_regress: bool = True


@dataclass
class EvaluateConfig:
    """How talnet scores this model's detections where it chooses (training validation, the
    demo, the report): `protocol` "thumos" (tIoU 0.1-0.7) or "activitynet" (0.5:0.05:0.95)."""

    protocol: str = DEFAULT_PROTOCOL


@dataclass
class Config:
    """Everything the model stage needs, passed down as one object."""

    model: ModelConfig = field(default_factory=ModelConfig)
    proposals: ProposalConfig = field(default_factory=ProposalConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of primitives (safe for YAML and for torch.load(weights_only=True))."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str | Path | None = None) -> Config:
        """Build from a (possibly partial) dict; unknown keys are errors naming `source`."""
        if not isinstance(raw, dict):
            raise TalnetError("config must be a mapping of sections", source)
        raw = upgrade_legacy_keys(raw)
        sections = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(raw) - set(sections)
        if unknown:
            raise TalnetError(f"unknown config section(s): {sorted(unknown)}", source)
        built = {}
        for name, fld in sections.items():
            section_cls = fld.default_factory().__class__  # type: ignore[misc]
            built[name] = _build_section(section_cls, raw.get(name) or {}, name, source)
        config = cls(**built)
        config.validate(source)
        return config

    def validate(self, source: str | Path | None = None) -> None:
        """Reject values the model cannot run with, naming the key."""
        m, p, t, d = self.model, self.proposals, self.train, self.detect
        in_steps = m.anchor_unit == "steps"
        largest = max(m.anchors) if in_steps and m.anchors else 0  # "video": checked on resolving
        checks = [
            (len(m.anchors) > 0 and all(a > 0 for a in m.anchors), "model.anchors: positive"),
            (m.anchor_unit in ("steps", "video"), "model.anchor_unit: 'steps' or 'video'"),
            (in_steps or max(m.anchors) <= 1, "model.anchors: fractions in (0, 1] for 'video'"),
            (m.fusion in ("late", "early"), "model.fusion: 'late' or 'early'"),
            (m.soi_mode in ("interp", "max", "mean"), "model.soi_mode: interp, max or mean"),
            (m.tower_pool in ("max", "mean"), "model.tower_pool: 'max' or 'mean'"),
            (m.streams is None or len(m.streams) > 0, "model.streams: non-empty or null"),
            (t.schedule in ("constant", "cosine", "step"), "train.schedule"),
            (0 < t.spn_positive_fraction <= 1, "train.spn_positive_fraction in (0, 1]"),
            (0 < t.cls_foreground_fraction <= 1, "train.cls_foreground_fraction in (0, 1]"),
            (t.spn_negative_iou <= t.spn_positive_iou, "train.spn_negative_iou <= positive"),
            (t.epochs >= 0 and t.windows_per_video >= 1, "train.epochs / windows_per_video"),
            (0 <= t.input_dropout < 1, "train.input_dropout in [0, 1)"),
            (t.videos_per_batch >= 1, "train.videos_per_batch: at least 1"),
            (t.step_refit_epochs == 0 or t.step_refit_epochs > 0 and m.step_classifier
             and m.step_input == "features",
             "train.step_refit_epochs needs model.step_classifier with step_input 'features'"),
            (t.step_refit_weight_decay >= 0, "train.step_refit_weight_decay >= 0"),
            (t.max_steps >= 2 * largest, "train.max_steps >= 2 * largest anchor"),
            (len(m.offset_weights) == 2 and min(m.offset_weights) > 0, "model.offset_weights"),
            (min(p.pre_nms_train, p.post_nms_train) > 0, "proposals.*_train: positive"),
            (min(p.pre_nms_test, p.post_nms_test) > 0, "proposals.*_test: positive"),
            (d.max_detections > 0, "detect.max_detections: positive"),
            (min(p.post_nms_per_step_train, p.post_nms_per_step_test) >= 0, "proposals.*_per_step"),
            (p.fill_per_step_test >= 0 and 0 < p.fill_nms_test <= 1,
             "proposals.fill_per_step_test >= 0, fill_nms_test in (0, 1]"),
            (d.detections_per_step >= 0, "detect.detections_per_step: >= 0"),
            (d.window_steps >= 4 * largest, "detect.window_steps >= 4 * largest anchor"),
            (d.class_scores in ("proposal", "video"), "detect.class_scores: 'proposal' or 'video'"),
            (d.class_scores != "video" or m.video_classifier,
             "detect.class_scores 'video' needs model.video_classifier: true"),
            (d.video_top_k >= 1, "detect.video_top_k: at least 1"),
            (d.proposal_score in PROPOSAL_SCORES,
             f"detect.proposal_score: one of {PROPOSAL_SCORES}"),
            (m.video_hidden >= 0 and t.video_cls_weight >= 0,
             "model.video_hidden >= 0 (0: linear), train.video_cls_weight >= 0"),
            (t.video_refit_iterations >= 0
             and (t.video_refit_iterations == 0 or m.video_classifier),
             "train.video_refit_iterations: >= 0, and needs model.video_classifier: true"),
            (self.evaluate.protocol in PROTOCOLS, f"evaluate.protocol: one of {PROTOCOLS}"),
            (m.boundary_dim >= 1 and all(x >= 1 for x in m.boundary_dilations),
             "model.boundary_dim and boundary_dilations: positive"),
            (all(0 <= x < 0.5 for x in p.whole_video_trims),
             "proposals.whole_video_trims: fractions in [0, 0.5)"),
            (all(0 < x < 1 for x in p.actionness_thresholds),
             "proposals.actionness_thresholds: in (0, 1)"),
            (all(w >= 1 for w in p.actionness_smooth),
             "proposals.actionness_smooth: widths of at least 1"),
            (not p.actionness_per_class or m.step_classifier,
             "proposals.actionness_per_class needs model.step_classifier: true"),
            (not p.actionness_thresholds or m.boundary_head or m.step_classifier,
             "proposals.actionness_thresholds need model.boundary_head or step_classifier"),
            (0 <= d.step_score_weight <= 1, "detect.step_score_weight in [0, 1]"),
            (d.step_contrast >= 0, "detect.step_contrast: at least 0"),
            (all(isinstance(x, list) and len(x) == 2 and all(isinstance(n, str) for n in x)
                 and x[0] != x[1] for x in d.implied_labels),
             "detect.implied_labels: pairs [label, label it implies] of two different labels"),
            (not m.window_classifier or t.window_refit_epochs > 0,
             "model.window_classifier needs train.window_refit_epochs > 0 (how it is fitted)"),
            (t.window_refit_epochs == 0 or t.window_refit_epochs > 0 and m.window_classifier,
             "train.window_refit_epochs: at least 0, and needs model.window_classifier: true"),
            (0 <= d.window_score_weight <= 1, "detect.window_score_weight in [0, 1]"),
            (len(m.window_parts) > 0
             and all(len(x) == 2 and x[0] < x[1] for x in m.window_parts)
             and t.window_refit_weight_decay >= 0,
             "model.window_parts: [start, end] pairs with start < end; "
             "train.window_refit_weight_decay >= 0"),
            (not d.window_score_weight or m.window_classifier,
             "detect.window_score_weight needs model.window_classifier: true"),
            (not d.window_score_weight or d.class_scores == "proposal",
             "detect.window_score_weight scores proposals by class: class_scores 'proposal'"),
            (d.step_vote in STEP_VOTES, f"detect.step_vote: one of {STEP_VOTES}"),
            (d.proposal_rank in PROPOSAL_SCORES, f"detect.proposal_rank: one of {PROPOSAL_SCORES}"),
            (0 < d.refined_proposal_nms <= 1, "detect.refined_proposal_nms: a tIoU in (0, 1]"),
            (0 <= d.boundary_vote <= 1 and d.boundary_vote_power > 0,
             "detect.boundary_vote: 0 (off) or a tIoU in (0, 1]; boundary_vote_power > 0"),
            (0 <= t.fusion_holdout < 1, "train.fusion_holdout in [0, 1)"),
            (not t.fusion_holdout or t.fusion_weights and m.step_classifier
             and all(0 <= w <= 1 for w in t.fusion_weights),
             "train.fusion_holdout needs fusion_weights in [0, 1] and model.step_classifier"),
            (not t.fusion_holdout or 1 <= t.fusion_final_epochs < t.epochs,
             "train.fusion_final_epochs: at least 1 and fewer than train.epochs"),
            (t.fusion_folds == 0 or t.fusion_folds >= 2 and not t.fusion_holdout,
             "train.fusion_folds: 0 (off) or at least 2, and not with train.fusion_holdout"),
            (not t.fusion_folds or t.fusion_weights and m.window_classifier
             and m.step_classifier and all(0 <= w <= 1 for w in t.fusion_weights),
             "train.fusion_folds needs fusion_weights in [0, 1], model.step_classifier and "
             "model.window_classifier"),
            (not d.step_score_weight or m.step_classifier,
             "detect.step_score_weight needs model.step_classifier: true"),
            (all(w >= 1 for w in m.step_context) and m.step_input in ("reduced", "features"),
             "model.step_context: widths >= 1; model.step_input: 'reduced' or 'features'"),
            (d.snap_reach >= 0 and 0 <= d.snap_min_prob <= 1 and t.boundary_region > 0,
             "detect.snap_reach >= 0, snap_min_prob in [0, 1], train.boundary_region > 0"),
            (d.snap_to in ("peak", "centroid"), "detect.snap_to: peak or centroid"),
            (not m.edge_regressor or m.step_classifier and m.window_classifier
             and [0.0, 1.0] in [list(map(float, x)) for x in m.window_parts],
             "model.edge_regressor needs model.step_classifier and model.window_classifier "
             "with a window part [0, 1]"),
            (len(m.edge_bins) >= 2 and all(a < b for a, b in pairwise(m.edge_bins)),
             "model.edge_bins: at least two increasing bin edges"),
            (m.edge_stages >= 1, "model.edge_stages: at least 1"),
            (t.edge_refit_samples >= 1 and t.edge_refit_jitter >= 0 and t.edge_refit_ridge >= 0,
             "train.edge_refit_samples >= 1, edge_refit_jitter >= 0, edge_refit_ridge >= 0"),
        ]  # fmt: skip
        for ok, what in checks:
            if not ok:
                raise TalnetError(f"bad config value: {what}", source)


# Edits of a config, {section: {field: value}} (ablation variants, tuning grids, detection
# budgets): applied with `dataclasses.replace`, so a field that does not exist is an error.
Edits = dict[str, dict[str, Any]]


def edit_config(base: Config, edits: Edits) -> Config:
    """A copy of `base` with the edits applied and validated; an unknown section or field is a
    TalnetError naming it."""
    sections = {f.name for f in dataclasses.fields(Config)}
    changed = {}
    for section, fields in edits.items():
        if section not in sections:
            raise TalnetError(f"unknown config section {section!r}; sections: {sorted(sections)}")
        try:
            changed[section] = dataclasses.replace(getattr(base, section), **copy.deepcopy(fields))
        except TypeError as exc:
            known = sorted(f.name for f in dataclasses.fields(getattr(base, section)))
            raise TalnetError(f"bad edit of {section}: {exc}; its fields: {known}") from exc
    config = copy.deepcopy(dataclasses.replace(base, **changed))
    config.validate()
    return config


def _build_section(section_cls: type, raw: Any, name: str, source: Any) -> Any:
    if not isinstance(raw, dict):
        raise TalnetError(f"config section {name!r} must be a mapping", source)
    known = {f.name for f in dataclasses.fields(section_cls)}
    unknown = set(raw) - known
    if unknown:
        raise TalnetError(f"unknown key(s) in {name}: {sorted(unknown)}", source)
    try:
        return section_cls(**raw)
    except TypeError as exc:
        raise TalnetError(f"bad config section {name!r}: {exc}", source) from exc


def resolve_anchors(
    config: Config, resample_steps: int | None, source: str | Path | None = None
) -> Config:
    """The config with anchors in feature steps: unchanged for model.anchor_unit "steps"; for
    "video", a copy whose anchors are the fractions times N, the steps every video of the
    features was resampled to (an error naming `source` for features not resampled)."""
    if config.model.anchor_unit == "steps":
        return config
    if resample_steps is None:
        raise TalnetError(
            "model.anchor_unit 'video' needs features resampled to a fixed number of steps per "
            "video (talnet resample-features)",
            source,
        )
    resolved = Config.from_dict(config.to_dict())
    resolved.model.anchors = [round(a * resample_steps, 4) for a in config.model.anchors]
    resolved.model.anchor_unit = "steps"
    resolved.validate(source)
    return resolved


def preset_names() -> list[str]:
    """Names of the YAML presets shipped inside the package."""
    folder = resources.files("talnet") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_config(path_or_name: str | Path | None = None) -> Config:
    """Load a YAML config file, or a shipped preset by name (default: thumos14_i3d)."""
    target = path_or_name or DEFAULT_CONFIG
    path = Path(target)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise TalnetError("config file not found", path)
        text, source = path.read_text(), path
    else:
        if str(target) not in preset_names():
            raise TalnetError(f"no such config preset {target!r}; presets: {preset_names()}")
        ref = resources.files("talnet") / "configs" / f"{target}.yaml"
        text, source = ref.read_text(), f"talnet/configs/{target}.yaml"
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise TalnetError(f"cannot parse YAML: {exc}", source) from exc
    return Config.from_dict(raw, source)


def save_config(path: str | Path, config: Config) -> None:
    """Write the config as YAML atomically (saved beside every checkpoint)."""
    with atomic_open(path) as handle:
        yaml.safe_dump(config.to_dict(), handle, sort_keys=False)
