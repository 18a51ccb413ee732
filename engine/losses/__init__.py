"""Weakly-supervised segmentation losses: the partial cross-entropy on marked pixels; the regularizers that
spread the marks along image structure — pairwise (grid and dense CRF, normalized cut) and regional (colour
consistency); the box and tag losses. Import them from here into your own training script; each function's
docstring gives its formula, shapes and units."""
from engine.losses.box import box_consistency_loss, box_tightness_loss
from engine.losses.colour import colour_consistency_gradient, colour_consistency_loss
from engine.losses.dense_crf import dense_crf_gradient, dense_crf_loss
from engine.losses.grid_crf import grid_crf_gradient, grid_crf_loss
from engine.losses.normalized_cut import normalized_cut_gradient, normalized_cut_loss
from engine.losses.pce import partial_cross_entropy
from engine.losses.tags import absent_suppression_loss, tag_classification_loss, tag_consistency_loss

__all__ = ["absent_suppression_loss", "box_consistency_loss", "box_tightness_loss", "colour_consistency_gradient",
           "colour_consistency_loss", "dense_crf_gradient", "dense_crf_loss", "grid_crf_gradient", "grid_crf_loss",
           "normalized_cut_gradient", "normalized_cut_loss", "partial_cross_entropy", "tag_classification_loss",
           "tag_consistency_loss"]
