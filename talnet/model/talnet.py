"""TAL-Net: per-stream proposal network and classifier, fused late by averaging logits.

The model owns its forward pass (docs/design.md §3-§4), as torchvision's and detectron2's
region proposal networks do: `model(features)` returns one video's detections in feature steps,
`model(features, targets)` returns the classifier's proposals and the four losses of training.

Long-video policy (inference, talnet.model.windows): every per-step network (proposal towers,
boundary and step heads, the classifier's 1x1 reduced map, the video head's pooling) runs on the
whole video up to `detect.window_steps` steps, and beyond that window by window, one window at a
time, over the fewest equal windows of at most that many steps, each step's output taken from
the window where it lies farthest from an edge. The overlap (twice the widest reach, at most half
a window: >= 2x the largest anchor, which the config checks) covers the widest receptive field
with context, so the result equals a whole-video pass up to float rounding. The classifier then
pools the stitched reduced map (T, D); proposal candidates keep one score per anchor and step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from talnet.config import Config, budget
from talnet.errors import TalnetError
from talnet.model.boundary import (
    BOUNDARY_LOSS,
    actionness_runs,
    proposal_actionness,
    snap_edges,
)
from talnet.model.coder import SegmentCoder
from talnet.model.edge_head import EdgeRegressor, edge_signals
from talnet.model.losses import LOSS_NAMES
from talnet.model.nms import batched_nms, soft_nms, vote_boundaries
from talnet.model.proposals import (
    demote_duplicates,
    generate_proposals,
    ranked_proposals,
    whole_video_segments,
)
from talnet.model.step_head import STEP_LOSS, contrast_scores
from talnet.model.stream import StreamNetwork, fuse, fused_probabilities
from talnet.model.targets import (
    GroundTruthSteps,
)
from talnet.model.towers import propose_jointly
from talnet.model.training import training_losses
from talnet.model.video_head import VIDEO_LOSS, VideoClassifier
from talnet.model.window_head import WindowClassifier
from talnet.model.windows import (
    Outputs,
    VideoRows,
    plan_windows,
    pooled_mean_max,
    stitch_outputs,
    stitched,
    top_candidates,
    window_outputs,
)


@dataclass
class StepDetections:
    """One video's detections in feature steps, best first."""

    segments: torch.Tensor  # (M, 2) [start, end]
    classes: torch.Tensor  # (M,) long, class index 0..C-1
    scores: torch.Tensor  # (M,)


