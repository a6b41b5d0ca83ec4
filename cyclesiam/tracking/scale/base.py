"""The scale strategy interface. A strategy decides how many scales the search covers and how the
new size follows from the search and, for the targets that move this frame (after the LOST
decision), from the template similarity. This base is the pysot way: one search, the size from the
box regression (registered as "none", used when tracker.scale_steps is 1)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from cyclesiam.config import TrackerConfig

if TYPE_CHECKING:
    from cyclesiam.tracking.search import SearchRows
    from cyclesiam.tracking.similarity import Appearance
    from cyclesiam.tracking.target import Target

ONE_SCALE = np.ones(1)


class ScaleStrategy:
    """Size from the box regression of a single search."""

    search_features = False  # whether the search must return its features (SearchRows.xf)
    # True: the LOST rule's similarity is measured only for the targets whose state it can change
    # (TrackResult.similarity NaN elsewhere); False: for every target, every frame
    similarity_on_demand = False

    def __init__(self, cfg: TrackerConfig) -> None:
        self.cfg = cfg

    def search_factors(self, all_held: bool) -> np.ndarray:
        """The scale factors the search covers (`all_held`: every target of the batch is a held LOST one)."""
        return ONE_SCALE

    def from_search(self, found: "SearchRows", factors: np.ndarray, members: "list[Target]",
                    image_shape: Sequence[int]) -> "SearchRows":
        """One row per target, whose post.size is the size the search gives."""
        return found

    def similarity_factors(self, all_held: bool) -> np.ndarray:
        """The scales at which the LOST rule's template similarity is measured."""
        return ONE_SCALE

    def settle(self, found: "SearchRows", appearance: "Appearance", members: "list[Target]", moving: list[int],
               image_shape: Sequence[int]) -> np.ndarray | None:
        """New sizes [len(moving), 2] of the moving members (indices into members), None = the search's."""
        return None

    def on_add(self, target: "Target", search: "Callable[[np.ndarray], SearchRows]") -> Any:
        """What a new target keeps for this strategy (Target.scale_bias), from searches of its first frame."""
        return None
