"""The targets in 3D from aligned depth, through the node in its own process over real DDS:
(a) real colour frames over a synthetic depth plane at a known distance, (b) the rendered
RGB-D ViSP Castle-simu sequence against its ground-truth poses and model, (c) bad depth and
camera_info: a clear status and log line while the 2D outputs go on."""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from cyclesiam_ros.messages import stamp_ns
from cyclesiam_ros.session import TrackerSession, tracker_node_command
from ros_helpers import REPO, ChildProcess

pytestmark = pytest.mark.ros

NS = "/d3"
IMAGE, DEPTH, INFO = f"{NS}/camera/image_raw", f"{NS}/camera/depth", f"{NS}/camera/camera_info"
BOX = (110.0, 60.0, 60.0, 70.0)  # the tree in tree.avi (x, y, w, h)
FX = FY = 280.0  # a 320x240 camera with a ~60 degree field of view
CX, CY = 159.5, 119.5
PLANE_M = 1.25


class DepthClient:
    """A TrackerSession that also publishes depth + camera_info and records the 3D outputs."""

    def __init__(self, rclpy_module):
        from geometry_msgs.msg import PointStamped
        from sensor_msgs.msg import CameraInfo, Image
        from vision_msgs.msg import Detection3DArray
        from visualization_msgs.msg import MarkerArray

        self.session = TrackerSession(rclpy_module, NS, IMAGE)
        self.Image, self.CameraInfo = Image, CameraInfo
        node = self.session.node
        self.depth_pub = node.create_publisher(Image, DEPTH, qos_profile_sensor_data)
        self.info_pub = node.create_publisher(CameraInfo, INFO, qos_profile_sensor_data)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE)
        base = f"{NS}/cyclesiam_tracker"
        self.det3d, self.points, self.markers = [], [], []
        node.create_subscription(Detection3DArray, f"{base}/detections_3d", self.det3d.append, qos)
        node.create_subscription(PointStamped, f"{base}/target_point", self.points.append, qos)
        node.create_subscription(MarkerArray, f"{base}/markers", self.markers.append, qos)

    def clear(self) -> None:
        self.session.clear_received()
        self.det3d.clear(), self.points.clear(), self.markers.clear()

    def info_msg(self, width: int, height: int, fx: float = FX, fy: float = FY, cx: float = CX, cy: float = CY):
        msg = self.CameraInfo(width=width, height=height)
        msg.header.frame_id = "camera"
        msg.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
        return msg

    def depth_msg(self, depth: np.ndarray, stamp: int, encoding: str | None = None):
        msg = self.Image(height=depth.shape[0], width=depth.shape[1])
        msg.encoding = encoding or ("16UC1" if depth.dtype == np.uint16 else "32FC1")
        msg.step = depth.shape[1] * depth.dtype.itemsize
        msg.data = np.ascontiguousarray(depth).tobytes()
        msg.header.frame_id = "camera"
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        return msg

    def step(self, frame, depth_msg, info_msg, stamp: int, timeout: float = 15.0):
        """Publish camera_info, depth, then the colour frame at `stamp`; the status of that frame
        (None when the node never reported it: best-effort delivery may drop a frame)."""
        if info_msg is not None:
            self.info_pub.publish(info_msg)
        if depth_msg is not None:
            self.depth_pub.publish(depth_msg)
        self.session.spin(0.01)
        self.session.publish_frame(frame, stamp)
        seen = lambda: [m for m in self.session.received.status if stamp_ns(m.header) == stamp]  # noqa: E731
        self.session.spin_until(lambda: bool(seen()), timeout)
        self.session.spin(0.05)
        found = seen()
        return found[0] if found else None

    def det3d_for(self, stamp: int):
        return [m for m in self.det3d if stamp_ns(m.header) == stamp]


@contextlib.contextmanager
def node_with_depth(rclpy_context, tmp: Path, checkpoint: Path):
    cmd = tracker_node_command(NS, IMAGE, REPO / "config" / "tracker.yaml",
                               [f"checkpoint:={checkpoint}", "runtime.device:=cpu"])
    proc = ChildProcess([*cmd[1:], "-r", f"depth:={DEPTH}", "-r", f"camera_info:={INFO}"], tmp / "node.log")
    client = DepthClient(rclpy_context)
    try:
        client.session.wait_ready(90)
        assert client.session.spin_until(lambda: client.depth_pub.get_subscription_count() > 0, 20)
    except (TimeoutError, AssertionError):
        proc.stop()
        raise AssertionError("node did not come up:\n" + proc.output())
    yield proc, client
    client.session.close()
    code = proc.stop()
    assert code == 0, f"node exited with {code}:\n{proc.output()[-3000:]}"