class TalNet(nn.Module):
    """The whole model. Late fusion: one StreamNetwork per stream, logits averaged; early
    fusion: one StreamNetwork on the streams' concatenated features.

    Inputs are {stream: (T, C)} tensors of one video; stream dims come from the features. The
    config is held by reference: detection settings changed on it apply to the next call.
    With `model.video_classifier`, a video-level classifier on all streams is trained beside.
    """

    def __init__(self, stream_dims: dict[str, int], num_classes: int, config: Config):
        super().__init__()
        cfg = config.model
        if cfg.anchor_unit != "steps":
            raise TalnetError(
                "model.anchor_unit 'video': anchors are fractions of the resampled length; "
                "turn them into steps first (talnet.config.resolve_anchors)"
            )
        streams = list(cfg.streams or stream_dims)
        missing = [s for s in streams if s not in stream_dims]
        if missing:
            raise TalnetError(
                f"config asks for stream(s) {missing} but the features have {list(stream_dims)}"
            )
        self.config = config
        self.num_classes = num_classes
        self.stream_dims = {s: int(stream_dims[s]) for s in streams}
        if cfg.fusion == "early":
            self.branch_streams = {"+".join(streams): streams}
        else:
            self.branch_streams = {s: [s] for s in streams}
        self.branches = nn.ModuleDict(
            {
                name: StreamNetwork(sum(self.stream_dims[s] for s in parts), num_classes, cfg)
                for name, parts in self.branch_streams.items()
            }
        )
        self.register_buffer("scales", torch.tensor(cfg.anchors, dtype=torch.float32), False)
        self.coder = SegmentCoder(tuple(cfg.offset_weights))
        self.video_head: VideoClassifier | None = None
        if cfg.video_classifier:
            in_dim = sum(self.stream_dims.values())
            self.video_head = VideoClassifier(in_dim, num_classes, cfg.video_hidden, cfg.dropout)
        self.window_head: WindowClassifier | None = None
        if cfg.window_classifier:  # fitted after training (talnet.train.window_refit)
            in_dim = sum(self.stream_dims.values())
            self.window_head = WindowClassifier(in_dim, num_classes, cfg.window_parts)
        self.edge_head: EdgeRegressor | None = None
        if cfg.edge_regressor:  # fitted after training (talnet.train.edge_refit)
            self.edge_head = EdgeRegressor(cfg.edge_bins, cfg.edge_stages)
        self.loss_names = LOSS_NAMES + ((VIDEO_LOSS,) if self.video_head is not None else ())
        self.loss_names += (BOUNDARY_LOSS,) if cfg.boundary_head else ()
        self.loss_names += (STEP_LOSS,) if cfg.step_classifier else ()

    def forward(
        self,
        features: dict[str, torch.Tensor],
        targets: GroundTruthSteps | list[GroundTruthSteps] | None = None,
        generator: torch.Generator | None = None,
        video_probs: torch.Tensor | None = None,
        implied: torch.Tensor | None = None,
    ) -> StepDetections | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Inference (no targets): one video's detections in steps, with `video_probs` (C,)
        scored by those video-level class probabilities, with `implied` (C, C) each class's
        probabilities those of it or of a label implying it (see `_detect`). Training: the
        classifier's sampled proposals (N, 2) and the losses {spn_cls, spn_reg, cls_cls,
        cls_reg[, video_cls], loss}; `generator` draws the sampled anchors and proposals."""
        if targets is None:
            return self._detect(self.video_rows(features), video_probs, implied)
        inputs = self.branch_inputs(features)
        if isinstance(targets, GroundTruthSteps):  # one video: its proposals, not a list
            proposals, losses = training_losses(self, inputs, [targets], generator)
            return proposals[0], losses
        return training_losses(self, inputs, targets, generator)

    def video_probabilities(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """One video's class probabilities (C,) from the video-level classifier."""
        return self._video_probs(self.video_rows(features))

    def _video_probs(self, video: VideoRows) -> torch.Tensor:
        """The video-level classifier's probabilities (C,) on all branches' inputs side by
        side, pooled over time window by window (a long video is never concatenated whole)."""
        if self.video_head is None:
            raise TalnetError("this model has no video-level classifier (model.video_classifier)")
        plan = plan_windows(video.length, self.config.detect.window_steps, 0)
        logits = self.video_head.net(pooled_mean_max(video, plan))[0]
        return torch.softmax(logits.float(), dim=-1)

    def video_rows(self, features: dict[str, torch.Tensor]) -> VideoRows:
        """One video's {stream: (T, C)} (e.g. views of memory-mapped files), read window by
        window in its branches (streams side by side for early fusion) on the model's device."""
        return VideoRows(features, self.branch_streams, self.scales.device)

    def branch_inputs(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{stream: (T, C) or (B, T, C)} -> {branch: (B, T, C)} (concatenated for early fusion)."""
        out = {}
        for name, parts in self.branch_streams.items():
            xs = [features[s] if features[s].dim() == 3 else features[s][None] for s in parts]
            out[name] = torch.cat(xs, dim=-1) if len(xs) > 1 else xs[0]
        return out

    def boundary_logits(self, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Per branch: the boundary head's logits (B, T, 3) of start, end and actionness."""
        return [self.branches[name].boundary(x) for name, x in inputs.items()]

    def boundary_probabilities(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """One video's fused start / end / actionness probabilities (T, 3), or None without
        a boundary head."""
        if not self.config.model.boundary_head:
            return None
        return fused_probabilities(self.boundary_logits(inputs), torch.sigmoid)

    def step_logits(self, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Per branch: the per-step class head's logits (B, T, C + 1)."""
        raw = self.config.model.step_input == "features"
        branches = [(self.branches[name], x) for name, x in inputs.items()]
        return [b.step(x if raw else b.classifier.feature_map(x)) for b, x in branches]

    def step_probabilities(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """One video's fused per-step class probabilities (T, C + 1), or None without the head."""
        if not self.config.model.step_classifier:
            return None
        return fused_probabilities(self.step_logits(inputs), lambda z: torch.softmax(z, dim=-1))

    def propose(self, inputs: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per branch: objectness logits (B, K, T, 2) and offsets (B, K, T, 2)."""
        spns = [self.branches[name].spn for name in inputs]
        return propose_jointly(spns, list(inputs.values()))

    def propose_windowed(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Fused proposal-network outputs (K, T, 2) twice of one video's branch inputs, window
        by window if T exceeds `detect.window_steps` (equal to a whole-video pass, see the
        module docstring)."""
        video = VideoRows(inputs, {name: [name] for name in inputs})
        return stitch_outputs(self._window_outputs(video), video.length)

    def _window_outputs(self, video: VideoRows) -> Outputs:
        """Each window's fused tower outputs on the steps it owns (talnet.model.windows)."""
        # the overlap covers the widest receptive field (2x reach), at most half a window
        reach = max(self.branches[name].spn.reach for name in video.branches)
        plan = plan_windows(video.length, self.config.detect.window_steps, reach)
        return window_outputs(lambda rows: fuse(self.propose(rows)), video, plan)

    def _step_maps(self, video: VideoRows) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The boundary head's (T, 3) and the step head's (T, C + 1) fused probabilities (None
        without the head), window by window for a long video."""
        cfg, window = self.config.model, self.config.detect.window_steps
        boundary = steps = None
        if cfg.boundary_head:  # each dilated convolution reaches its dilation further
            plan = plan_windows(video.length, window, sum(cfg.boundary_dilations))
            boundary = stitched(self.boundary_probabilities, video, plan)
        if cfg.step_classifier:  # centred means over step_context steps
            plan = plan_windows(video.length, window, max(cfg.step_context, default=0) // 2)
            steps = stitched(self.step_probabilities, video, plan)
        return boundary, steps

    def _feature_maps(self, video: VideoRows) -> list[torch.Tensor]:
        """Every branch's classifier's reduced map (T, D) (per step: in plain windows)."""
        classifiers = [self.branches[name].classifier for name in video.branches]

        def maps(rows: dict[str, torch.Tensor]) -> list[torch.Tensor]:
            return [c.feature_map(x)[0] for c, x in zip(classifiers, rows.values(), strict=True)]

        return stitched(maps, video, plan_windows(video.length, self.config.detect.window_steps, 0))

    def classify(
        self, inputs: dict[str, torch.Tensor], proposals: torch.Tensor
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per branch: logits (N, C+1) and offsets (N, C+1, 2) for one video's proposals.

        Pooling is per channel, so branches that pool alike (late fusion's two streams) pool
        their channel-concatenated maps in one pass and split the result.
        """
        classifiers = [self.branches[name].classifier for name in inputs]
        fmaps = [c.feature_map(x)[0] for c, x in zip(classifiers, inputs.values(), strict=True)]
        return self._classify_maps(list(inputs), fmaps, proposals)

    def _classify_maps(
        self, names: list[str], fmaps: list[torch.Tensor], proposals: torch.Tensor
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """`classify` from the named branches' reduced maps (T, D) of one video."""
        classifiers = [self.branches[name].classifier for name in names]
        if len({c.pooling_key() for c in classifiers}) != 1:
            return [c(fmap, proposals) for c, fmap in zip(classifiers, fmaps, strict=True)]
        joint = fmaps[0] if len(fmaps) == 1 else torch.cat(fmaps, dim=-1)
        pooled = classifiers[0].pool(joint, proposals).split([f.shape[-1] for f in fmaps], -1)
        return [c.head(p) for c, p in zip(classifiers, pooled, strict=True)]

    def proposals(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference of the first stage alone: one video's class-agnostic proposals (N, 2) in
        steps and their scores (N,), best first, with the test budgets: the fused objectness,
        or the second stage's score of each as detect.proposal_rank says."""
        video = self.video_rows(features)
        boundary, steps = self._step_maps(video)
        actionness = proposal_actionness(self.config.proposals, boundary, steps)
        proposals, objectness = self._window_proposals(video, actionness)
        cfg = self.config.detect
        if not len(proposals) or (cfg.proposal_rank == "objectness" and not cfg.refine_proposals):
            return proposals, objectness
        return self._second_stage_ranked(video, proposals, objectness, boundary, steps)

    def _second_stage_ranked(
        self,
        video: VideoRows,
        proposals: torch.Tensor,
        objectness: torch.Tensor,
        boundary: torch.Tensor | None,
        steps: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Proposals (N, 2) re-scored by the second stage (detect.proposal_rank): the
        classifier's actionness (1 - its background probability), mixed with the window
        classifier's by detect.window_score_weight and with detect.step_score_weight w with the
        step head's vote for "any action" (`contrast_scores` of 1 - its background
        probability), times the objectness for "product"; with detect.refine_proposals each
        moved as its best class's detection would be (`_placed`) and those it
        gathers onto one place ranked last (detect.refined_proposal_nms); best first."""
        cfg = self.config.detect
        names = list(video.branches)
        logits, deltas = fuse(self._classify_maps(names, self._feature_maps(video), proposals))
        probs = torch.softmax(logits.float(), dim=-1)
        regress = cfg.refine_proposals and self._edge_regresses(steps)
        projections = None  # made once, for the window classifier and the edge regressor
        if cfg.window_score_weight > 0 or regress:
            projections = self._window_projections(video)
        if cfg.window_score_weight > 0:
            window = self._window_probs(video, proposals, projections)
            probs = (1 - cfg.window_score_weight) * probs + cfg.window_score_weight * window
        scores = objectness.float()
        if cfg.proposal_rank != "objectness":
            scores = 1.0 - probs[:, 0]
            if cfg.step_score_weight > 0 and steps is not None:
                action = 1.0 - steps[:, :1].float()  # (T, 1)
                vote = contrast_scores(action, proposals[None], outside=cfg.step_contrast)[0]
                scores = (1 - cfg.step_score_weight) * scores + cfg.step_score_weight * vote
            if cfg.proposal_rank == "product":
                scores = scores * objectness.float()
        if cfg.refine_proposals:
            deltas = self._whole_video_unrefined(deltas, video.length)
            best = probs[:, 1:].argmax(dim=1) + 1  # each proposal's best class column
            offsets = deltas[torch.arange(len(best), device=best.device), best].float()
            proposals = self._placed(
                proposals, offsets, best, video.length, boundary, steps, projections
            )
        order = scores.argsort(descending=True, stable=True)
        proposals, scores = proposals[order], scores[order]
        if cfg.refine_proposals and cfg.refined_proposal_nms < 1:
            return demote_duplicates(proposals, scores, cfg.refined_proposal_nms)
        return proposals, scores

    def _placed(
        self,
        references: torch.Tensor,
        offsets: torch.Tensor,
        columns: torch.Tensor,
        length: int,
        boundary: torch.Tensor | None,
        steps: torch.Tensor | None,
        projections: torch.Tensor | None,
    ) -> torch.Tensor:
        """Segments (M, 2) where the second stage puts proposals `references` (M, 2) as
        detections of class columns `columns` (M,): the classifier's `offsets` (M, 2) of that
        class decoded, clipped to the video, the boundary snap, then, with the edge regressor
        on, its cascade (`projections` made whenever it is)."""
        segments = self.coder.decode(references, offsets).clamp(-0.5, length - 0.5)
        segments = self._snap(segments, boundary)
        if self._edge_regresses(steps):
            assert projections is not None
            signals = self._edge_signals(steps, projections)
            segments = self.edge_head.refine(signals, segments, columns)
        return segments

    def _proposals(
        self,
        objectness: torch.Tensor,
        offsets: torch.Tensor,
        actionness: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused (K, T, 2) outputs -> ranked, NMS-filtered proposals (N, 2) in steps and their
        scores (N,), with the training or test settings of `proposals` by the module's mode;
        with an actionness (T,), its runs above proposals.actionness_thresholds join them."""
        phase = self.config.proposals.for_phase(self.training)
        t = objectness.shape[1]
        pre_nms, post_nms = phase.counts(t)
        extra = self._runs(actionness)
        return generate_proposals(
            objectness, offsets, self.scales, self.coder, pre_nms, phase.nms, post_nms, extra,
            fill=(phase.fill(t), phase.fill_nms),
        )  # fmt: skip

    def _window_proposals(
        self, video: VideoRows, actionness: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`_proposals` of one video computed window by window: each window keeps only its best
        anchors' offsets, and the result is exactly `_proposals` on the stitched outputs."""
        phase = self.config.proposals.for_phase(self.training)
        pre_nms, post_nms = phase.counts(video.length)
        best = top_candidates(self._window_outputs(video), video.length, pre_nms)
        return ranked_proposals(
            best.index, best.scores, best.offsets, best.length, self.scales, self.coder,
            phase.nms, post_nms, self._runs(actionness), self._whole_video(video.length),
            fill=(phase.fill(video.length), phase.fill_nms),
        )  # fmt: skip

    def _whole_video(self, length: int) -> torch.Tensor | None:
        """The whole-video segments (S, 2) that always join a video's proposals (None without
        proposals.whole_video_trims)."""
        trims = self.config.proposals.whole_video_trims
        return whole_video_segments(length, trims).to(self.scales.device) if trims else None

    def _whole_video_unrefined(self, deltas: torch.Tensor, length: int) -> torch.Tensor:
        """The classifier's offsets (N, C + 1, 2) with those of the whole-video proposals (the
        last rows, see `ranked_proposals`) zeroed: the video's own edges are exact, and a
        regression learnt on anchors would move them off."""
        whole = self._whole_video(length)
        if whole is None or not len(whole):
            return deltas
        return torch.cat([deltas[: -len(whole)], torch.zeros_like(deltas[-len(whole) :])])

    def _runs(self, actionness: torch.Tensor | None) -> tuple[torch.Tensor, ...] | None:
        """Runs of an actionness (T,) above proposals.actionness_thresholds (None without)."""
        thresholds = self.config.proposals.actionness_thresholds
        if actionness is None or not thresholds:
            return None
        return actionness_runs(actionness, thresholds)

    def _detect(
        self,
        video: VideoRows,
        video_probs: torch.Tensor | None = None,
        implied: torch.Tensor | None = None,
    ) -> StepDetections:
        """Proposals, their class scores and refined segments, per-class NMS: at most
        `detect.max_detections` detections, best first. Class scores are the classifier's per
        proposal, or with `video_probs` (C,) (or detect.class_scores "video", the model's own
        video-level classifier) each proposal's class-agnostic score times the probability of
        each of the video's `video_top_k` classes, its segment refined for that class. With
        `implied` (talnet.model.implications.implication_matrix) every class probability (the
        classifier's, the window classifier's, the step head's, the video's) is p @ implied.T."""
        cfg, length = self.config.detect, video.length
        boundary, steps = self._step_maps(video)
        actionness = proposal_actionness(self.config.proposals, boundary, steps)
        proposals, objectness = self._window_proposals(video, actionness)
        names = list(video.branches)
        logits, deltas = fuse(self._classify_maps(names, self._feature_maps(video), proposals))
        deltas = self._whole_video_unrefined(deltas, length)
        if video_probs is None and cfg.class_scores == "video":
            video_probs = self._video_probs(video)
        if implied is not None:
            implied = implied.to(proposals.device)
        if video_probs is not None:
            if implied is not None:
                video_probs = video_probs.float() @ implied.T
            votes = None if steps is None else implies(steps, implied)  # steps serve the vote
            return self._detect_by_video(
                proposals, objectness, logits, deltas, video_probs, length, boundary, votes
            )
        probs = implies(torch.softmax(logits.float(), dim=-1), implied)[:, 1:]  # (N, C)
        n, c = probs.shape
        projections = None  # made once, for the edge regressor and the window classifier
        if self._edge_regresses(steps) or cfg.window_score_weight > 0:
            projections = self._window_projections(video)
        columns = torch.arange(1, c + 1, device=proposals.device).repeat(n)  # row-major (N, C)
        segments = self._placed(
            proposals.repeat_interleave(c, dim=0), deltas[:, 1:].reshape(-1, 2).float(), columns,
            length, boundary, steps, projections,
        ).view(n, c, 2)  # fmt: skip
        segments = segments.transpose(0, 1)  # (C, N, 2)
        scores = probs.T.contiguous()  # (C, N)
        if cfg.window_score_weight > 0:
            window = implies(self._window_probs(video, segments, projections), implied)
            rows = torch.arange(1, c + 1, device=window.device)[:, None, None]
            window = window.gather(-1, rows.expand(c, n, 1))
            a = cfg.window_score_weight
            scores = (1 - a) * scores + a * window[..., 0]
        weight = cfg.step_score_weight
        if weight > 0:
            columns = torch.arange(1, steps.shape[1], device=steps.device)
            votes = contrast_scores(
                implies(steps, implied), segments, outside=cfg.step_contrast, columns=columns,
                vote=cfg.step_vote,
            )  # (C, N)  # fmt: skip
            scores = (1 - weight) * scores + weight * votes
        segments, rows, scores = self._class_nms(segments, scores, length)
        return StepDetections(segments, rows, scores)

    def _detect_by_video(
        self,
        proposals: torch.Tensor,
        objectness: torch.Tensor,
        logits: torch.Tensor,
        deltas: torch.Tensor,
        video_probs: torch.Tensor,
        length: int,
        boundary: torch.Tensor | None = None,
        steps: torch.Tensor | None = None,
    ) -> StepDetections:
        """Class-agnostic proposals x video-level class probabilities (ActivityNet practice);
        with detect.step_score_weight w, each proposal's score for a class is (1 - w) x its
        proposal score + w x the per-step head's vote for that class (`contrast_scores`)."""
        cfg = self.config.detect
        actionness = 1.0 - torch.softmax(logits.float(), dim=-1)[:, 0]
        base = {
            "objectness": objectness.float(),
            "actionness": actionness,
            "product": objectness.float() * actionness,
        }[cfg.proposal_score]
        video_probs = video_probs.to(base.device, torch.float32)
        top = video_probs.topk(min(cfg.video_top_k, video_probs.numel()))
        n, k = len(proposals), len(top.indices)
        refined = deltas[:, 1 + top.indices].float()  # (N, k, 2): each class's own refinement
        segments = self.coder.decode(proposals[:, None, :].expand(n, k, 2), refined)
        segments = self._snap(segments.clamp(-0.5, length - 0.5), boundary).transpose(0, 1)
        per_class = base[None, :].expand(k, n)  # (k, N)
        weight = cfg.step_score_weight
        if weight > 0 and steps is not None:
            votes = contrast_scores(
                steps,
                segments,
                outside=cfg.step_contrast,
                columns=1 + top.indices,
                vote=cfg.step_vote,
            )  # (k, N)
            per_class = (1 - weight) * per_class + weight * votes
        scores = (top.values[:, None] * per_class).contiguous()  # (k, N)
        segments, rows, scores = self._class_nms(segments, scores, length)
        return StepDetections(segments, top.indices[rows], scores)

    def _window_projections(self, video: VideoRows) -> torch.Tensor:
        """The window classifier's per-step projections (T, P, C + 1) of one video, window by
        window on a long one (WindowClassifier.step_projections)."""
        head = self.window_head
        if head is None:
            raise TalnetError("this model has no window classifier (model.window_classifier)")
        plan = plan_windows(video.length, self.config.detect.window_steps, 0)

        def project(rows: dict[str, torch.Tensor]) -> torch.Tensor:
            return head.step_projections(torch.cat([x[0] for x in rows.values()], dim=-1))

        return stitched(project, video, plan)

    def _window_probs(
        self, video: VideoRows, segments: torch.Tensor, projections: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The window classifier's class probabilities (..., C + 1) of segments (..., 2) in
        steps: each step projected once (or its `projections` given), then each segment's
        logits from the projections' prefix sums."""
        if projections is None:
            projections = self._window_projections(video)
        assert self.window_head is not None  # _window_projections
        logits = self.window_head.logits(projections, segments.to(projections.device))
        return torch.softmax(logits, dim=-1)

    def edge_signals(self, video: VideoRows) -> list[torch.Tensor]:
        """The edge regressor's per-step signals of one video (talnet.model.edge_head) from the
        step head's probabilities and the window classifier's projections."""
        _, steps = self._step_maps(video)
        if steps is None:
            raise TalnetError("the edge regressor reads the step head (model.step_classifier)")
        return self._edge_signals(steps, self._window_projections(video))

    def _edge_signals(self, steps: torch.Tensor, projections: torch.Tensor) -> list[torch.Tensor]:
        """`edge_signals` from projections already made."""
        assert self.window_head is not None
        return edge_signals(steps, projections[:, self.window_head.segment_part])

    def _edge_regresses(self, steps: torch.Tensor | None) -> bool:
        """Whether detection moves edges by the edge regressor: the model has one, it reads the
        step head's probabilities `steps`, and detect.edge_regress is on."""
        return self.edge_head is not None and self.config.detect.edge_regress and steps is not None

    def _snap(self, segments: torch.Tensor, boundary: torch.Tensor | None) -> torch.Tensor:
        """Segments (..., 2) with their edges snapped by the boundary head, when the model has
        one and `detect.boundary_snap` is on (talnet.model.boundary.snap_edges)."""
        cfg = self.config.detect
        if boundary is None or not cfg.boundary_snap:
            return segments
        return snap_edges(
            segments, boundary, cfg.snap_reach, cfg.snap_min_prob, cfg.snap_to == "centroid"
        )

    def _class_nms(
        self, segments: torch.Tensor, scores: torch.Tensor, length: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-class NMS of (C, N, 2) segments and (C, N) scores: the best detections as
        segments (M, 2), class rows (M,) and scores (M,), best first."""
        cfg = self.config.detect
        n = scores.shape[1]
        most = budget(cfg.max_detections, cfg.detections_per_step, length)
        candidates = scores
        if cfg.soft_nms:
            scores = soft_nms(segments, scores, cfg.soft_nms_sigma, most)
        else:
            # only what can reach the `most` best above the threshold: the same top, sooner
            scores = batched_nms(segments, scores, cfg.class_nms, most, cfg.score_threshold)[1]
        flat = scores.flatten()
        flat = torch.where(flat > cfg.score_threshold, flat, torch.zeros_like(flat))
        top = flat.topk(min(most, flat.numel()))
        keep = top.values > 0
        idx = top.indices[keep]
        kept, rows = segments.reshape(-1, 2)[idx], idx // n
        if cfg.boundary_vote > 0:
            voters = torch.where(candidates > cfg.score_threshold, candidates, 0.0)
            kept = vote_boundaries(
                kept, rows, segments, voters, cfg.boundary_vote, cfg.boundary_vote_power
            )
        return kept, rows, top.values[keep]


def implies(probs: torch.Tensor, implied: torch.Tensor | None) -> torch.Tensor:
    """Probabilities (..., C + 1), background first, with each class's the probability of it or
    of a label implying it (`implied` (C, C), talnet.model.implications); as they were if None."""
    if implied is None:
        return probs
    return torch.cat([probs[..., :1], probs[..., 1:].float() @ implied.T], dim=-1)
