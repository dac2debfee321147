"""GPT-2's tanh-approximate GELU, computed on a CPU in fp32 inference by the sigmoid form of the same formula, about twice as fast as torch's kernel there.

0.5 * x * (1 + tanh(z)) is x * sigmoid(2z) exactly (z = sqrt(2/pi) * (x + 0.044715 x^3)). On 2 AVX2
cores torch's tanh-approximate GELU took 15.0 ms for a 2,048-token prefill's [2048, 3072]
activations (its tanh alone 10.9 ms), the sigmoid form in place 7.4 ms, and 0.15 against 0.10 ms at a
27-row decoding step: 12 of them a GPT-2 small pass. Values agree within 5e-7. Anywhere else (a
gradient to keep, a GPU, bf16 under autocast) the module is torch's fused kernel, as before.
"""

from __future__ import annotations

import math

import torch

_TWO_C = 2 * math.sqrt(2 / math.pi)


class TanhGELU(torch.nn.Module):
    """Tanh-approximate GELU (transformers' `gelu_new` / `gelu_pytorch_tanh`), faster in fp32 CPU inference."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dtype != torch.float32 or (torch.is_grad_enabled() and x.requires_grad):
            return torch.nn.functional.gelu(x, approximate="tanh")
        # In place on one new tensor: x * sigmoid(2c * x * (1 + 0.044715 x^2)).
        y = torch.mul(x, x).mul_(0.044715 * _TWO_C).add_(_TWO_C).mul_(x)  # (square() is pow: 2x slower)
        return y.sigmoid_().mul_(x)
