"""Weight-space blend of a fine-tuned model with the model it started from (`cyclesiam-adapt --blend`).

blend(BASE, TUNED, w) = (1 - w) BASE + w TUNED for every float tensor (integer tensors, BatchNorm's
counters, from TUNED). Interpolating a fine-tune back towards its start keeps most of what it gained on
its own footage and gives back less of what the start model did well (WiSE-FT, Wortsman et al. 2022);
on the real validation clips' 10-minute adaptations, 0.5 turned a mean gain of +0.006 (worst clip
-0.027) into +0.018 (worst -0.009): docs/MODEL.md, 2026-12-03 21:47.

    python -m cyclesiam_train.blend BASE TUNED OUT [--weight 0.5]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from cyclesiam.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint


def blend_checkpoints(base: str | Path, tuned: str | Path, out: str | Path, weight: float = 0.5) -> Path:
    """Write (1 - weight) `base` + weight `tuned` to `out` (atomically; a normal checkpoint with `tuned`'s
    provenance plus a `blend` entry). CheckpointError when the two are not the same architecture."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"blend weight must be in [0, 1], got {weight}")
    base_state, base_cfg, _ = read_checkpoint(base)
    model, cfg, meta = load_model(tuned)
    if base_cfg != cfg:
        raise CheckpointError(f"{tuned}: another model configuration than {base}; they cannot be blended")
    for name, value in model.state_dict().items():
        if value.is_floating_point():
            value.copy_((1.0 - weight) * base_state[name] + weight * value)
    provenance = dict(meta.get("provenance", {}))
    provenance["blend"] = {"base": str(base), "tuned": str(tuned), "weight": weight}
    return save_checkpoint(out, model, cfg, provenance)


__all__ = ["blend_checkpoints"]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base")
    ap.add_argument("tuned")
    ap.add_argument("out")
    ap.add_argument("--weight", type=float, default=0.5, help="share of TUNED (0 = BASE, 1 = TUNED; default 0.5)")
    args = ap.parse_args(argv)
    print(blend_checkpoints(args.base, args.tuned, args.out, args.weight))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

