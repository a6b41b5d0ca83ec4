"""Every depth-wise correlation form equals a naive loop, batched over targets."""

from __future__ import annotations

import pytest
import torch

from cyclesiam.models.xcorr import XCORR_MODES, xcorr_depthwise


def naive_xcorr(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    batch, channels, height, width = x.shape
    kh, kw = z.shape[2:]
    out = torch.zeros(batch, channels, height - kh + 1, width - kw + 1, dtype=x.dtype)
    for b in range(batch):
        for c in range(channels):
            for i in range(height - kh + 1):
                for j in range(width - kw + 1):
                    out[b, c, i, j] = (x[b, c, i : i + kh, j : j + kw] * z[b, c]).sum()
    return out


@pytest.mark.parametrize("mode", XCORR_MODES)
@pytest.mark.parametrize("shape", [(3, 4, 12, 12, 4, 4), (2, 3, 11, 14, 3, 5), (1, 2, 6, 6, 1, 1), (2, 2, 5, 5, 5, 5)])
def test_xcorr_equals_naive_loop(mode, shape):
    batch, channels, height, width, kh, kw = shape
    gen = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(batch, channels, height, width, generator=gen, dtype=torch.float64)
    z = torch.randn(batch, channels, kh, kw, generator=gen, dtype=torch.float64)
    expected = naive_xcorr(x, z)
    out = xcorr_depthwise(x, z, mode)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("mode", XCORR_MODES)
def test_each_target_uses_its_own_template(mode):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, 4, 10, 10, generator=gen).expand(3, -1, -1, -1).contiguous()
    z = torch.randn(3, 4, 3, 3, generator=gen)
    out = xcorr_depthwise(x, z, mode)
    # same search features, different templates -> different responses
    assert not torch.allclose(out[0], out[1]) and not torch.allclose(out[1], out[2])
    for b in range(3):
        torch.testing.assert_close(out[b : b + 1], xcorr_depthwise(x[b : b + 1], z[b : b + 1], mode))


def test_channels_last_input_and_bad_inputs():
    x = torch.randn(2, 8, 9, 9).contiguous(memory_format=torch.channels_last)
    z = torch.randn(2, 8, 4, 4)
    for mode in XCORR_MODES:
        torch.testing.assert_close(xcorr_depthwise(x, z, mode), xcorr_depthwise(x.contiguous(), z, "grouped"), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="equal B,C"):
        xcorr_depthwise(x, z[:1])
    with pytest.raises(ValueError, match="unknown xcorr mode"):
        xcorr_depthwise(x, z, "fft")
