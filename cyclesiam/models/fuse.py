"""Inference preparation: fold BatchNorm into the preceding convolution, device, layout, dtype.

Folding needs eval-mode statistics; the folded model is for inference only (train and
save checkpoints from the unfolded one)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from cyclesiam.device import use_half


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A conv equal to bn(conv(x)) with eval-mode statistics."""
    fused = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
        conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode,
    ).to(device=conv.weight.device, dtype=conv.weight.dtype)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return fused


def fuse_conv_bn(module: nn.Module) -> int:
    """Fold in place every BatchNorm2d that directly follows a Conv2d, either as the next
    item of an nn.Sequential or as sibling attributes `convN`/`bnN` (ResNet). Returns the
    number of folds."""
    count = 0
    for child in module.children():
        count += fuse_conv_bn(child)
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = module._modules[a], module._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                module._modules[a] = fold_conv_bn(conv, bn)
                module._modules[b] = nn.Identity()
                count += 1
    for name, bn in list(module._modules.items()):
        if name.startswith("bn") and isinstance(bn, nn.BatchNorm2d):
            conv = module._modules.get("conv" + name[2:])
            if isinstance(conv, nn.Conv2d):
                module._modules["conv" + name[2:]] = fold_conv_bn(conv, bn)
                module._modules[name] = nn.Identity()
                count += 1
    return count


def prepare_for_inference(
    model: nn.Module,
    device: torch.device | str = "cpu",
    channels_last: bool = True,
    half: bool = False,
    inplace: bool = False,
) -> nn.Module:
    """An eval-mode, BN-folded copy of `model` on `device`; channels-last memory layout
    and fp16 (CUDA only; ignored on CPU) as asked. Feed it inputs of the same dtype
    (`next(model.parameters()).dtype`)."""
    device = torch.device(device)
    model = model if inplace else copy.deepcopy(model)
    model.eval()
    fuse_conv_bn(model)
    model.to(device)
    if use_half(device, half):
        model.half()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    for p in model.parameters():
        p.requires_grad_(False)
    return model