@pytest.fixture(scope="module")
def node_and_client(rclpy_context, tmp_path_factory, shipped_checkpoint):
    with node_with_depth(rclpy_context, tmp_path_factory.mktemp("depth_node"), shipped_checkpoint) as pair:
        yield pair


@pytest.fixture(scope="module")
def frames(tree_video, read_frames):
    return read_frames(tree_video, 40)


@pytest.fixture
def client(node_and_client):
    proc, client = node_and_client
    client.session.remove_target("")
    client.clear()
    yield client
    assert proc.proc.poll() is None, "node died:\n" + proc.output()[-3000:]


def start_tracking(client, frames) -> str:
    client.session.publish_until_seen(frames[0])
    resp = client.session.set_target(BOX)
    assert resp.success, resp.message
    return resp.id


def test_without_depth_the_node_behaves_as_before(client, frames):
    """No depth publisher: 2D outputs as usual, no 3D output, an empty depth_status."""
    start_tracking(client, frames)
    statuses = [client.step(f, None, None, client.session.next_stamp()) for f in frames[1:6]]
    assert all(s is not None and s.targets[0].depth_status == "" for s in statuses)
    assert client.session.received.detections and not client.det3d and not client.points


def test_plane_gives_the_back_projected_mask_centroid(client, frames):
    """(a) Real colour frames, a depth plane at 1.25 m (16UC1 mm, then 32FC1 m), a known
    CameraInfo: the 3D centre is the back-projection of the mask centroid within 1 % of the
    distance; ids, stamps and frame ids as the 2D detection's."""
    target_id = start_tracking(client, frames)
    client.markers.clear()
    info = client.info_msg(320, 240)
    planes = [np.full((240, 320), int(PLANE_M * 1000), np.uint16), np.full((240, 320), PLANE_M, np.float32)]
    checked = 0
    for i, frame in enumerate(frames[1:21]):
        stamp = client.session.next_stamp()
        status = client.step(frame, client.depth_msg(planes[i % 2], stamp), info, stamp)
        if status is None:
            continue
        assert status.targets[0].depth_status == "ok", status.targets[0].depth_status
        [arr] = client.det3d_for(stamp)
        masks = [m for m in client.session.received.masks if stamp_ns(m.header) == stamp]
        assert arr.header.frame_id == "camera" and len(arr.detections) == 1 and masks
        det = arr.detections[0]
        assert det.id == target_id and stamp_ns(det.header) == stamp
        mask = np.frombuffer(bytes(masks[0].data), np.uint8).reshape(240, 320)
        rows, cols = np.nonzero(mask)
        expected = np.array([(cols.mean() - CX) * PLANE_M / FX, (rows.mean() - CY) * PLANE_M / FY, PLANE_M])
        p = det.bbox.center.position
        got = np.array([p.x, p.y, p.z])
        assert np.linalg.norm(got - expected) < 0.01 * PLANE_M, (got, expected)
        assert det.bbox.size.x > 0 and det.bbox.size.y > 0 and det.bbox.size.z == pytest.approx(0.0, abs=1e-3)
        assert det.results[0].hypothesis.score > 0 and det.results[0].pose.pose.position.z == pytest.approx(PLANE_M)
        checked += 1
    assert checked >= 15, f"only {checked} of 20 frames were reported"
    assert client.points and client.points[-1].point.z == pytest.approx(PLANE_M)
    assert client.points[-1].header.frame_id == "camera"


def test_markers_are_built_while_subscribed(client, frames):
    target_id = start_tracking(client, frames)
    client.session.spin_until(lambda: False, 0.5)  # let the node see the markers subscription
    info = client.info_msg(320, 240)
    for frame in frames[1:6]:
        stamp = client.session.next_stamp()
        client.step(frame, client.depth_msg(np.full((240, 320), 900, np.uint16), stamp), info, stamp)
    assert client.markers, "no MarkerArray while subscribed"
    kinds = [(m.type, m.action) for m in client.markers[-1].markers]
    assert kinds[0][1] == 3 and (1, 0) in kinds and (9, 0) in kinds  # DELETEALL, CUBE, TEXT_VIEW_FACING
    label = [m for m in client.markers[-1].markers if m.type == 9][0]
    assert label.text.startswith(f"{target_id} ") and label.header.frame_id == "camera"


