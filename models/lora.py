"""LoRA: adapters trained with peft, and many adapters served over one copy of their base.

Training wraps the base with peft (`with_lora`) and saves only the adapter. Serving does not go
through peft: `AdapterSet` swaps each target layer of the loaded base for a `MultiLoraLayer`
that adds, row by row, the low-rank update of the adapter that row's request named (a zero
update for the base itself). Requests naming different adapters of one base then share one
batch, one forward pass and one copy of the base weights.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections import OrderedDict
from pathlib import Path

import torch

ADAPTER_WEIGHTS, ADAPTER_CONFIG = "adapter_model.safetensors", "adapter_config.json"
LORA_BY_DEFAULT_ABOVE = 50_000_000  # parameters: bases larger than this train adapters unless told


def default_targets(model: torch.nn.Module) -> list[str]:
    """The attention projections peft knows for the architecture; else every attention linear layer."""
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as KNOWN

    known = KNOWN.get(getattr(model.config, "model_type", ""))
    if known:
        return list(known)
    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
             if "attn" in name.lower() and _is_projection(module)}
    return sorted(names) or ["q_proj", "v_proj"]


def _is_projection(module: torch.nn.Module) -> bool:
    from transformers.pytorch_utils import Conv1D

    return isinstance(module, (torch.nn.Linear, Conv1D))


def with_lora(model: torch.nn.Module, lora: dict) -> torch.nn.Module:
    """The model wrapped by peft with fresh adapter weights; only they train."""
    from peft import LoraConfig, get_peft_model

    targets = lora.get("target_modules") or default_targets(model)
    config = LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                        target_modules=targets, task_type="CAUSAL_LM",
                        fan_in_fan_out=getattr(model.config, "model_type", "") == "gpt2")
    with warnings.catch_warnings():
        # peft reads a transformers property that is deprecated in favour of another: not ours to fix.
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, config)


def load_adapter_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    from peft import set_peft_model_state_dict

    set_peft_model_state_dict(model, state)


def save_adapter(model: torch.nn.Module, directory: Path) -> None:
    """adapter_model.safetensors and adapter_config.json: all a served adapter needs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model.save_pretrained(directory, safe_serialization=True)


def read_adapter(directory: Path) -> tuple[float, dict[str, dict[str, torch.Tensor]]]:
    """A saved adapter (safetensors only): its scale (alpha / r) and {module path: {"A", "B"}}."""
    from safetensors.torch import load_file

    config = json.loads((directory / ADAPTER_CONFIG).read_text())
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in load_file(str(directory / ADAPTER_WEIGHTS)).items():
        # base_model.model.transformer.h.0.attn.c_attn.lora_A.weight -> transformer.h.0.attn.c_attn, A
        path, _, rest = name.removeprefix("base_model.model.").partition(".lora_")
        pairs.setdefault(path, {})[rest[0]] = tensor
    return config["lora_alpha"] / config["r"], pairs


# -- serving -------------------------------------------------------------------------------------

class MultiLoraLayer(torch.nn.Module):
    """A base projection plus, per batch row, the update B @ A * scale of that row's adapter.

    `rows` (set by AdapterSet.rows for one call) holds each row's slot; slot 0 is all zeros (the
    base). With no rows set, the layer is the base layer alone.
    """

    def __init__(self, base: torch.nn.Module, conv1d: bool):
        super().__init__()
        self.base, self.conv1d = base, conv1d
        w = base.weight
        self.in_features, self.out_features = (w.shape[0], w.shape[1]) if conv1d else (w.shape[1], w.shape[0])
        self.a = torch.zeros(1, 1, self.in_features, dtype=w.dtype, device=w.device)  # (slots, r, in)
        self.b = torch.zeros(1, self.out_features, 1, dtype=w.dtype, device=w.device)  # (slots, out, r)
        self.rows: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.rows is None:
            return out
        a, b = self.a[self.rows], self.b[self.rows]  # (B, r, in), (B, out, r)
        low = torch.bmm(x.to(a.dtype), a.transpose(1, 2))  # (B, T, r)
        return out + torch.bmm(low, b.transpose(1, 2)).to(out.dtype)  # (B, T, out)


