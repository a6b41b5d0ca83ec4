"""Where the network runs: the backend protocol (`backend`), the torch backend (`torch_backend`) and
ONNX Runtime: the file format (`onnx_format`), export (`onnx_export`), the export cache
(`onnx_cache`), the runtime session (`onnx_session`) and the check against torch (`onnx_check`).
Modules are imported where used: onnx/onnxruntime load only when the ONNX backend is chosen."""
