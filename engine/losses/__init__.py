"""Weakly-supervised segmentation losses: the partial cross-entropy on marked pixels and the CRF regularizers
(grid and dense) that spread the marks along image structure."""
