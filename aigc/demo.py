"""`aigc demo`: through the running platform's queue, ask the built-in ad writer for ads in English and
Chinese, fine-tune it on the shipped ad-copy corpus (as a user would on their brand's copy), and ask again."""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone

from aigc.client import Client, watch
from core.catalog import DEFAULT_TEXT_MODEL
from core.config import Settings
from models.corpus import ad_copy_path

# A short, gentle fine-tune (about a minute on two CPU cores): the base already writes, so a low rate
# adapts its style to the corpus without unlearning how to answer a request.
HYPERPARAMETERS = {"max_steps": 200, "batch_size": 16, "block_size": 128, "learning_rate": 2e-4,
                   "warmup_steps": 20, "eval_every": 50, "checkpoint_every": 100, "seed": 7}
REQUESTS = ["Write an ad for a thermos for hikers: leak-proof, 24 h hot", "为徒步爱好者写一条保温杯的广告：防漏，24小时保温",
            "summer sale trendy clothing", "夏季销售潮流服装"]
OPENINGS = ["The ", "专为"]


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
    print(f"Asking {DEFAULT_TEXT_MODEL}:", file=out)
    for prompt in REQUESTS:
        print(f"  {prompt}\n    -> {_sample(client, DEFAULT_TEXT_MODEL, prompt)}", file=out)
    corpus = ad_copy_path().read_bytes()
    file = client.upload("ad_copy.jsonl", corpus, "fine-tune")
    print(f"Uploaded the ad-copy corpus ({file['bytes']} bytes) as {file['id']}.", file=out)
    job = client.submit({"kind": "text.finetune", "input": {
        "base_model": DEFAULT_TEXT_MODEL, "training_file": file["id"], "suffix": "ads",
        "hyperparameters": {**HYPERPARAMETERS, **({"max_steps": steps} if steps else {})}}})
    print(f"Fine-tuning {DEFAULT_TEXT_MODEL} as job {job['id']} (watch it at "
          f"{settings.api_url}/jobs/{job['id']}):", file=out)
    job = watch(client, job["id"])
    if job["status"] != "succeeded":
        print(f"The fine-tune ended {job['status']}: {job['error']}", file=out)
        return 1
    result = job["output"]
    print(f"Validation loss {result['first_valid_loss']} -> {result['valid_loss']} "
          f"after {result['steps']} steps. Model: {result['model']}", file=out)
    print("\nSamples:", file=out)
    for prompt in REQUESTS:
        print(f"  {prompt}\n    -> {_sample(client, result['model'], prompt)}", file=out)
    for prompt in OPENINGS:
        print(f"  {prompt}{_sample(client, result['model'], prompt)}", file=out)
    print(f"\nDone in {time.monotonic() - started:.0f} s.", file=out)
    return 0


def _sample(client: Client, model: str, prompt: str) -> str:
    """One seeded generation through the queue, its text on one line."""
    gen = client.submit({"kind": "text.generate", "input": {
        "model": model, "prompt": prompt, "max_new_tokens": 120, "temperature": 0.7, "seed": 1}})
    gen = watch(client, gen["id"], interval_s=0.3, out=_Quiet())
    if gen["status"] != "succeeded":
        return f"({gen['status']})"
    return " ".join(gen["output"]["choices"][0]["text"].split())


class _Quiet:
    """A stream that swallows the progress bar of the short generation jobs."""

    def write(self, _):
        return 0

    def flush(self):
        pass

    def isatty(self):
        return False
