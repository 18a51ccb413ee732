"""The training settings form: TrainConfig's declared settings (engine.training.config), with what live
training fixes itself."""
from __future__ import annotations

import os

from engine.training.config import TrainConfig
from wsv_gui.settings_form import SettingsForm


class TrainingSettings(SettingsForm):
    def __init__(self, parent=None) -> None:
        super().__init__(TrainConfig, parent)

    def config(self) -> TrainConfig:
        """Live training learns from every kind of mark each image has, runs until stopped (the step budget is
        effectively unlimited), takes small batches so the prediction on screen updates often, and leaves one
        CPU core to the window so it stays responsive."""
        return super().config(supervision="marks", steps=1_000_000, batch_size=2,
                              threads=max(1, (os.cpu_count() or 2) - 1), eval_interval_s=15.0, preview_interval_s=0.5)
