"""Scale "none" (tracker.scale_steps 1): the size from the box regression, as pysot."""

from cyclesiam.tracking.scale.base import ScaleStrategy


class RegressionScale(ScaleStrategy):
    """The base behaviour: one search, the regression's size."""
