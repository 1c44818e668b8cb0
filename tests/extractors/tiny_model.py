"""A tiny image model built in the test itself with the ``onnx`` helper API.

Two strided 3x3 convolutions with ReLU, global average pooling and a linear layer,
all with fixed random weights: no weights are ever downloaded. It proves the ONNX
path (decode RGB, batch, embed, pool per block, index, query), not any quality.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_tiny_model(path: Path, *, seed: int = 0, size: tuple[int, int] = (48, 64), dim: int = 24,
                    fixed_size: bool = True, metadata: dict[str, str] | None = None) -> Path:
    """Write the model to ``path``: input ``[batch, 3, H, W]`` float32, output ``[batch, dim]``.

    ``fixed_size=False`` leaves height and width symbolic (a sidecar must give them).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    height, width = size
    weights = {
        "w1": rng.normal(scale=0.5, size=(16, 3, 3, 3)),
        "b1": rng.normal(scale=0.1, size=16),
        "w2": rng.normal(scale=0.2, size=(32, 16, 3, 3)),
        "b2": rng.normal(scale=0.1, size=32),
        "fc": rng.normal(scale=0.3, size=(32, dim)),
        "fcb": np.zeros(dim),
    }
    nodes = [
        helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fc", "fcb"], ["embedding"]),
    ]
    shape = ["batch", 3, height, width] if fixed_size else ["batch", 3, "height", "width"]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dim])],
        initializer=[numpy_helper.from_array(w.astype(np.float32), name) for name, w in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by every onnxruntime since 1.10
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
