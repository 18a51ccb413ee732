"""Plot furniture shared by the training views."""
from __future__ import annotations

import pyqtgraph as pg


def add_legend(plot: pg.PlotWidget, offset: tuple[int, int] = (-5, 5)) -> pg.LegendItem:
    """A compact legend on a translucent ground, so the curves it lies over still show through it."""
    return plot.addLegend(offset=offset, brush=pg.mkBrush(20, 20, 20, 140), labelTextSize="8pt", verSpacing=-4)
