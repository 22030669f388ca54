"""The independent check: the exported model run by ONNX Runtime on the CPU against the
project's own emulation of the same deployed network (deploy/), image by image.

With every layer on the signed exact 8-bit multiplier (symmetric int8, the arithmetic ONNX
Runtime executes) both must predict the same class; their logits differ only where float32
rounding in the runtime moves an activation across a code boundary (one code step).
"""

from __future__ import annotations

import numpy as np
import torch

from approx.multiplier import Multiplier, exact_products
from export.deps import require

SIGNED_EXACT = "exact_int8"
# the stated tolerance: largest |logit difference| / largest |logit|, runtime vs emulation (one
# activation code step moved by float32 rounding changes a logit by about 1/127 of a term)
LOGIT_TOLERANCE_REL = 1e-2
# the agreement the check asks for: same predicted class on at least this fraction of images
SAME_CLASS_REQUIRED = 0.999


def signed_exact() -> Multiplier:
    """The exact signed 8x8 multiplier (int8 x int8 products, table by bit pattern)."""
    return Multiplier(SIGNED_EXACT, True, torch.from_numpy(exact_products(True)),
                      relative_energy=1.0, energy_basis="the exact multiplier itself",
                      source="exact int8 products (axdarts export check)")


def runtime_session(model_proto):
    ort = require("onnxruntime")
    return ort.InferenceSession(model_proto.SerializeToString(),
                                providers=["CPUExecutionProvider"])


@torch.no_grad()
def agreement(net, model_proto, batches) -> dict:
    """Agreement of ONNX Runtime with `net` over `batches` of (images, labels): the fraction
    of images with the same predicted class, the largest logit difference (absolute, and
    relative to the largest |logit|), and both accuracies."""
    session = runtime_session(model_proto)
    same = correct_runtime = correct_emulation = total = 0
    max_diff = max_logit = 0.0
    for images, labels in batches:
        emulated = net(images).numpy()
        runtime = session.run(None, {"images": images.cpu().numpy()})[0]
        labels = labels.cpu().numpy()
        same += int((emulated.argmax(1) == runtime.argmax(1)).sum())
        correct_emulation += int((emulated.argmax(1) == labels).sum())
        correct_runtime += int((runtime.argmax(1) == labels).sum())
        total += len(labels)
        max_diff = max(max_diff, float(np.abs(emulated - runtime).max()))
        max_logit = max(max_logit, float(np.abs(emulated).max()))
    relative = max_diff / max_logit if max_logit else 0.0
    return {"images": total, "same_class_fraction": same / total,
            "max_abs_logit_diff": max_diff, "max_rel_logit_diff": relative,
            "passed": same / total >= SAME_CLASS_REQUIRED and relative <= LOGIT_TOLERANCE_REL,
            "test_acc_onnxruntime": correct_runtime / total,
            "test_acc_emulation": correct_emulation / total}
