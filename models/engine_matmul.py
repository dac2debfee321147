"""The engine's matrix products on a CPU: each projection's weight kept packed in oneDNN's blocked layout (bf16 on a CPU with native bf16, else fp32), multiplied without a per-call conversion.

Under autocast every projection (GPT-2's Conv1D `addmm`, a Linear's `linear`) multiplies a bf16
copy of its fp32 weight that autocast caches, but in the plain layout: oneDNN then reorders that
weight into its blocked layout inside every call, a pass over every weight at every decoding step.
Packed once (`torch.ops.mkldnn._reorder_linear_weight`), GPT-2 small's projections and LM head
take 13.3 + 6.6 ms at 32 rows instead of 18.4 + 10.0, and 2.4 + 2.2 ms at one row instead of
4.8 + 4.1 (fp32: 6.2 + 11.1) on 2 AVX-512 BF16 cores.

On a CPU without native bf16 the engine stays in fp32, and the plain fp32 product (MKL's sgemm)
is the slow part there too: on 2 AVX2 cores GPT-2's LM head takes 41.3 ms at 32 rows and 27.0 at 8
through `linear`, 21.5 and 9.2 on an fp32 weight packed by oneDNN (an MLP projection 1.58 -> 1.13
ms at 32 rows). Tiny projections (a 32 x 96 weight) are slower packed (30 us a call of overhead
against 5): the engine packs only for steps of 1e8 FLOPs or more, as it does for bf16.

While `PackedMatmuls.active()` is entered (the engine enters it around such a step's forward pass),
each projection of the model multiplies its packed weight, but for fp32 products of many rows (a
prefill's tokens), where MKL's own is faster (PLAIN_FP32_FROM_ROWS); outside it the model is untouched.
A weight changed in place since it was packed (or replaced) is packed again at its next use.
"""

from __future__ import annotations

import contextlib
import functools

import torch
from transformers.pytorch_utils import Conv1D


def _projections(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's projections a packed weight can stand for: 2-D fp32 weights of Linear and GPT-2's
    Conv1D (an embedding tied to the LM head included)."""
    return [m for m in model.modules()
            if isinstance(m, (torch.nn.Linear, Conv1D)) and m.weight.dim() == 2 and m.weight.dtype == torch.float32]


# From this many rows (a prefill's tokens) the plain fp32 product beats the packed one. On 2 AVX2
# cores, GPT-2 small's 12 layers of projections (weights read from memory, as in a pass) ran at
# 139 GFLOP/s packed and 137 plain at 256 rows, 151 and 166 at 384, 152 and 179 at 2,048; under
# 256 rows packing wins (143 against 117 at 128), and always for an LM head (151 against 97).
PLAIN_FP32_FROM_ROWS = 320


class _Packed:
    """One projection's packed weight and bias in one dtype, and which version of its weight they copy."""

    def __init__(self, module: torch.nn.Module, dtype: torch.dtype):
        weight = module.weight.detach()
        # Linear keeps [out, in], Conv1D [in, out]; oneDNN's inner product takes [out, in].
        plain = weight.t() if isinstance(module, Conv1D) else weight
        self.weight = torch.ops.mkldnn._reorder_linear_weight(plain.to(dtype).contiguous())
        self.bias = None if module.bias is None else module.bias.detach().to(dtype).contiguous()
        self.source = (module.weight, module.weight._version,
                       None if module.bias is None else (module.bias, module.bias._version))

    def stale(self, module: torch.nn.Module) -> bool:
        bias = None if module.bias is None else (module.bias, module.bias._version)
        old_bias = self.source[2]
        return (self.source[0] is not module.weight or self.source[1] != module.weight._version
                or (bias is None) != (old_bias is None)
                or (bias is not None and (bias[0] is not old_bias[0] or bias[1] != old_bias[1])))


class PackedMatmuls:
    """Packed weights in one dtype (bf16 or fp32) for one model's projections (see the module's docstring)."""

    def __init__(self, model: torch.nn.Module, dtype: torch.dtype = torch.bfloat16):
        self.dtype = dtype
        self.modules = _projections(model)
        self._packed: dict[torch.nn.Module, _Packed] = {}

    @contextlib.contextmanager
    def active(self):
        """For the block (run under no_grad), the model's projections multiply their packed weights."""
        for module in self.modules:
            module.forward = functools.partial(self._forward, module)
        try:
            yield
        finally:
            for module in self.modules:
                module.__dict__.pop("forward", None)

    def _forward(self, module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():  # a packed weight has no gradient: a training pass keeps the model's own
            return type(module).forward(module, x)
        if self.dtype == torch.float32 and x.numel() >= PLAIN_FP32_FROM_ROWS * x.shape[-1]:
            return type(module).forward(module, x)  # a prefill's many rows: MKL's own product is faster
        packed = self._packed.get(module)
        if packed is None or packed.stale(module):
            packed = self._packed[module] = _Packed(module, self.dtype)
        return torch.ops.mkldnn._linear_pointwise(x.to(self.dtype), packed.weight, packed.bias, "none", [], "")
