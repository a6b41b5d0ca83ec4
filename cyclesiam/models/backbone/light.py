"""Light backbone for CPU-only robots: MobileNetV2 cut at block 6 (32 ch, stride 8).

Same parameter names as torchvision's MobileNetV2, so the ImageNet file loads strictly
for these blocks. The cost of MobileNetV2 sits in its high-resolution early blocks, so
cutting at stride 16 (block 10) saves little; cutting at stride 8 halves the network
time at the price of a smaller receptive field (no stride-16 context). docs/MODEL.md.
"""

from __future__ import annotations

from cyclesiam.models.backbone.mobilenet_v2 import MobileNetV2

LIGHT_LAST_BLOCK = 6


def light(**kwargs) -> MobileNetV2:
    return MobileNetV2(**{"last_block": LIGHT_LAST_BLOCK, "out_blocks": (LIGHT_LAST_BLOCK,), **kwargs})
