"""`python -m bench`: run every benchmark, write bench/results/report.json and report.md."""

from __future__ import annotations

import json
import operator
import os
import platform
import sys
import time
from pathlib import Path

import torch
import transformers

from bench import (finetune_plain, gan_plain, generation, images, lora, platform_generation, queue_overhead,
                   rss_growth, serving, streaming)

RESULTS = Path(__file__).resolve().parent / "results"

# Each ratio's target: (comparison, bound). A ratio with no entry is reported without a verdict.
TARGETS = {
    "platform_vs_serial": (">=", 10), "platform_vs_batched": (">=", 1.5),
    "rest_vs_celery_jobs_per_s": (">=", 0.5), "gan_vs_plain": (">=", 0.95), "finetune_vs_plain": (">=", 0.95),
    "rss_growth": ("<", 0.05), "ttft_vs_plain": (">=", 0.7), "web_p99_budget_vs_measured": (">=", 1),
    "images_api_vs_plain": (">=", 0.8), "label_fidelity_dcgan": (">=", 0.9),
    "lora_vs_full_tokens_per_s": (">=", 1.0), "lora_vs_full_peak_rss": ("<=", 0.75),
    "multi_adapter_vs_single": (">=", 0.7),
    "serving_vs_serial": (">=", 8), "serving_vs_static": (">=", 2), "serving_vs_engine_in_process": (">=", 0.85),
    "ttft_p50_ratio": ("<=", 4),
}
_COMPARE = {">=": operator.ge, "<": operator.lt, "<=": operator.le}


PARTS = {"generation": generation, "platform_generation": platform_generation, "queue_overhead": queue_overhead,
         "rss_growth": rss_growth, "finetune_plain": finetune_plain, "gan_plain": gan_plain, "streaming": streaming,
         "images": images, "lora": lora, "serving": serving}


def machine() -> dict:
    return {"cpu_count": os.cpu_count(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "torch_threads": torch.get_num_threads(),
            # Other work on the machine skews timings: the 1-minute load average before and after.
            "load_average": [round(os.getloadavg()[0], 2)]}


def rows(name: str, result: dict) -> list[str]:
    """The module's own markdown rows (`rows(result)`), else one row per ratio."""
    module = PARTS[name]
    if hasattr(module, "rows"):
        return module.rows(result)
    return [f"| {name}: {ratio} | | | {value}x |" for ratio, value in result.get("ratios", {}).items()]


def verdicts(ratios: dict) -> dict:
    out = {}
    for name, value in ratios.items():
        op, bound = TARGETS.get(name, (None, None))
        out[name] = {"value": value, "target": f"{op} {bound}" if op else None,
                     "met": _COMPARE[op](value, bound) if op else None}
    return out


def main(names: list[str]) -> None:
    """Run the named parts (all of them when none is named); a partial run writes report-partial.*."""
    unknown = sorted(set(names) - set(PARTS))
    if unknown:
        sys.exit(f"unknown bench part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    chosen = {name: module for name, module in PARTS.items() if not names or name in names}
    report = {"machine": machine(), "seconds": {}}
    started = time.perf_counter()
    for name, module in chosen.items():
        start = time.perf_counter()
        report[name] = module.run()
        report["seconds"][name] = round(time.perf_counter() - start, 1)
        print(f"bench: {name} done in {report['seconds'][name]} s", flush=True)
    report["seconds"]["total"] = round(time.perf_counter() - started, 1)
    report["machine"]["load_average"].append(round(os.getloadavg()[0], 2))
    report["ratios"] = {k: v for name in chosen for k, v in report[name].get("ratios", {}).items()}
    report["targets"] = verdicts(report["ratios"])
    RESULTS.mkdir(exist_ok=True)
    stem = "report" if len(chosen) == len(PARTS) else "report-partial"
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2))
    table = ["| benchmark | baseline | platform | ratio |", "|---|---|---|---|"]
    for name in chosen:
        table += rows(name, report[name])
    table += ["", "| ratio | value | target | met |", "|---|---|---|---|"]
    for ratio, v in report["targets"].items():
        met = "-" if v["met"] is None else "yes" if v["met"] else "no"
        table.append(f"| {ratio} | {v['value']} | {v['target'] or '-'} | {met} |")
    m = report["machine"]
    table += ["", f"{m['cpu_count']} CPUs ({m['cpu_capability']}), torch {m['torch']}, transformers "
                  f"{m['transformers']}, load average {m['load_average'][0]} -> {m['load_average'][1]}; "
                  f"{report['seconds']['total']} s in all."]
    (RESULTS / f"{stem}.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main(sys.argv[1:])
