"""The `aigc` command as a person runs it: `up` on the embedded default, keys, submit and status."""

from __future__ import annotations

import codecs
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from core.net import free_port
from tests.harness import REPO, http_ok, wait_for

QUICK = {"kind": "text.generate",
         "input": {"model": "builtin:tiny-gpt2", "prompt": "Sale on", "max_new_tokens": 12, "seed": 4}}


@pytest.fixture(autouse=True)
def _ctrl_c_reaches_the_commands():
    """Ctrl-C as a terminal delivers it. A suite started in the background by a script (`make test &`)
    runs with SIGINT ignored, which its children inherit across exec, and a Python child whose
    SIGINT is ignored never raises KeyboardInterrupt: the tests' Ctrl-C would go unanswered. A
    handler (unlike an ignored disposition) is reset to the default in the child."""
    before = signal.getsignal(signal.SIGINT)
    if before is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if before is signal.SIG_IGN:
        signal.signal(signal.SIGINT, before)


def _aigc(args, env, stdin=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "aigc", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and text in (proc / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


class Up:
    """`aigc up` in the background, its output read line by line."""

    def __init__(self, data_dir: Path, port: int):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIGC_", "AWS_"))}
        env.update(AIGC_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1",
                   AIGC_TORCH_THREADS="1", HF_HOME=str(data_dir / "hf"))
        self.proc = subprocess.Popen([sys.executable, "-m", "aigc", "up", "--port", str(port)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_line(self, prefix: str, timeout_s: float) -> str:
        def found():
            while not self.lines.empty():
                line = self.lines.get()
                self.seen.append(line)
                if line.strip().startswith(prefix):
                    return line
            return None
        return wait_for(found, timeout_s, f"`aigc up` to print {prefix!r}; got {''.join(self.seen)[-3000:]}")

    def stop(self, timeout_s: float = 90) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout_s)
        self.proc.stdout.close()
        return code


def test_up_runs_the_platform_and_a_restart_finds_everything(tmp_path):
    data_dir, port = tmp_path / "aigc-data", free_port()
    base = f"http://127.0.0.1:{port}"
    up = Up(data_dir, port)
    try:
        assert up.wait_line("Open", 60).split()[1] == f"{base}/"
        key = up.wait_line("API key", 60).split()[-1]
        wait_for(lambda: http_ok(base + "/readyz"), 120,
                 "the platform to be ready")
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {key}"
        job = api.post(base + "/v1/jobs", json=QUICK, timeout=10).json()
        wait_for(lambda: api.get(f"{base}/v1/jobs/{job['id']}", timeout=5).json()["status"] == "succeeded",
                 60, "the job to succeed")
        artifact = api.get(f"{base}/v1/jobs/{job['id']}/artifacts/output.json", timeout=5)
        assert artifact.status_code == 200  # streamed from the local store
        text = json.loads(artifact.content)["choices"][0]["text"]

        # A chat does not wait behind training: the embedded default runs a worker for each.
        gan = api.post(base + "/v1/jobs", timeout=10, json={"kind": "gan.train", "input": {
            "dataset": "builtin:digits", "epochs": 200, "batch_size": 32, "nz": 16, "ngf": 8, "ndf": 8,
            "max_images": 256}}).json()
        wait_for(lambda: api.get(f"{base}/v1/jobs/{gan['id']}", timeout=5).json()["status"] == "running", 120,
                 "the GAN to train")
        chat = api.post(base + "/v1/chat/completions", timeout=120, json={
            "model": "builtin:tiny-gpt2", "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]})
        assert chat.status_code == 200 and chat.json()["object"] == "chat.completion"
        assert api.get(f"{base}/v1/jobs/{gan['id']}", timeout=5).json()["status"] == "running"
        api.post(f"{base}/v1/jobs/{gan['id']}/cancel", timeout=10)
    finally:
        code = up.stop()
    assert code == 0
    assert _processes_mentioning(str(data_dir)) == []  # Redis, worker and web all stopped
    assert (data_dir / "redis" / "appendonlydir").is_dir() or (data_dir / "redis" / "appendonly.aof").exists()

    again = Up(data_dir, port)
    try:
        key2 = again.wait_line("API key", 60).split()[-1]
        assert key2 != key
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {key2}"
        wait_for(lambda: http_ok(base + "/healthz"), 60, "web up")
        kept = api.get(f"{base}/v1/jobs/{job['id']}", timeout=5).json()
        assert kept["status"] == "succeeded" and kept["output"]["choices"][0]["text"] == text
        assert api.get(f"{base}/v1/jobs/{job['id']}/artifacts/output.json", timeout=5).status_code == 200
    finally:
        assert again.stop() == 0


def _child(up: "Up", needle: str) -> int:
    """The pid of `aigc up`'s child whose command line holds `needle`."""
    from bench.stack import children, cmdline

    found = [pid for pid in children(up.proc.pid) if needle in cmdline(pid)]
    assert len(found) <= 1, (needle, [cmdline(pid) for pid in children(up.proc.pid)])
    return found[0] if found else 0


def test_up_restarts_a_crashed_worker_web_server_and_redis(tmp_path):
    data_dir, port = tmp_path / "aigc-data", free_port()
    base = f"http://127.0.0.1:{port}"
    up = Up(data_dir, port)
    try:
        key = up.wait_line("API key", 90).split()[-1]
        wait_for(lambda: http_ok(base + "/readyz"), 120, "the platform to be ready")
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {key}"

        def a_job_succeeds(seed: int) -> dict:
            job = api.post(base + "/v1/jobs", json={**QUICK, "input": {**QUICK["input"], "seed": seed}},
                           timeout=10).json()
            wait_for(lambda: api.get(f"{base}/v1/jobs/{job['id']}", timeout=5).json()["status"] == "succeeded",
                     120, f"job {job['id']} to succeed")
            return job

        first = a_job_succeeds(1)
        for needle, name, seed in (("inference", "inference worker", 2), ("gunicorn", "web server", 3),
                                   ("redis-server", "embedded Redis", 4)):
            before = _child(up, needle)
            assert before, needle
            os.kill(before, signal.SIGKILL)
            assert name in up.wait_line(f"The {name} exited with code", 30)
            up.wait_line(f"The {name} is back" if "Redis" in name else f"The {name} was started again", 60)
            # `aigc web` and `aigc worker` exec gunicorn and celery a moment after they start.
            wait_for(lambda: _child(up, needle) not in (0, before), 60, f"a new {name}")
            wait_for(lambda: http_ok(base + "/readyz"), 120, f"the platform to be ready after the {name}")
            a_job_succeeds(seed)
        # Redis came back from its append-only file: what was done before is still there.
        assert api.get(f"{base}/v1/jobs/{first['id']}", timeout=5).json()["status"] == "succeeded"
        assert up.proc.poll() is None
    finally:
        code = up.stop()
    assert code == 0
    assert _processes_mentioning(str(data_dir)) == []


def test_keys_submit_and_status_from_the_command_line(platform):
    env = {**platform.env, "AIGC_API_URL": platform.web_url}
    created = _aigc(["keys", "create", "cli-user"], env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("aigc_")
    assert "cli-user" in _aigc(["keys", "list"], env).stdout

    env["AIGC_API_KEY"] = key
    run = _aigc(["submit", "--watch", "-"], env, stdin=json.dumps(QUICK))
    assert run.returncode == 0, run.stderr
    job = json.loads(run.stdout)
    assert job["status"] == "succeeded" and job["output"]["choices"]
    assert "100.0%" in run.stderr and "12/12 tokens" in run.stderr

    status = _aigc(["status", job["id"]], env)
    assert json.loads(status.stdout)["id"] == job["id"]

    bad = _aigc(["submit", "-"], env, stdin=json.dumps({"kind": "text.generate", "input": {"prompt": "x"}}))
    assert bad.returncode == 2 and "input.model" in bad.stderr

    # Ctrl-C in a watch stops the watch quietly (no traceback); the job keeps running.
    slow = platform.api(key).submit({"dataset": "builtin:digits", "epochs": 500, "nz": 8, "ngf": 4, "ndf": 4,
                                     "batch_size": 32, "max_images": 64}, kind="gan.train")
    watcher = subprocess.Popen([sys.executable, "-m", "aigc", "status", "--watch", slow["id"]], env=env, cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: platform.api(key).get(f"/v1/jobs/{slow['id']}").json()["status"] == "running", 120,
             "the slow job to run")
    first = watcher.stderr.readline()  # the watch has drawn its first line: it is in its loop
    assert "running" in first or "queued" in first, first
    watcher.send_signal(signal.SIGINT)
    _, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 130 and "Traceback" not in err and "stopped" in err, err
    assert platform.api(key).get(f"/v1/jobs/{slow['id']}").json()["status"] == "running"
    platform.api(key).post(f"/v1/jobs/{slow['id']}/cancel")

    assert _aigc(["keys", "revoke", "cli-user"], env).returncode == 0
    assert platform.api(key).get("/v1/jobs").status_code == 401


def test_finetune_from_the_command_line(platform, tmp_path):
    """files upload, finetune create, events --follow to the end, list, checkpoints; pause, resume and cancel."""
    from tests.integration.test_finetune import corpus_bytes

    key = platform.create_key("cli-trainer")
    api = platform.api(key)
    env = {**platform.env, "AIGC_API_URL": platform.web_url, "AIGC_API_KEY": key}
    (tmp_path / "ads.jsonl").write_bytes(corpus_bytes(100))
    uploaded = _aigc(["files", "upload", str(tmp_path / "ads.jsonl"), "--purpose", "fine-tune"], env)
    assert uploaded.returncode == 0, uploaded.stderr
    file_id = uploaded.stdout.strip()
    assert api.get(f"/v1/files/{file_id}").json()["filename"] == "ads.jsonl"

    def create(*extra: str) -> subprocess.CompletedProcess:
        return _aigc(["finetune", "create", "--model", "builtin:tiny-gpt2", "--training-file", file_id, *extra], env)
    made = create("--epochs", "1", "--batch-size", "4", "--learning-rate-multiplier", "6", "--max-steps", "12",
                  "--lora-r", "4", "--suffix", "cli")
    assert made.returncode == 0, made.stderr
    job_id = made.stdout.strip()
    assert job_id.startswith("ftjob-")
    hp = api.get(f"/v1/jobs/{job_id}").json()["input"]["hyperparameters"]
    assert hp["lora"]["r"] == 4 and hp["max_steps"] == 12 and hp["learning_rate"] == pytest.approx(6 * 5e-4)

    followed = _aigc(["finetune", "events", job_id, "--follow"], env, timeout=180)
    assert followed.returncode == 0, followed.stderr
    lines = followed.stdout.splitlines()
    assert lines[0].endswith("Created fine-tuning job") and lines[-1].endswith("The job has successfully completed")
    assert any("train_loss=" in line for line in lines) and any("valid_loss=" in line for line in lines)
    assert "100.0%" in followed.stderr and "12/12 steps" in followed.stderr and "succeeded" in followed.stderr
    assert _aigc(["finetune", "events", job_id], env).stdout.splitlines() == lines  # oldest first, once each

    listed = _aigc(["finetune", "list"], env).stdout
    assert job_id in listed and f"-> ft:builtin:tiny-gpt2:cli:{job_id[-8:]}" in listed
    assert f":ckpt-step-12  train_loss=" in _aigc(["finetune", "checkpoints", job_id], env).stdout

    bad = create("--epochs", "0")
    assert bad.returncode == 2 and "n_epochs" in bad.stderr

    long = create("--max-steps", "100000", "--batch-size", "4", "--lora-r", "4").stdout.strip()
    try:
        assert _aigc(["finetune", "pause", long], env).returncode == 0
        api.wait(long, timeout_s=60, until=("paused",))
        assert "paused" in _aigc(["finetune", "list"], env).stdout
        resumed = _aigc(["finetune", "resume", long], env)
        # Resumed: queued again, or already claimed by the training worker by the time it answers.
        assert resumed.returncode == 0 and resumed.stdout.split()[:1] == [long], resumed.stdout
        assert resumed.stdout.split()[1] in ("queued", "running"), resumed.stdout
    finally:
        canceled = _aigc(["finetune", "cancel", long], env)
    assert canceled.returncode == 0, canceled.stderr
    assert api.wait(long, timeout_s=60)["status"] == "canceled"


def test_demo_fine_tunes_on_the_shipped_corpus_and_generates(platform):
    env = {**platform.env, "AIGC_API_URL": platform.web_url, "AIGC_API_KEY": platform.create_key("demo-user")}
    run = _aigc(["demo", "--steps", "20"], env, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    before, after = run.stdout.split("Samples:")
    assert "Asking builtin:ad-writer:" in before and "Uploaded the ad-copy corpus" in before
    # The built-in writer answers the thermos request with an ad that names it, before any fine-tune.
    answers = re.findall(r"^    -> (.*)$", before, re.M)
    assert len(answers) == 4 and "thermos" in answers[0].lower() and "保温杯" in answers[1], before
    loss = re.search(r"Validation loss ([0-9.]+) -> ([0-9.]+) after 20 steps", run.stdout)
    assert loss and float(loss.group(2)) < float(loss.group(1))
    assert len(re.findall(r"^    -> \S", after, re.M)) == 4, after
    assert re.search(r"^  The ", after, re.M) and re.search(r"^  专为", after, re.M), after


def test_gan_demo_trains_scores_and_samples(platform):
    env = {**platform.env, "AIGC_API_URL": platform.web_url, "AIGC_API_KEY": platform.create_key("gan-demo")}
    run = _aigc(["demo", "--gan", "--epochs", "1"], env, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"Model gan:[0-9a-f]{8} after 56 steps", run.stdout)  # 1,797 digits / 32 per batch
    score = re.search(r"([0-9.]+)% recognisable, (\d+)/10 digits covered", run.stdout)
    assert score and 0 <= float(score.group(1)) <= 100
    assert "grid.png, samples.zip, interpolation.png" in run.stdout
    fidelity = re.search(r"Label fidelity: ([0-9.]+)%", run.stdout)
    assert fidelity and 0 <= float(fidelity.group(1)) <= 100
    assert re.search(r"read as '7'\): 4 images at 256x256, first: http://127\.0\.0\.1:\d+/\S+", run.stdout), run.stdout


# In whole suites started in the background, SIGINT was ignored (so Ctrl-C went unanswered) and a
# reader that died on a byte it could not decode left the chat blocked on a full pipe: the fixture
# above gives SIGINT a handler, and the reader below decodes leniently. Marked xfail while that was
# unproven, it then passed in every whole suite run, CI's included.
def test_chat_in_the_terminal_streams_stops_on_ctrl_c_and_keeps_going(platform):
    key = platform.create_key("terminal-chatter")
    api = platform.api(key)
    env = {**platform.env, "AIGC_API_URL": platform.web_url, "AIGC_API_KEY": key, "PYTHONUNBUFFERED": "1"}
    # 1,000 tokens: a reply that is still being written when Ctrl-C comes, even on a fast machine.
    proc = subprocess.Popen([sys.executable, "-m", "aigc", "chat", "slow-gpt2", "--max-tokens", "1000"], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=REPO)
    out: queue.Queue[str] = queue.Queue()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def read_all():
        # Bytes, decoded leniently: a reader that died on a byte it could not decode would stop
        # draining the pipe, and the chat would block on a full pipe, Ctrl-C or not.
        for chunk in iter(lambda: proc.stdout.buffer.read1(4096), b""):
            out.put(decoder.decode(chunk))
    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    seen = []

    def read_until(predicate, timeout_s: float, what: str):
        def check():
            while not out.empty():
                seen.append(out.get())
            return predicate("".join(seen))
        return wait_for(check, timeout_s, f"{what}; the chat printed {''.join(seen)[-2000:]!r} "
                                          f"(its exit status: {proc.poll()})", interval_s=0.05)

    def say(line: str):
        proc.stdin.write(line + "\n")
        proc.stdin.flush()

    try:
        say("Write an ad for a thermos")
        # The reply streams: text appears while the job still runs; Ctrl-C stops the reply only.
        jobs = wait_for(lambda: api.get("/v1/jobs", params={"kind": "text.chat"}).json()["data"], 60, "a chat job")
        read_until(lambda text: len(text) >= 5, 60, "the reply to start")
        assert api.get(f"/v1/jobs/{jobs[0]['id']}").json()["status"] == "running"
        proc.send_signal(signal.SIGINT)
        read_until(lambda text: "[stopped]" in text, 30, "the reply to stop")
        assert api.wait(jobs[0]["id"], timeout_s=30)["status"] == "canceled"
        assert proc.poll() is None  # still chatting

        say("/system Be brief")
        say("/reset")
        say("Hi again")
        wait_for(lambda: len(api.get("/v1/jobs", params={"kind": "text.chat"}).json()["data"]) == 2, 60,
                 "the second turn's job")
        proc.stdin.close()  # Ctrl-D: quits once the reply is done
        assert proc.wait(120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        reader.join(30)
        proc.stdout.close()
        if not proc.stdin.closed:
            proc.stdin.close()
    second = api.get("/v1/jobs", params={"kind": "text.chat"}).json()["data"][0]
    # /system set the system prompt; /reset dropped the first turn.
    assert second["input"]["messages"] == [{"role": "system", "content": "Be brief"},
                                           {"role": "user", "content": "Hi again"}]
    assert second["status"] == "succeeded"


def test_chat_says_plainly_when_the_platform_is_not_there():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_")}
    env.update(AIGC_API_URL=f"http://127.0.0.1:{free_port()}", AIGC_API_KEY="aigc_whatever")
    done = _aigc(["chat", "builtin:tiny-gpt2"], env, stdin="Hello\n", timeout=60)
    assert done.returncode == 1
    assert "cannot reach" in done.stderr and "Traceback" not in done.stderr


def test_health_worker_is_the_containers_health_check(platform, make_platform):
    """0 while a worker on this host announces itself (the shared platform's does); 1 where none does."""
    ok = _aigc(["health", "worker"], platform.env, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("ok: aigc:worker:"), ok.stdout + ok.stderr
    idle = make_platform("no-worker")  # its own Redis, where no worker ever ran
    none = _aigc(["health", "worker"], idle.env, timeout=60)
    assert none.returncode == 1 and "no worker announced" in none.stdout