BAD_CASES = {
    "depth_size": (lambda c, s: c.depth_msg(np.full((120, 160), 1000, np.uint16), s), None,
                   "depth is 160x120 but the colour image is 320x240"),
    "encoding": (lambda c, s: c.depth_msg(np.full((240, 320), 1000, np.int16), s, "16SC1"), None,
                 "unsupported depth encoding '16SC1'"),
    "all_zero": (lambda c, s: c.depth_msg(np.zeros((240, 320), np.uint16), s), None,
                 "too few valid depth pixels"),
    "nan": (lambda c, s: c.depth_msg(np.full((240, 320), np.nan, np.float32), s), None,
            "too few valid depth pixels"),
    "inf": (lambda c, s: c.depth_msg(np.full((240, 320), np.inf, np.float32), s), None,
            "too few valid depth pixels"),
    "zero_focal": (lambda c, s: c.depth_msg(np.full((240, 320), 1000, np.uint16), s),
                   lambda c: c.info_msg(320, 240, fx=0.0), "focal length must be > 0"),
    "info_size": (lambda c, s: c.depth_msg(np.full((240, 320), 1000, np.uint16), s),
                  lambda c: c.info_msg(640, 480), "camera_info is for 640x480 but the colour image is 320x240"),
    "stamps_never_match": (lambda c, s: c.depth_msg(np.full((240, 320), 1000, np.uint16), s + 1_000_000_000),
                           None, "no depth frame within 20 ms of the image stamp"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_depth_input_is_reported_and_2d_goes_on(client, frames, node_and_client, case):
    """(c) Each bad input: no 3D output, ~/status says why, the node logs it (throttled), the
    2D detections keep coming; a good depth frame afterwards gives 3D again."""
    proc, _ = node_and_client
    make_depth, make_info, words = BAD_CASES[case]
    start_tracking(client, frames)
    good_info = client.info_msg(320, 240)
    bad_info = make_info(client) if make_info else good_info
    reported = []
    for frame in frames[1:6]:
        stamp = client.session.next_stamp()
        status = client.step(frame, make_depth(client, stamp), bad_info, stamp)
        if status is not None:
            reported.append(stamp)
            assert words in status.targets[0].depth_status, status.targets[0].depth_status
            assert not any(a.detections for a in client.det3d_for(stamp))
    assert len(reported) >= 3
    det_stamps = {stamp_ns(m.header) for m in client.session.received.detections if m.detections}
    assert set(reported) <= det_stamps, "2D detections must go on"
    assert words.split(" '")[0] in proc.output(), f"no log line for {case}"
    stamp = client.session.next_stamp()  # recovery
    status = client.step(frames[6], client.depth_msg(np.full((240, 320), 1000, np.uint16), stamp), good_info, stamp)
    if status is None:  # one lost best-effort frame: try the next one
        stamp = client.session.next_stamp()
        status = client.step(frames[7], client.depth_msg(np.full((240, 320), 1000, np.uint16), stamp), good_info,
                             stamp)
    assert status is not None and status.targets[0].depth_status == "ok", status
    assert client.det3d_for(stamp)[0].detections[0].bbox.center.position.z == pytest.approx(1.0)


def set_parameter(client, name: str, value):
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    srv = client.session.node.create_client(SetParameters, f"{NS}/cyclesiam_tracker/set_parameters")
    assert srv.wait_for_service(timeout_sec=10)
    if isinstance(value, bool):
        value = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
    elif isinstance(value, int):
        value = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
    else:
        value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
    request = SetParameters.Request(parameters=[Parameter(name=name, value=value)])
    return client.session.call(srv, request).results[0]


def test_depth_parameters_change_at_run_time(client, frames):
    """depth.* are checked like every parameter and take effect on the next frame; depth.enabled
    is read at start-up only."""
    start_tracking(client, frames)
    info = client.info_msg(320, 240)
    assert not set_parameter(client, "depth.max_range", 0.05).successful  # below min_range (0.1)
    refused = set_parameter(client, "depth.enabled", False)
    assert not refused.successful and "restart" in refused.reason
    try:
        assert set_parameter(client, "depth.max_range", 0.9).successful  # the plane at 1 m is now out of range
        stamp = client.session.next_stamp()
        status = client.step(frames[1], client.depth_msg(np.full((240, 320), 1000, np.uint16), stamp), info, stamp)
        assert status is not None and "outside 0.1..0.9 m" in status.targets[0].depth_status
    finally:
        assert set_parameter(client, "depth.max_range", 10.0).successful


def test_interfaces_are_made_in_one_call_and_removed_in_one(rclpy_context):
    """Depth3DOutput.create(node) makes every 3D interface (the lifecycle node calls it on
    activate), destroy() removes them; with depth.enabled false it makes none."""
    import dataclasses

    from cyclesiam.config import DepthConfig, NodeSettings
    from cyclesiam_ros.depth_output import Depth3DOutput
    from cyclesiam_ros.log_throttle import ThrottledLogger

    node = rclpy_context.create_node("depth_output_probe", namespace="/d3probe")
    node.log = ThrottledLogger(node.get_logger())
    try:
        node.settings = NodeSettings()
        out = Depth3DOutput.create(node)
        topics = {name for name, _ in node.get_publisher_names_and_types_by_node(node.get_name(), "/d3probe")}
        assert {"/d3probe/depth_output_probe/detections_3d", "/d3probe/depth_output_probe/target_point",
                "/d3probe/depth_output_probe/markers"} <= topics
        subs = {name for name, _ in node.get_subscriber_names_and_types_by_node(node.get_name(), "/d3probe")}
        assert {"/d3probe/depth", "/d3probe/camera_info"} <= subs
        out.destroy()
        assert not out.active() and out.publish(None, [object()], {}, None) == {}
        subs = {name for name, _ in node.get_subscriber_names_and_types_by_node(node.get_name(), "/d3probe")}
        assert "/d3probe/depth" not in subs
        node.settings = NodeSettings(depth=dataclasses.replace(DepthConfig(), enabled=False))
        before = len(list(node.subscriptions))
        Depth3DOutput.create(node)
        assert len(list(node.subscriptions)) == before
    finally:
        node.destroy_node()


# ---------------------------------------------------------------------------- (b) Castle-simu

CASTLE = Path(__file__).resolve().parents[2] / "data" / "castle_simu"
CASTLE_DEPTH_SCALE = 0.000030518  # m per unit of Depth/*.bin (ViSP's testGenericTrackerDepth)
CASTLE_FX, CASTLE_C = 700.0, (320.0, 240.0)  # Config/chateau.xml: px = py = 700, u0 = 320, v0 = 240
CASTLE_DEPTH_TO_COLOUR_X = 0.05  # m: the depth camera sits 5 cm from the colour camera along x (ViSP's test)
# the castle's tower (Models/chateau_parts/chateau_tower.cao), in the object frame, m
TOWER = np.array([[x, y, z, 1.0] for x in (-0.043, 0.04056) for y in (0.08076, 0.17876) for z in (-0.043, 0.039)])
SCALE = 0.5  # published at 320x240 (a 640x480 frame and its depth exceed the default DDS shared-memory segment)


def castle_frame(index: int):
    """(bgr image, depth in the depth camera, colour camera pose cMo) of frame `index` (1-based)."""
    grey = cv2.imread(str(CASTLE / "Images" / f"Image_{index:04d}.pgm"), cv2.IMREAD_GRAYSCALE)
    raw = (CASTLE / "Depth" / f"Depth_{index:04d}.bin").read_bytes()
    height, width = np.frombuffer(raw[:8], "<u4")
    depth = np.frombuffer(raw[8:], "<u2").reshape(height, width).astype(np.float32) * CASTLE_DEPTH_SCALE
    pose = np.loadtxt(CASTLE / "CameraPose" / f"Camera_{index:03d}.txt")
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), depth, pose


def scaled_intrinsics(scale: float) -> tuple[float, float, float]:
    """fx, cx, cy of the colour camera for an image resized by `scale` (pixel centres kept)."""
    return CASTLE_FX * scale, (CASTLE_C[0] + 0.5) * scale - 0.5, (CASTLE_C[1] + 0.5) * scale - 0.5


def align_to_colour(depth: np.ndarray, width: int, height: int) -> np.ndarray:
    """The depth camera's depth registered into the colour image (what a driver's 'aligned
    depth' is): back-project, shift by the 5 cm baseline, project, nearest depth wins."""
    rows, cols = np.nonzero(depth > 0)
    z = depth[rows, cols]
    x = (cols - CASTLE_C[0]) * z / CASTLE_FX + CASTLE_DEPTH_TO_COLOUR_X
    y = (rows - CASTLE_C[1]) * z / CASTLE_FX
    fx, cx, cy = scaled_intrinsics(width / depth.shape[1])
    u, v = np.rint(fx * x / z + cx).astype(int), np.rint(fx * y / z + cy).astype(int)
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    aligned = np.full((height, width), np.inf, np.float32)
    np.minimum.at(aligned, (v[inside], u[inside]), z[inside])
    aligned[np.isinf(aligned)] = 0.0  # no depth
    return aligned


def tower_truth(pose: np.ndarray, width: int, height: int):
    """The tower's centre in the colour camera frame (m) and its projected box (x, y, w, h)."""
    corners = (pose @ TOWER.T).T[:, :3]
    fx, cx, cy = scaled_intrinsics(width / 640)
    u, v = fx * corners[:, 0] / corners[:, 2] + cx, fx * corners[:, 1] / corners[:, 2] + cy
    return corners.mean(axis=0), (u.min(), v.min(), u.max() - u.min(), v.max() - v.min())


def test_castle_centre_follows_the_ground_truth(client, record_property):
    """(b) Track the castle's tower from its projected box on frame 1 through the 40 rendered
    RGB-D frames; its 3D centre against the tower's ground-truth centre (model + camera poses).
    Figures (320x240, shipped model): see README "3D from depth"."""
    if not (CASTLE / "Depth").is_dir():
        pytest.skip(f"{CASTLE} missing (scripts/fetch_data.sh copies it from Debian's visp-images-data)")
    from cyclesiam_ros.msg import TrackStatus

    width, height = int(640 * SCALE), int(480 * SCALE)
    fx, cx, cy = scaled_intrinsics(SCALE)
    info = client.info_msg(width, height, fx, fx, cx, cy)
    errors, lateral, lost = [], [], []
    for index in range(1, 41):
        image, depth, pose = castle_frame(index)
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        truth, box = tower_truth(pose, width, height)
        if index == 1:
            client.session.publish_until_seen(image)
            resp = client.session.set_target(box)
            assert resp.success, resp.message
            continue
        stamp = client.session.next_stamp()
        status = client.step(image, client.depth_msg(align_to_colour(depth, width, height), stamp), info, stamp)
        if status is None:
            continue
        if status.targets[0].state == TrackStatus.LOST:  # the tracker's LOST rule, not the 3D code: no 3D, and said so
            assert status.targets[0].depth_status.startswith("lost"), (index, status.targets[0].depth_status)
            lost.append(index)
            continue
        assert status.targets[0].depth_status == "ok", (index, status.targets[0].depth_status)
        p = client.det3d_for(stamp)[0].detections[0].bbox.center.position
        error = np.array([p.x, p.y, p.z]) - truth
        errors.append(float(np.linalg.norm(error)))
        lateral.append(float(np.linalg.norm(error[:2])))
    assert len(errors) >= 30, f"only {len(errors)} of 39 frames reported ({len(lost)} LOST: {lost})"
    median, worst, lateral_worst = np.median(errors), max(errors), max(lateral)
    record_property("castle_error_cm", f"median {median * 100:.1f} max {worst * 100:.1f} lateral max "
                                       f"{lateral_worst * 100:.1f}")
    print(f"castle: 3D centre error median {median * 100:.1f} cm, max {worst * 100:.1f} cm; across the view "
          f"(x, y) max {lateral_worst * 100:.1f} cm over {len(errors)} frames; LOST on {lost}")
    # the median of the visible surface lies in front of the tower's volume centre by about half
    # its depth (8.2 cm): that bias is most of the error
    assert median < 0.05 and worst < 0.06 and lateral_worst < 0.035
