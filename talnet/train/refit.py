"""The linear heads fitted again after training (docs/design.md §3): the per-step head, the
window classifier and the edge regressor, in that order, since the regressor reads the other
two. The last epoch fits them on every training video; the fusion choices fit them on the videos
the choice's model may see."""

from __future__ import annotations

from talnet.config import Config
from talnet.data.dataset import TrainingData
from talnet.model.talnet import TalNet
from talnet.train.edge_refit import EDGE_REFIT_ERROR, refit_edge_head
from talnet.train.step_refit import STEP_REFIT_LOSS, refit_step_head
from talnet.train.window_refit import WINDOW_REFIT_LOSS, refit_window_head


def refit_linear_heads(model: TalNet, data: TrainingData, config: Config) -> dict[str, float]:
    """Fit the heads the config refits (train.step_refit_epochs, window_refit_epochs, an edge
    regressor) on `data`, in order; their final losses by log key, rounded to 5 places."""
    losses = {}
    if config.train.step_refit_epochs:
        losses[STEP_REFIT_LOSS] = round(refit_step_head(model, data, config), 5)
    if config.train.window_refit_epochs:
        losses[WINDOW_REFIT_LOSS] = round(refit_window_head(model, data, config), 5)
    if model.edge_head is not None:
        losses[EDGE_REFIT_ERROR] = round(refit_edge_head(model, data, config), 5)
    return losses
