"""Image / CompressedImage decoding on real frames: padded rows, 8UC1, pixel limits, decoder noise."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from cyclesiam_ros.image_conversion import (
    ImageConversionError,
    compressed_header,
    compressed_to_bgr,
    image_to_bgr,
    split_captured_stderr,
)


@pytest.fixture(scope="module")
def frame(tree_video, read_frames) -> np.ndarray:
    return read_frames(tree_video, 5)[4]  # 240x320 BGR, real camera footage


def raw_msg(pixels: np.ndarray, encoding: str, padding: int = 0, bigendian: bool = False) -> Image:
    """An Image whose rows are `padding` bytes longer than the pixels, the padding random bytes."""
    height = pixels.shape[0]
    rows = pixels.reshape(height, -1).view(np.uint8)
    padded = np.random.default_rng(padding).integers(0, 256, (height, rows.shape[1] + padding), dtype=np.uint8)
    padded[:, : rows.shape[1]] = rows
    msg = Image(height=height, width=pixels.shape[1], encoding=encoding, is_bigendian=int(bigendian))
    msg.step = padded.shape[1]
    msg.data = padded.tobytes()
    return msg


def expected_bgr(frame: np.ndarray, encoding: str) -> tuple[np.ndarray, np.ndarray]:
    """(pixels as the camera would send them in `encoding`, the BGR frame the node should get)."""
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    grey_bgr = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    return {
        "bgr8": (frame, frame),
        "8UC3": (frame, frame),
        "rgb8": (frame[:, :, ::-1].copy(), frame),
        "bgra8": (cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA), frame),
        "rgba8": (cv2.cvtColor(frame, cv2.COLOR_BGR2RGBA), frame),
        "mono8": (grey, grey_bgr),
        "8UC1": (grey, grey_bgr),
        "mono16": (grey.astype(np.uint16) * 257, grey_bgr),
    }[encoding]


@pytest.mark.parametrize("encoding", ["bgr8", "rgb8", "bgra8", "rgba8", "mono8", "8UC1", "8UC3", "mono16"])
@pytest.mark.parametrize("padding", [0, 1, 13, 64])
def test_rows_are_read_through_step(frame, encoding, padding):
    pixels, want = expected_bgr(frame, encoding)
    out = image_to_bgr(raw_msg(pixels, encoding, padding))
    assert out.shape == want.shape and out.dtype == np.uint8 and out.flags.c_contiguous
    assert np.array_equal(out, want), f"{encoding} with {padding} padding bytes per row decoded wrongly"


def test_mono16_big_endian_with_padding(frame):
    pixels, want = expected_bgr(frame, "mono16")
    out = image_to_bgr(raw_msg(pixels.astype(">u2"), "mono16", padding=6, bigendian=True))
    assert np.array_equal(out, want)


def test_bayer_padded_equals_unpadded(frame):
    bayer = frame[:, :, 1].copy()  # a real mosaic-sized plane
    assert np.array_equal(image_to_bgr(raw_msg(bayer, "bayer_rggb8", 10)), image_to_bgr(raw_msg(bayer, "bayer_rggb8")))


def test_raw_pixel_limit_refuses_with_a_reason(frame):
    msg = raw_msg(frame, "bgr8")
    pixels = frame.shape[0] * frame.shape[1]
    assert image_to_bgr(msg, max_pixels=pixels).shape == frame.shape
    with pytest.raises(ImageConversionError, match="above the limit") as err:
        image_to_bgr(msg, max_pixels=pixels - 1)
    assert err.value.kind == "too_large"


def test_bad_raw_images_have_fixed_kinds_and_bounded_messages(frame):
    msg = raw_msg(frame, "bgr8")
    msg.encoding = "x" * 20000 + "\n[ERROR] forged"
    with pytest.raises(ImageConversionError) as err:
        image_to_bgr(msg)
    assert err.value.kind == "encoding"
    assert "\n" not in str(err.value) and len(str(err.value)) < 400
    short = raw_msg(frame, "bgr8")
    short.step = 100
    with pytest.raises(ImageConversionError) as err:
        image_to_bgr(short)
    assert err.value.kind == "step"


def compressed(data: bytes, fmt: str = "png") -> CompressedImage:
    msg = CompressedImage(format=fmt)
    msg.data = data
    return msg


@pytest.mark.parametrize("ext,params", [(".png", []), (".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])])
def test_header_size_matches_the_decoded_size(frame, ext, params):
    data = cv2.imencode(ext, frame, params)[1].tobytes()
    kind, width, height = compressed_header(data)
    assert (width, height) == (frame.shape[1], frame.shape[0]) and kind in ("png", "jpeg")
    assert compressed_to_bgr(compressed(data)).shape == frame.shape


def test_small_png_declaring_many_pixels_is_refused_from_its_header():
    bomb = cv2.imencode(".png", np.zeros((3000, 3000, 3), np.uint8))[1].tobytes()  # 27 MB of pixels
    assert len(bomb) < 100_000
    with pytest.raises(ImageConversionError, match="3000x3000") as err:
        compressed_to_bgr(compressed(bomb), max_pixels=1_000_000)
    assert err.value.kind == "too_large"


def test_grey_png_becomes_three_channels(frame):
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    out = compressed_to_bgr(compressed(cv2.imencode(".png", grey)[1].tobytes()))
    assert out.shape == frame.shape and np.array_equal(out[:, :, 0], grey)


def test_other_formats_are_refused(frame):
    with pytest.raises(ImageConversionError) as err:
        compressed_to_bgr(compressed(cv2.imencode(".bmp", frame)[1].tobytes(), "bmp"))
    assert err.value.kind == "compressed_format"


def test_decoder_messages_do_not_reach_stderr(frame, capfd):
    png = cv2.imencode(".png", frame)[1].tobytes()
    with pytest.raises(ImageConversionError, match="libpng") as err:
        compressed_to_bgr(compressed(png[: len(png) // 2]))
    assert err.value.kind == "compressed_decode"
    jpeg = bytearray(cv2.imencode(".jpg", frame)[1].tobytes())
    rng = np.random.default_rng(0)
    for index in rng.integers(1000, len(jpeg) - 10, 20):
        jpeg[index] = rng.integers(0, 256)
    warnings: list[str] = []
    assert compressed_to_bgr(compressed(bytes(jpeg), "jpeg"), warn=warnings.append).shape == frame.shape
    assert len(warnings) == 1 and "Corrupt JPEG data" in warnings[0]
    assert capfd.readouterr().err == ""


def test_a_log_line_inside_a_decoder_message_is_kept_whole():
    """libpng writes its message and its newline in two writes: a log line from another thread
    can land between them (the CI run that lost one line of 415)."""
    captured = (
        "libpng error: Read Error[INFO] [17.5] [other_thread]: line 7\n"
        "\n"
        "[WARN] [17.6] [other_thread]: line 8\n"
        "Corrupt JPEG data: 3 extraneous bytes\n"
        "[ERROR] a RCUTILS_CONSOLE_OUTPUT_FORMAT without the time\n"
    )
    decoder, others = split_captured_stderr(captured)
    assert decoder == ["libpng error: Read Error", "Corrupt JPEG data: 3 extraneous bytes"]
    assert others == ["[INFO] [17.5] [other_thread]: line 7\n", "[WARN] [17.6] [other_thread]: line 8\n",
                      "[ERROR] a RCUTILS_CONSOLE_OUTPUT_FORMAT without the time\n"]


def test_log_lines_written_while_decoding_still_reach_stderr(capfd):
    """stderr is captured during a decode: what another thread logs meanwhile is written back."""
    import threading

    import rclpy.logging

    noise = np.random.default_rng(1).integers(0, 256, (1500, 1500, 3), dtype=np.uint8)
    png = cv2.imencode(".png", noise)[1].tobytes()  # ~7 MB, tens of ms to decode
    logger = rclpy.logging.get_logger("other_thread")
    stop = threading.Event()
    written = []

    def log_meanwhile() -> None:
        while not stop.is_set():
            written.append(len(written))
            logger.info(f"line {written[-1]}")

    thread = threading.Thread(target=log_meanwhile)
    thread.start()
    try:
        for _ in range(5):
            truncated = compressed(png[: len(png) // 2])
            with pytest.raises(ImageConversionError, match="libpng"):
                compressed_to_bgr(truncated)
            assert compressed_to_bgr(compressed(png), max_pixels=1500 * 1500).shape == noise.shape
    finally:
        stop.set()
        thread.join()
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if "other_thread" in line]
    assert len(lines) == len(written) and len(written) > 5
    assert "libpng" not in err
