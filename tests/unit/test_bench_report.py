"""The bench report's arithmetic: target verdicts, nearest-rank percentiles, part selection."""

from __future__ import annotations

import pytest

from bench.__main__ import TARGETS, main, verdicts
from bench.queue_overhead import percentile


def test_each_ratio_gets_its_targets_verdict():
    out = verdicts({"platform_vs_serial": 9.9, "platform_vs_batched": 1.5, "rss_growth": 0.05, "new": 1.0})
    assert out["platform_vs_serial"] == {"value": 9.9, "target": ">= 10", "met": False}
    assert out["platform_vs_batched"]["met"] is True  # the bound itself meets a >= target
    assert out["rss_growth"]["met"] is False  # ... and misses a < one
    assert out["new"] == {"value": 1.0, "target": None, "met": None}


def test_every_ratio_the_issue_names_has_a_target():
    assert set(TARGETS) == {"platform_vs_serial", "platform_vs_batched", "rest_vs_celery_jobs_per_s",
                            "gan_vs_plain", "finetune_vs_plain", "rss_growth", "ttft_vs_plain",
                            "web_p99_budget_vs_measured", "images_api_vs_plain", "label_fidelity_dcgan",
                            "lora_vs_full_tokens_per_s", "lora_vs_full_peak_rss", "multi_adapter_vs_single",
                            "serving_vs_serial", "serving_vs_static", "serving_vs_engine_in_process",
                            "ttft_p50_ratio"}


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 99) == 99.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0 and percentile([7.0], 99) == 7.0


def test_an_unknown_part_is_refused_before_anything_runs():
    with pytest.raises(SystemExit, match="unknown bench part"):
        main(["generation", "no_such_part"])
