"""`aigc demo`: through the running platform's queue, fine-tune the built-in model on the shipped
ad-copy corpus, then generate ad copy with it in English and Chinese."""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone

from aigc.client import Client, watch
from core.config import Settings
from models.corpus import ad_copy_path

# Tuned to finish within about three minutes on two CPU cores (see README).
HYPERPARAMETERS = {"max_steps": 1200, "batch_size": 16, "block_size": 128, "learning_rate": 6e-3,
                   "warmup_steps": 20, "eval_every": 200, "checkpoint_every": 400, "seed": 7}
PROMPTS = ["The ", "Calling all ", "Want to ", "专为", "想要", "试试"]


def _api_key(settings: Settings) -> str:
    """AIGC_API_KEY, else a fresh key for the local owner when the embedded platform is up."""
    if settings.api_key:
        return settings.api_key
    if settings.uses_embedded_redis and settings.embedded_redis_url_file.exists():
        from core.keys import KeyStore
        from core.redisdb import connect

        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        return KeyStore(connect(settings.redis_url)).create(f"demo-{stamp}", owner="local")
    raise SystemExit("Start the platform first (`make run` in another terminal), or set AIGC_API_URL "
                     "and AIGC_API_KEY to use a running one.")


def run_demo(steps: int | None = None, out=sys.stdout) -> int:
    settings = Settings.from_env()
    client = Client(settings.api_url, _api_key(settings))
    started = time.monotonic()
    corpus = ad_copy_path().read_bytes()
    file = client.upload("ad_copy.jsonl", corpus, "fine-tune")
    print(f"Uploaded the ad-copy corpus ({file['bytes']} bytes) as {file['id']}.", file=out)
    job = client.submit({"kind": "text.finetune", "input": {
        "base_model": "builtin:tiny-gpt2", "training_file": file["id"], "suffix": "ads",
        "hyperparameters": {**HYPERPARAMETERS, **({"max_steps": steps} if steps else {})}}})
    print(f"Fine-tuning builtin:tiny-gpt2 as job {job['id']} (watch it at "
          f"{settings.api_url}/jobs/{job['id']}):", file=out)
    job = watch(client, job["id"])
    if job["status"] != "succeeded":
        print(f"The fine-tune ended {job['status']}: {job['error']}", file=out)
        return 1
    result = job["output"]
    print(f"Validation loss {result['first_valid_loss']} -> {result['valid_loss']} "
          f"after {result['steps']} steps. Model: {result['model']}", file=out)
    print("\nSamples:", file=out)
    for prompt in PROMPTS:
        gen = client.submit({"kind": "text.generate", "input": {
            "model": result["model"], "prompt": prompt, "max_new_tokens": 160, "temperature": 0.7,
            "seed": 1}})
        gen = watch(client, gen["id"], interval_s=0.3, out=_Quiet())
        text = gen["output"]["choices"][0]["text"] if gen["status"] == "succeeded" else f"({gen['status']})"
        print(f"  {prompt}{text.strip()}", file=out)
    print(f"\nDone in {time.monotonic() - started:.0f} s.", file=out)
    return 0


class _Quiet:
    """A stream that swallows the progress bar of the short generation jobs."""

    def write(self, _):
        return 0

    def flush(self):
        pass

    def isatty(self):
        return False