class AdapterSet:
    """The adapters loaded over one base model, at most `capacity`, least recently used evicted."""

    def __init__(self, model: torch.nn.Module, capacity: int = 16):
        self.model, self.capacity = model, capacity
        self.slots: OrderedDict[str, int] = OrderedDict()  # adapter key -> slot (1-based)
        self.layers: dict[str, MultiLoraLayer] = {}  # module path -> its layer

    def __contains__(self, key: str) -> bool:
        return key in self.slots

    def add(self, key: str, directory: Path) -> None:
        """Load an adapter saved by save_adapter into a free slot."""
        scale, pairs = read_adapter(directory)
        if len(self.slots) >= self.capacity:
            self.slots.popitem(last=False)
        used = set(self.slots.values())
        slot = next(s for s in range(1, self.capacity + 2) if s not in used)
        for path, ab in pairs.items():
            layer = self._layer(path)
            self._put(layer, slot, ab["A"], ab["B"] * scale)
        # A layer this adapter does not touch keeps zeros in the slot (set when the slot grew, or below).
        for path, layer in self.layers.items():
            if path not in pairs and layer.a.shape[0] > slot:
                layer.a[slot].zero_()
                layer.b[slot].zero_()
        self.slots[key] = slot

    def touch(self, key: str) -> None:
        self.slots.move_to_end(key)

    @contextlib.contextmanager
    def rows(self, keys: list[str | None]):
        """Within: row i of every batch uses adapter keys[i] (None: the base alone)."""
        index = torch.tensor([self.slots[k] if k else 0 for k in keys], dtype=torch.long)
        index = index.to(next(self.model.parameters()).device)
        for layer in self.layers.values():
            layer.rows = index
        try:
            yield
        finally:
            for layer in self.layers.values():
                layer.rows = None

    def _layer(self, path: str) -> MultiLoraLayer:
        if path not in self.layers:
            from transformers.pytorch_utils import Conv1D

            parent_path, _, child = path.rpartition(".")
            parent = self.model.get_submodule(parent_path)
            base = getattr(parent, child)
            layer = MultiLoraLayer(base, isinstance(base, Conv1D))
            setattr(parent, child, layer)
            self.layers[path] = layer
        return self.layers[path]

    @staticmethod
    def _put(layer: MultiLoraLayer, slot: int, a: torch.Tensor, b: torch.Tensor) -> None:
        """Write an adapter's A (r, in) and scaled B (out, r) into a slot, growing the stacks (slots
        and rank: a smaller rank is zero-padded, which adds nothing)."""
        r = max(layer.a.shape[1], a.shape[0])
        slots = max(layer.a.shape[0], slot + 1)
        if (slots, r) != (layer.a.shape[0], layer.a.shape[1]):
            grown_a = layer.a.new_zeros(slots, r, layer.in_features)
            grown_b = layer.b.new_zeros(slots, layer.out_features, r)
            grown_a[: layer.a.shape[0], : layer.a.shape[1]] = layer.a
            grown_b[: layer.b.shape[0], :, : layer.b.shape[2]] = layer.b
            layer.a, layer.b = grown_a, grown_b
        layer.a[slot].zero_()
        layer.b[slot].zero_()
        layer.a[slot, : a.shape[0]] = a.to(layer.a)
        layer.b[slot, :, : b.shape[1]] = b.to(layer.b)


@torch.no_grad()
def merge_adapter(model: torch.nn.Module, directory: Path) -> None:
    """Fold a saved adapter into the base weights (a private copy, to train further)."""
    from transformers.pytorch_utils import Conv1D

    scale, pairs = read_adapter(directory)
    for path, ab in pairs.items():
        layer = model.get_submodule(path)
        delta = (ab["B"] @ ab["A"]) * scale  # (out, in)
        layer.weight += (delta.T if isinstance(layer, Conv1D) else delta).to(layer.weight)
