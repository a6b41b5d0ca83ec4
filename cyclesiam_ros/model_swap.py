"""`~/load_model`: swap the node's network for another checkpoint without restarting; targets kept.

The request is answered when the swap is done or refused. The file is checked and the new network
built, tested and given every target's template (from the crop kept at set_target time) in a thread
of its own, beside the running tracker (`cyclesiam/model_swap.py`); frames keep flowing. The switch
itself is taken under the node's tracker lock, so each frame is tracked wholly by the old or wholly by
the new model (`~/status` names the model per frame). A bad file leaves the old model running and
the response says why; a second request while one loads is refused.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from cyclesiam.model_swap import ModelSwapError, model_identity, prepare_network, swap_in
from cyclesiam_ros.log_throttle import log_outcome, untrusted


def identity_of(checkpoint: str | Path | None) -> str:
    """What `~/status` reports as the model: `<file>@<sha256 prefix>`, or `random-init` without a file."""
    return model_identity(checkpoint) if checkpoint else "random-init"


class ModelSwapService:
    """The node's `~/load_model` service (created by the node in one line). It reads and sets
    `node.tracker`, `node.model_id` and `node.checkpoint_path` under `node._lock`."""

    def __init__(self, node: Any) -> None:
        from rclpy.callback_groups import ReentrantCallbackGroup

        from cyclesiam_ros.srv import LoadModel

        self._node = node
        self._busy = threading.Lock()
        self._loading = ""
        # reentrant: the request awaits the loader thread without holding up the node's other callbacks,
        # and a second request is answered (refused) at once
        node.create_service(LoadModel, "~/load_model", self.on_load_model, callback_group=ReentrantCallbackGroup())

    async def on_load_model(self, request: Any, response: Any) -> Any:
        path = request.path.strip()
        if not path:
            response.success, response.message = False, "no path given: name a CycleSiam .safetensors checkpoint"
        elif not self._busy.acquire(blocking=False):
            response.success = False
            response.message = f"refused: still loading {untrusted(self._loading)}; call again when it is done"
        else:
            try:
                self._loading = path
                response.success, response.message = await self._run(Path(path).expanduser())
            finally:
                self._busy.release()
        log_outcome(self._node.get_logger(), response.success, f"load_model: {response.message}")
        return response

    async def _run(self, path: Path) -> tuple[bool, str]:
        from rclpy.task import Future

        executor = self._node.executor
        if executor is None:  # not spinning (a direct call): load in this thread
            return self.load(path)
        future = Future(executor=executor)
        future.add_done_callback(lambda _f: None)  # its scheduling wakes the executor when the thread is done
        threading.Thread(target=lambda: future.set_result(self.load(path)), name="cyclesiam_load_model",
                         daemon=True).start()
        return await future

    def load(self, path: Path) -> tuple[bool, str]:
        """Check, build and swap in `path`: (success, message). Runs beside the tracker; only the
        snapshot of the template crops and the switch take the tracker lock."""
        node = self._node
        t0 = time.monotonic()
        with node._lock:
            crops, running_cfg, config, old = node.tracker.template_crops(), node.tracker.model_cfg, node.config, node.model_id
        try:
            new = prepare_network(config, path, running_cfg, crops)
        except ModelSwapError as exc:
            return False, f"refused: {untrusted(str(exc), 600)}; still running {old}"
        except Exception as exc:  # never let a request take the node down
            return False, f"internal error: {untrusted(repr(exc), 300)}; still running {old}"
        prepared = time.monotonic() - t0
        with node._lock:
            t1 = time.monotonic()
            swap_in(node.tracker, new)
            node.model_id, node.checkpoint_path = new.identity, new.checkpoint
            switch_ms = (time.monotonic() - t1) * 1000.0
            count = len(node.tracker)
        return True, (f"now running {new.identity} (was {old}); {count} target(s) kept with their ids, templates "
                      f"re-made from their set_target crops; prepared in {prepared:.1f} s beside the tracker, "
                      f"switched between two frames in {switch_ms:.1f} ms")


__all__ = ["ModelSwapService", "identity_of"]
