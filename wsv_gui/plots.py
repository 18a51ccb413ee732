"""Plot furniture shared by the training views."""
from __future__ import annotations

import pyqtgraph as pg


def add_legend(plot: pg.PlotWidget, offset: tuple[int, int] = (-5, 5)) -> pg.LegendItem:
    """A compact legend on a translucent ground, so the curves it lies over still show through it."""
    return plot.addLegend(offset=offset, brush=pg.mkBrush(20, 20, 20, 140), labelTextSize="8pt", verSpacing=-4)


class DecadeAxis(pg.AxisItem):
    """A log axis labelled at the decades only (0.01, 0.1, 1, ...): pyqtgraph labels every minor tick where it has
    room, and on a short plot their labels pile up into an unreadable column."""

    def logTickStrings(self, values, scale, spacing):
        return [super(DecadeAxis, self).logTickStrings([v], scale, spacing)[0] if abs(v - round(v)) < 1e-6 else ""
                for v in values]
