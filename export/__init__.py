"""Export of the deployed int8 network: ONNX (QDQ form, multiplier metadata per conv), the
per-layer multiplier assignment (JSON) and the tables; `python -m export RUN_DIR`.
onnx and onnxruntime are optional (the `export` extra), imported only when exporting."""
