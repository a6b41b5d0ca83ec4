"""Mask head: a per-position MLP from the F-dim head feature to mask_size^2 logits.

Equivalent to SiamMask's 1x1-conv mask branch, but evaluated only on the positions
asked for (the tracker's best position, training's positives) instead of all R*R.
"""

from __future__ import annotations

import torch
from torch import nn


class MaskHead(nn.Module):
    def __init__(self, in_features: int, hidden: int, mask_size: int):
        super().__init__()
        self.mask_size = mask_size
        self.fc1 = nn.Linear(in_features, hidden)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, mask_size * mask_size)
        nn.init.normal_(self.fc2.weight, std=0.01)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, feat_vectors: torch.Tensor) -> torch.Tensor:
        """[N,F] -> [N, mask_size*mask_size] logits (row-major mask_size x mask_size)."""
        return self.fc2(self.relu(self.fc1(feat_vectors)))
