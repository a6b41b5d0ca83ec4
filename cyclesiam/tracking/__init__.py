"""The tracker's parts, one file each: the per-frame pipeline of stages

    search (search.py) -> scale (scale/) -> state, LOST (state.py, lost/) -> masks (masks.py)
    -> template update (template_update.py)

orchestrated by `cyclesiam.tracker.SiamTracker`. Strategies are chosen from the existing config
keys through small registries: scale from `tracker.scale_from` / `scale_steps` (scale/__init__.py),
LOST from `tracker.lost_hold` (lost/__init__.py), template update from `tracker.template_update`.
The SiamRPN decode shared with training is decode.py; post.py is its numpy face for the tracker.
"""
