"""`python -m bench`: run every benchmark, write bench/results/report.json and report.md."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch
import transformers

from bench import generation, platform_generation

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    report = {
        "machine": {"cpu_count": __import__("os").cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "transformers": transformers.__version__, "torch_threads": torch.get_num_threads()},
        "generation": generation.run(),
        "platform_generation": platform_generation.run(),
    }
    report["ratios"] = dict(report["platform_generation"]["ratios"])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "report.json").write_text(json.dumps(report, indent=2))
    g = report["generation"]
    table = [
        "| benchmark | baseline | platform | ratio |", "|---|---|---|---|",
        f"| generation, {g['prompts']} prompts x {g['max_new_tokens']} tokens ({g['model']}) | "
        f"{g['serial_tokens_per_s']} tok/s serial | {g['batched_tokens_per_s']} tok/s batched | "
        f"{g['ratio_batched_vs_serial']}x |",
    ]
    p = report["platform_generation"]
    table += [
        f"| GPT-2 small ({p['parameters'] / 1e6:.0f}M), {p['prompts']} prompts x {p['new_tokens']} tokens: "
        f"platform campaign vs one generate per prompt | {p['serial_tokens_per_s']} tok/s | "
        f"{p['platform_tokens_per_s']} tok/s | {p['ratios']['platform_vs_serial']}x |",
        f"| same, platform campaign vs in-process batched | {p['batched_tokens_per_s']} tok/s | "
        f"{p['platform_tokens_per_s']} tok/s | {p['ratios']['platform_vs_batched']}x |",
        f"| platform as a share of the fp32 roofline ({p['matmul_gflops']} GFLOP/s measured) | "
        f"{p['roofline_tokens_per_s']} tok/s | {p['platform_tokens_per_s']} tok/s | "
        f"{p['platform_share_of_roofline']} |",
    ]
    (RESULTS / "report.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
