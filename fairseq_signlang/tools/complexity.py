"""Parameter and FLOP counts with fvcore, for the model sizes the configs name.

fvcore counts one fused multiply-add as one FLOP. It has no rule for PyTorch's fused attention,
so one is given here: Q K^T and the weighted sum of V, L x S x head_dim each per head.
"""
from typing import Dict, Tuple

import torch
from fvcore.nn import FlopCountAnalysis, parameter_count


def _shape(value) -> list:
    return value.type().sizes()


def _sdpa_flops(inputs, outputs) -> int:
    q, k = _shape(inputs[0]), _shape(inputs[1])  # (..., L, E), (..., S, E)
    batch = 1
    for n in q[:-2]:
        batch *= n
    return 2 * batch * q[-2] * k[-2] * q[-1]


def complexity(model: torch.nn.Module, inputs: Tuple) -> Dict[str, float]:
    """{"params": all parameters, "trainable": those with requires_grad, "flops": one forward of `inputs`}."""
    model = model.eval()
    counter = FlopCountAnalysis(model, inputs).set_op_handle("aten::scaled_dot_product_attention", _sdpa_flops)
    counter.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    return {
        "params": parameter_count(model)[""],
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "flops": counter.total(),
    }
