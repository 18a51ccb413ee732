"""The main window's tabs, in the order they appear. A new tab is a folder with a ``Tab`` subclass
(wsv_gui.tab) and one line here."""
from __future__ import annotations

from wsv_gui.detection.tab import DetectionTab
from wsv_gui.generative.tab import GenerativeTab
from wsv_gui.segmentation.tab import SegmentationTab

TABS = (SegmentationTab, DetectionTab, GenerativeTab)
