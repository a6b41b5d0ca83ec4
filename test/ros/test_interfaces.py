"""The generated interfaces import, have the contract's fields, and round-trip on the wire;
a SetTarget server in another process answers a client over DDS (localhost)."""

from __future__ import annotations

import textwrap

import pytest
from rclpy.serialization import deserialize_message, serialize_message

from ros_helpers import ChildProcess, spin_until


def test_interfaces_round_trip_through_serialization():
    from cyclesiam_ros.msg import TrackStatus, TrackStatusArray
    from cyclesiam_ros.srv import RemoveTarget, SetTarget

    status = TrackStatus(id="7", state=TrackStatus.LOST, score=0.25, latency=0.5)
    status.header.frame_id = "camera"
    status.header.stamp.sec = 12
    status.bbox.center.position.x = 10.5
    status.bbox.size_x = 30.0
    array = TrackStatusArray(targets=[status, TrackStatus(id="8")], dropped_frames=3)
    back = deserialize_message(serialize_message(array), TrackStatusArray)
    assert back == array
    assert back.targets[0].state == TrackStatus.LOST != TrackStatus.TRACKING
    assert back.targets[0].bbox.center.position.x == 10.5

    req = SetTarget.Request(id="cup")
    req.bbox.size_x, req.bbox.size_y = 20.0, 40.0
    req.mask.width, req.mask.height, req.mask.encoding = 2, 1, "mono8"
    req.mask.step, req.mask.data = 2, [0, 255]
    assert deserialize_message(serialize_message(req), SetTarget.Request) == req
    resp = SetTarget.Response(success=True, message="ok", id="cup")
    assert deserialize_message(serialize_message(resp), SetTarget.Response) == resp
    rm = RemoveTarget.Request(id="")
    assert deserialize_message(serialize_message(rm), RemoveTarget.Request) == rm
    assert set(RemoveTarget.Response.get_fields_and_field_types()) == {"success", "message"}


def test_vision_msgs_match_upstream_field_lists():
    from vision_msgs.msg import BoundingBox2D, Detection2D, Detection2DArray, ObjectHypothesisWithPose

    assert Detection2D.get_fields_and_field_types() == {
        "header": "std_msgs/Header",
        "results": "sequence<vision_msgs/ObjectHypothesisWithPose>",
        "bbox": "vision_msgs/BoundingBox2D",
        "id": "string",
    }
    assert BoundingBox2D.get_fields_and_field_types() == {
        "center": "vision_msgs/Pose2D",
        "size_x": "double",
        "size_y": "double",
    }
    assert ObjectHypothesisWithPose.get_fields_and_field_types() == {
        "hypothesis": "vision_msgs/ObjectHypothesis",
        "pose": "geometry_msgs/PoseWithCovariance",
    }
    arr = Detection2DArray(detections=[Detection2D(id="1")])
    assert deserialize_message(serialize_message(arr), Detection2DArray) == arr


def test_vision_msgs_3d_match_upstream_field_lists_and_status_has_depth_status():
    from cyclesiam_ros.msg import TrackStatus
    from vision_msgs.msg import BoundingBox3D, Detection3D, Detection3DArray

    assert BoundingBox3D.get_fields_and_field_types() == {"center": "geometry_msgs/Pose", "size": "geometry_msgs/Vector3"}
    assert Detection3D.get_fields_and_field_types() == {
        "header": "std_msgs/Header",
        "results": "sequence<vision_msgs/ObjectHypothesisWithPose>",
        "bbox": "vision_msgs/BoundingBox3D",
        "id": "string",
    }
    assert Detection3DArray.get_fields_and_field_types() == {
        "header": "std_msgs/Header", "detections": "sequence<vision_msgs/Detection3D>"}
    det = Detection3D(id="cup")
    det.bbox.center.position.z, det.bbox.size.x = 0.8, 0.1
    arr = Detection3DArray(detections=[det])
    assert deserialize_message(serialize_message(arr), Detection3DArray) == arr
    # the existing fields keep their order; the new one comes last
    assert list(TrackStatus.get_fields_and_field_types()) == [
        "header", "id", "state", "score", "bbox", "latency", "depth_status"]


SERVER = textwrap.dedent(
    """
    import rclpy
    from rclpy.node import Node
    from cyclesiam_ros.srv import SetTarget

    def handle(req, resp):
        ok = req.bbox.size_x > 0 and req.bbox.size_y > 0
        resp.success = ok
        resp.id = req.id or "assigned-1"
        resp.message = f"w={req.bbox.size_x:g}" if ok else "degenerate box"
        return resp

    rclpy.init()
    node = Node("set_target_server")
    node.create_service(SetTarget, "/test/set_target", handle)
    print("server ready", flush=True)
    rclpy.spin(node)
    """
)


@pytest.mark.ros
def test_set_target_service_across_processes(rclpy_context, tmp_path):
    from cyclesiam_ros.srv import SetTarget

    script = tmp_path / "server.py"
    script.write_text(SERVER)
    server = ChildProcess([str(script)], tmp_path / "server.log")
    node = rclpy_context.create_node("set_target_client")
    try:
        assert server.wait_for_output("server ready", 30), server.output()
        client = node.create_client(SetTarget, "/test/set_target")
        assert client.wait_for_service(timeout_sec=20), "service never discovered over localhost DDS"

        def call(req):
            fut = client.call_async(req)
            assert spin_until(node, fut.done, 10)
            return fut.result()

        req = SetTarget.Request()
        req.bbox.size_x, req.bbox.size_y = 32.0, 16.0
        resp = call(req)
        assert resp.success and resp.id == "assigned-1" and resp.message == "w=32"
        bad = call(SetTarget.Request(id="x"))
        assert not bad.success and bad.id == "x" and bad.message == "degenerate box"
    finally:
        node.destroy_node()
        server.stop()
