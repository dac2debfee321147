"""Argument parsing and dispatch for every `aigc` subcommand; each reads the same AIGC_* settings."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import urllib.parse
from pathlib import Path

from core.catalog import DEFAULT_TEXT_MODEL
from core.config import Settings
from core.errors import AigcError
from models.ad_writer import TRAIN_SEED, TRAIN_STEPS, WEIGHTS_DIR


@contextlib.contextmanager
def admin_redis(settings: Settings):
    """Redis for admin commands: the running one, or the embedded one started just for this command."""
    from core.redisdb import connect

    if settings.uses_embedded_redis and not settings.embedded_redis_url_file.exists():
        from workers.embedded_redis import EmbeddedRedis

        server = EmbeddedRedis(settings.data_dir / "redis")
        try:
            yield connect(server.start())
        finally:
            server.stop()
    else:
        yield connect(settings.redis_url)


def cmd_up(args) -> int:
    from aigc.supervisor import up

    return up(args.host, args.port)


def cmd_web(args) -> int:
    # gevent: completions and streams wait on Redis for seconds to minutes; with threads, a handful
    # of waiting callers would hold every thread and /healthz with them. Each request is a greenlet
    # and every socket (Redis, S3) cooperative, so thousands wait at the cost of their memory.
    argv = [sys.executable, "-m", "gunicorn", "--bind", f"{args.host}:{args.port}",
            "--workers", str(args.workers), "--worker-class", "gevent", "--worker-connections", "2000",
            "--access-logfile", "-",
            "--forwarded-allow-ips", os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
            "web:create_app()"]
    os.execv(sys.executable, argv)


def cmd_worker(args) -> int:
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    from workers.celery_app import QUEUES

    unknown = sorted(set(queues) - set(QUEUES))
    if unknown or not queues:
        raise SystemExit(f"--queues takes a comma-separated subset of {','.join(QUEUES)}")
    concurrency = args.concurrency or Settings.from_env().worker_concurrency
    argv = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
            "--queues", ",".join(queues), "--concurrency", str(concurrency),
            "--hostname", f"aigc-{'-'.join(queues)}-{os.getpid()}@%h", "--loglevel", args.loglevel,
            "--without-gossip", "--without-mingle"]
    os.execv(sys.executable, argv)


def cmd_health(args) -> int:
    """Exit 0 while a worker on this host announces itself (it does every AIGC_REAPER_INTERVAL_S,
    and the announcement lapses a lease period after the worker stops): a container health check."""
    import socket

    from core.redisdb import WORKER_PREFIX, connect

    host = socket.gethostname()
    try:
        found = next(connect(Settings.from_env().redis_url, retries=1).scan_iter(
            f"{WORKER_PREFIX}{host}:*", count=100), None)
    except Exception as exc:  # noqa: BLE001 -- unreachable Redis: unhealthy, said in one line
        print(f"unhealthy: Redis unreachable ({exc})")
        return 1
    print(f"ok: {found}" if found else f"unhealthy: no worker announced on {host}")
    return 0 if found else 1


def cmd_keys(args) -> int:
    from core.keys import KeyStore

    settings = Settings.from_env()
    with admin_redis(settings) as client:
        keys = KeyStore(client)
        if args.keys_cmd == "create":
            key = keys.create(args.name, owner=args.owner)
            print(f"Created key {args.name!r} for owner {args.owner or args.name!r}. "
                  "It is shown once; store it now:")
            print(key)
        elif args.keys_cmd == "list":
            for k in keys.list():
                state = f"revoked {k['revoked_at']}" if k["revoked_at"] else "active"
                print(f"{k['name']:<28} owner={k['owner']:<20} created {k['created_at']}  {state}")
        else:
            keys.revoke(args.name)
            print(f"Revoked key {args.name!r}.")
    return 0


def _read_body(path: str) -> dict:
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SystemExit(f"Not valid JSON in {path}: {exc}") from None


def _api_client():
    """The API client `submit`, `status`, `files` and `finetune` use: AIGC_API_URL with AIGC_API_KEY."""
    from aigc.client import Client

    settings = Settings.from_env()
    return Client(settings.api_url, settings.api_key)


def _print_result(job: dict) -> int:
    print(json.dumps(job, indent=2, ensure_ascii=False))
    return 0 if job["status"] == "succeeded" else 1


def cmd_submit(args) -> int:
    from aigc.client import watch

    client = _api_client()
    job = client.submit(_read_body(args.file))
    print(job["id"], file=sys.stderr)
    if args.watch:
        return _print_result(watch(client, job["id"]))
    print(json.dumps(job, indent=2, ensure_ascii=False))
    return 0


def cmd_status(args) -> int:
    from aigc.client import watch

    client = _api_client()
    if args.watch:
        return _print_result(watch(client, args.id))
    print(json.dumps(client.get(args.id), indent=2, ensure_ascii=False))
    return 0


def cmd_files(args) -> int:
    from aigc import finetune

    client = _api_client()
    if args.files_cmd == "upload":
        print(finetune.upload(client, args.path, args.purpose)["id"])
    else:
        query = f"?purpose={urllib.parse.quote(args.purpose)}" if args.purpose else ""
        for f in client.request("GET", f"/v1/files{query}")["data"]:
            print(f"{f['id']}  {f['purpose']:<10} {f['bytes']:>10}  {f['filename']}")
    return 0


def cmd_finetune(args) -> int:
    from aigc import finetune

    client = _api_client()
    if args.ft_cmd == "create":
        print(finetune.create(client, finetune.create_body(args))["id"])
    elif args.ft_cmd == "list":
        for job in finetune.list_jobs(client, args.limit):
            print(finetune.job_line(job))
    elif args.ft_cmd == "get":
        print(json.dumps(client.request("GET", f"{finetune.JOBS}/{args.id}"), indent=2, ensure_ascii=False))
    elif args.ft_cmd == "events":
        if args.follow:
            return 0 if finetune.follow(client, args.id)["status"] == "succeeded" else 1
        for event in finetune.new_events(client, args.id, set()):
            print(finetune.event_line(event))
    elif args.ft_cmd == "checkpoints":
        for c in client.request("GET", f"{finetune.JOBS}/{args.id}/checkpoints?limit=100")["data"]:
            metrics = "  ".join(f"{k}={v}" for k, v in c["metrics"].items() if k != "step")
            print(f"step {c['step_number']:>6}  {c['fine_tuned_model_checkpoint']}  {metrics}")
    else:  # pause, resume, cancel
        print(finetune.job_line(client.request("POST", f"{finetune.JOBS}/{args.id}/{args.ft_cmd}")))
    return 0


def cmd_chat(args) -> int:
    from aigc.chat import run_chat

    settings = Settings.from_env()
    if not settings.api_key:
        raise SystemExit("Set AIGC_API_KEY (make run prints one; aigc keys create NAME makes more).")
    return run_chat(settings.api_url, settings.api_key, args.model, system=args.system or "",
                    max_tokens=args.max_tokens, temperature=args.temperature)


def cmd_demo(args) -> int:
    if args.gan:
        from aigc.gan_demo import run_gan_demo

        return run_gan_demo(args.epochs)
    from aigc.demo import run_demo

    return run_demo(args.steps)


def cmd_train_builtin(args) -> int:
    from models.ad_writer.train import train

    train(args.steps, args.seed, args.out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aigc", description="Self-hosted asynchronous generative-AI jobs.")
    sub = p.add_subparsers(dest="cmd", required=True)

    up = sub.add_parser("up", help="start Redis (embedded unless AIGC_REDIS_URL), a worker and the web server")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8000)
    up.set_defaults(func=cmd_up)

    web = sub.add_parser("web", help="serve the web app and API with gunicorn")
    web.add_argument("--host", default="127.0.0.1")
    web.add_argument("--port", type=int, default=8000)
    web.add_argument("--workers", type=int, default=2)
    web.set_defaults(func=cmd_web)

    worker = sub.add_parser("worker", help="run a Celery worker")
    worker.add_argument("--queues", default="inference,training,default")
    worker.add_argument("--concurrency", type=int, default=0, help="default: AIGC_WORKER_CONCURRENCY")
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(func=cmd_worker)

    health = sub.add_parser("health", help="exit 0 while this host's worker announces itself (health checks)")
    health.add_argument("what", choices=["worker"])
    health.set_defaults(func=cmd_health)

    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    ksub = keys.add_subparsers(dest="keys_cmd", required=True)
    kc = ksub.add_parser("create", help="make a key; it is printed once, as the last line")
    kc.add_argument("name")
    kc.add_argument("--owner", default=None, help="whose jobs the key acts on (default: NAME)")
    ksub.add_parser("list")
    kr = ksub.add_parser("revoke")
    kr.add_argument("name")
    keys.set_defaults(func=cmd_keys)

    submit = sub.add_parser("submit", help="submit a job: JSON {kind, input} from a file or - for stdin")
    submit.add_argument("file", nargs="?", default="-")
    submit.add_argument("--watch", action="store_true", help="show a progress bar until the job ends")
    submit.set_defaults(func=cmd_submit)

    status = sub.add_parser("status", help="show a job")
    status.add_argument("id")
    status.add_argument("--watch", action="store_true", help="show a progress bar until the job ends")
    status.set_defaults(func=cmd_status)
    add_finetune_parsers(sub)

    chat = sub.add_parser("chat", help="chat with a model in the terminal, replies streamed as they are written")
    chat.add_argument("model", nargs="?", default=DEFAULT_TEXT_MODEL)
    chat.add_argument("--system", default="", help="the system prompt (also /system TEXT while chatting)")
    chat.add_argument("--max-tokens", type=int, default=None)
    chat.add_argument("--temperature", type=float, default=None)
    chat.set_defaults(func=cmd_chat)

    demo = sub.add_parser("demo", help="fine-tune the built-in model on the shipped ad copy, then generate "
                                       "(--gan: train a GAN on the built-in digits, then sample)")
    demo.add_argument("--steps", type=int, default=None, help="training steps (default: the tuned demo)")
    demo.add_argument("--gan", action="store_true", help="the GAN demo instead")
    demo.add_argument("--epochs", type=int, default=None, help="GAN epochs (default: the tuned demo)")
    demo.set_defaults(func=cmd_demo)

    tb = sub.add_parser("train-builtin", help=f"train {DEFAULT_TEXT_MODEL} again from the shipped data")
    tb.add_argument("--steps", type=int, default=TRAIN_STEPS)
    tb.add_argument("--seed", type=int, default=TRAIN_SEED)
    tb.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="default: the package's weights, replaced")
    tb.set_defaults(func=cmd_train_builtin)
    return p


def add_finetune_parsers(sub) -> None:
    """`aigc files ...` and `aigc finetune ...` (OpenAI's fine-tuning API, over HTTP)."""
    from core.schemas import FinetuneHyperparameters, LoraSettings

    hp, lora = FinetuneHyperparameters(), LoraSettings()  # the defaults the help names
    files = sub.add_parser("files", help="upload and list files (training data for fine-tunes, sheets, ...)")
    fsub = files.add_subparsers(dest="files_cmd", required=True)
    fu = fsub.add_parser("upload", help="upload a file; prints its id")
    fu.add_argument("path")
    fu.add_argument("--purpose", default="fine-tune", help="fine-tune (default), campaign, gan-dataset or batch")
    fl = fsub.add_parser("list")
    fl.add_argument("--purpose", default=None)
    files.set_defaults(func=cmd_files)

    ft = sub.add_parser("finetune", help="start, list, follow, pause, resume and cancel fine-tuning jobs")
    tsub = ft.add_subparsers(dest="ft_cmd", required=True)
    fc = tsub.add_parser("create", help="start a fine-tune; prints its job id (unset settings: the defaults)")
    fc.add_argument("--model", required=True, help="the base: any text model you may name")
    fc.add_argument("--training-file", required=True, help="a file id (aigc files upload PATH)")
    fc.add_argument("--validation-file", default=None, help="default: a held-out 10%% of the training file")
    fc.add_argument("--epochs", type=int, default=None, help=f"default {hp.epochs}")
    fc.add_argument("--batch-size", type=int, default=None, help=f"default {hp.batch_size}")
    fc.add_argument("--learning-rate-multiplier", type=float, default=None,
                    help=f"times the base learning rate {hp.learning_rate} (default 1)")
    fc.add_argument("--max-steps", type=int, default=None, help="overrides epochs")
    method = fc.add_mutually_exclusive_group()
    method.add_argument("--lora-r", type=int, default=None,
                        help=f"a LoRA adapter of this rank (default: one of rank {lora.r} for bases over 50M "
                             "parameters, else every weight)")
    method.add_argument("--full", action="store_true", help="train every weight (no adapter)")
    fc.add_argument("--suffix", default=None, help="in the model's name")
    fc.add_argument("--seed", type=int, default=None)
    fl = tsub.add_parser("list", help="newest first")
    fl.add_argument("--limit", type=int, default=20)
    for name, text in (("get", "the job as JSON"), ("checkpoints", "its kept checkpoints, newest first"),
                       ("pause", "checkpoint and wait"), ("resume", "continue from the last checkpoint"),
                       ("cancel", "stop, keeping the last checkpoint")):
        tsub.add_parser(name, help=text).add_argument("id")
    fe = tsub.add_parser("events", help="the job's events, oldest first")
    fe.add_argument("id")
    fe.add_argument("--follow", action="store_true", help="keep printing them, with a progress bar, until the job ends")
    ft.set_defaults(func=cmd_finetune)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        # Ctrl-C leaves a watch or a long command quietly: the job itself keeps running.
        print("\nstopped (the platform keeps any job running)", file=sys.stderr)
        return 130
    except AigcError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except Exception as exc:
        from aigc.client import ApiError

        if isinstance(exc, ApiError):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
