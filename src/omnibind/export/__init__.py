"""Export models to other runtimes: one ONNX graph per tower (`omnibind export onnx MODEL OUT/`)."""
