"""Static checks of infra/ (compose, redis.conf, k8s manifests, no literal secrets): Docker cannot run in CI."""

from __future__ import annotations

import json
import pathlib
import re

import pytest
import yaml

INFRA = pathlib.Path(__file__).resolve().parents[2] / "infra"
COMPOSE = INFRA / "docker-compose.yml"
REDIS_CONF = INFRA / "redis.conf"
K8S = INFRA / "k8s"

# Files an operator creates from the *.example templates; git-ignored by infra/.gitignore.
LOCAL_SECRET_FILES = {INFRA / ".env", K8S / "secret.yaml"}

# Keys whose value is a credential; matched case-insensitively on `KEY: value` / `KEY=value`.
_SECRET_KEY = r"[A-Za-z0-9_]*(?:PASSWORD|SECRET_KEY|SECRET_ACCESS_KEY|ACCESS_KEY_ID|ROOT_USER|API_KEY|TOKEN)[A-Za-z0-9_]*"
SECRET_ASSIGNMENT = re.compile(
    rf"""(?<![\w${{])(?P<key>{_SECRET_KEY})["']?[ \t]*[:=][ \t]*["']?(?P<value>[^\s"',}}]+)""", re.IGNORECASE
)
# redis.conf lines (`requirepass x`) and command lines (`--requirepass x`), not prose in comments.
REQUIREPASS = re.compile(r"(?:^[ \t]*|--)requirepass[ \t]+(?P<value>[^\s\"']+)", re.IGNORECASE | re.MULTILINE)
URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:(?P<value>[^@\s/]+)@", re.IGNORECASE)


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _command(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else command


def _environment(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return env


def _redis_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in REDIS_CONF.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            settings.setdefault(name.lower(), []).append(value.strip())
    return settings


def _k8s_documents() -> list[tuple[pathlib.Path, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path, doc))
    return docs


def _is_reference_or_placeholder(value: str) -> bool:
    """`${VAR}` (compose), `$$VAR` / `$VAR` (shell in a container), or an obvious change-me."""
    return value.startswith("$") or value.lower().startswith("change-me")


def find_literal_secrets(text: str) -> list[str]:
    """Credential values in `text` that are neither variable references nor placeholders."""
    found = []
    for pattern in (SECRET_ASSIGNMENT, REQUIREPASS, URL_PASSWORD):
        for match in pattern.finditer(text):
            if not _is_reference_or_placeholder(match.group("value")):
                found.append(match.group(0))
    return found


def test_compose_has_the_platform_services():
    compose = _compose()
    assert "version" not in compose
    expected = {"redis", "minio", "minio-init", "web", "worker-gpu", "worker-cpu", "flower"}
    assert expected <= set(compose["services"])


def test_compose_app_services_share_the_image_and_environment():
    services = _compose()["services"]
    for name, target in (("web", "web"), ("worker-gpu", "worker"), ("worker-cpu", "worker")):
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "infra/Dockerfile", "target": target}, name
        assert service["image"].startswith(f"aigc-platform:{target}-"), name
        # Models by directory and the Hugging Face cache live on volumes, where the settings say.
        assert {"models:/var/lib/aigc/models", "hf-cache:/var/lib/aigc/hf"} <= set(service["volumes"]), name
        env = _environment(service)
        assert env["AIGC_ENV"] == "production", name
        assert env["AIGC_STORAGE_URL"] == "s3://aigc/artifacts", name
        assert env["AIGC_REDIS_URL"] == "redis://:${REDIS_PASSWORD}@redis:6379/0", name
        assert env["AIGC_S3_ENDPOINT_URL"] == "http://minio:9000", name
        assert (env["AIGC_MODELS_DIR"], env["HF_HOME"]) == ("/var/lib/aigc/models", "/var/lib/aigc/hf"), name
        assert service["depends_on"]["redis"]["condition"] == "service_healthy", name
        assert service["depends_on"]["minio"]["condition"] == "service_healthy", name
    assert _command(services["web"]) == "aigc web --host 0.0.0.0 --port 8000"
    assert any("8000" in str(port) for port in services["web"]["ports"])
    assert _command(services["worker-cpu"]) == "aigc worker --queues default"


def test_worker_gpu_serves_inference_and_training_on_one_gpu():
    service = _compose()["services"]["worker-gpu"]
    command = _command(service).split()
    assert command[:2] == ["aigc", "worker"]
    assert command[command.index("--queues") + 1] == "inference,training"
    env = _environment(service)
    assert str(env["CUDA_VISIBLE_DEVICES"]) == "0"
    assert str(env["AIGC_WORKER_CONCURRENCY"]) == "1"
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        d.get("driver") == "nvidia" and d.get("count") == 1 and "gpu" in d.get("capabilities", [])
        for d in devices
    )


def test_redis_service_mounts_config_and_takes_password_from_env():
    redis = _compose()["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    assert any(
        str(v).split(":")[:2] == ["./redis.conf", "/usr/local/etc/redis/redis.conf"] for v in redis["volumes"]
    )
    command = _command(redis)
    assert command.startswith("redis-server /usr/local/etc/redis/redis.conf")
    assert "--requirepass ${REDIS_PASSWORD" in command
    assert any(str(v).split(":")[1] == "/data" for v in redis["volumes"] if ":" in str(v))
    assert "redis-cli" in " ".join(redis["healthcheck"]["test"])


def test_minio_init_creates_the_bucket():
    services = _compose()["services"]
    assert services["minio"]["image"].startswith("minio/minio")
    init = services["minio-init"]
    assert init["image"].startswith("minio/mc")
    script = " ".join(init.get("entrypoint") or []) + " " + _command(init)
    assert "mb" in script and "local/aigc" in script


def test_flower_uses_the_password_protected_broker():
    flower = _compose()["services"]["flower"]
    assert flower["image"].startswith("mher/flower")
    assert "--broker=redis://:${REDIS_PASSWORD}@redis:6379/0" in _command(flower)
    assert any("5555" in str(port) for port in flower["ports"])


def test_redis_conf_keeps_queued_jobs_across_restarts():
    settings = _redis_settings()
    assert settings["appendonly"] == ["yes"]
    assert settings["appendfsync"] == ["everysec"]
    assert settings["maxmemory-policy"] == ["noeviction"]
    assert settings["dir"] == ["/data"]
    assert settings["protected-mode"] == ["yes"]
    assert settings.get("save"), "RDB snapshots as a second copy"
    assert "requirepass" not in settings, "the password comes from the command line, not the file"


def test_every_k8s_manifest_has_api_version_and_kind():
    docs = _k8s_documents()
    assert {p.name for p, _ in docs} >= {
        "web.yaml", "worker-gpu.yaml", "worker-cpu.yaml", "configmap.yaml", "secret.example.yaml"
    }
    for path, doc in docs:
        assert isinstance(doc, dict), path.name
        assert doc.get("apiVersion"), path.name
        assert doc.get("kind"), path.name
        assert doc.get("metadata", {}).get("name"), path.name
    kinds = {(p.name, d["kind"]) for p, d in docs}
    assert ("web.yaml", "Deployment") in kinds and ("web.yaml", "Service") in kinds
    assert ("configmap.yaml", "ConfigMap") in kinds and ("secret.example.yaml", "Secret") in kinds


def _deployment(filename: str) -> dict:
    [doc] = [d for p, d in _k8s_documents() if p.name == filename and d["kind"] == "Deployment"]
    return doc


def test_k8s_workers_serve_their_queues_with_a_grace_period():
    for filename, queues in (("worker-gpu.yaml", "inference,training"), ("worker-cpu.yaml", "default")):
        pod = _deployment(filename)["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] == 120, filename
        [container] = pod["containers"]
        argv = container.get("command", []) + container.get("args", [])
        assert argv[argv.index("--queues") + 1] == queues, filename
    [gpu] = _deployment("worker-gpu.yaml")["spec"]["template"]["spec"]["containers"]
    assert int(gpu["resources"]["limits"]["nvidia.com/gpu"]) == 1


def test_compose_and_k8s_give_workers_the_same_grace_period():
    compose = _compose()["services"]
    for service, filename in (("worker-gpu", "worker-gpu.yaml"), ("worker-cpu", "worker-cpu.yaml")):
        k8s = _deployment(filename)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert compose[service]["stop_grace_period"] == f"{k8s}s", service


def test_k8s_configmap_holds_no_credentials():
    [config] = [d for p, d in _k8s_documents() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "aigc-config"]
    assert all(key.startswith("AIGC_") or key == "HF_HOME" for key in config["data"])
    assert "AIGC_SECRET_KEY" not in config["data"] and "AIGC_REDIS_URL" not in config["data"]


@pytest.mark.parametrize(
    "text, literal",
    [
        ("AWS_SECRET_ACCESS_KEY: hunter2hunter2", True),
        ("REDIS_PASSWORD=s3cr3t", True),
        ("requirepass s3cr3t", True),
        ("AIGC_REDIS_URL: redis://:s3cr3t@redis:6379/0", True),
        ('"AIGC_SECRET_KEY": "abcdefabcdefabcdef"', True),
        ("AWS_SECRET_ACCESS_KEY: ${MINIO_ROOT_PASSWORD}", False),
        ("AIGC_REDIS_URL: redis://:${REDIS_PASSWORD}@redis:6379/0", False),
        ("--requirepass ${REDIS_PASSWORD:?set REDIS_PASSWORD}", False),
        ("AIGC_SECRET_KEY=change-me", False),
        ("secretRef:", False),
        ("# requirepass is passed on the command line", False),
    ],
)
def test_secret_scanner(text, literal):
    assert bool(find_literal_secrets(text)) is literal


def test_no_literal_secrets_under_infra():
    files = [p for p in INFRA.rglob("*") if p.is_file() and p not in LOCAL_SECRET_FILES]
    assert COMPOSE in files and REDIS_CONF in files
    offenders = {str(p.relative_to(INFRA)): find_literal_secrets(p.read_text()) for p in files}
    assert {name: hits for name, hits in offenders.items() if hits} == {}


def test_compose_credentials_are_variable_references_only():
    text = COMPOSE.read_text()
    for match in SECRET_ASSIGNMENT.finditer(text):
        assert match.group("value").startswith("$"), match.group(0)
    assert "change-me" not in text


def test_local_secret_files_are_git_ignored():
    ignored = {line.strip() for line in (INFRA / ".gitignore").read_text().splitlines()}
    assert ".env" in ignored and "k8s/secret.yaml" in ignored
    assert "**/.env" in (INFRA / "Dockerfile.dockerignore").read_text().split()


def test_the_grafana_dashboard_queries_only_metrics_the_platform_exports():
    """Every aigc_* series a panel queries is one /metrics serves (web/metrics_api.py, core/metrics.py)."""
    from core import metrics

    exported = {f"aigc_{name.removesuffix('_total')}_total" for name in metrics.HELP if name.endswith("_total")}
    exported |= {f"aigc_{name}_{part}" for name in metrics.HISTOGRAMS for part in ("bucket", "sum", "count")}
    exported |= {"aigc_workers", "aigc_queue_messages", "aigc_batch_jobs_waiting", "aigc_jobs_running",
                 "aigc_streams_active", "aigc_gpu_memory_bytes"}
    dashboard = json.loads((INFRA / "grafana" / "aigc-dashboard.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\baigc_[a-z_]+", target["expr"])}
    assert queried and queried <= exported, queried - exported
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_images_are_pinned():
    """Every image names a version: no bare name, no `latest`."""
    compose_images = [s["image"] for s in _compose()["services"].values() if "image" in s]
    k8s_images = [c["image"] for _, d in _k8s_documents() if d["kind"] in ("Deployment", "StatefulSet", "Job")
                  for c in (d["spec"]["template"]["spec"]["containers"])]
    for image in compose_images + k8s_images:
        name, _, tag = image.rpartition("/")[2].partition(":")
        assert tag and tag != "latest" and re.search(r"\d", tag), image
    assert re.search(r"^FROM python:3\.11\.\d+-slim", (INFRA / "Dockerfile").read_text(), re.M)


def test_the_dockerfile_installs_dependencies_before_the_code_and_the_web_image_has_no_torch():
    import importlib.util

    text = (INFRA / "Dockerfile").read_text()
    for target in ("web", "worker"):
        stage = text.split(f"AS {target}\n", 1)[1].split("\nFROM ", 1)[0]
        assert stage.index("pip install --no-cache-dir -r") < stage.index("COPY . .") < stage.index("--no-deps ."), target
    spec = importlib.util.spec_from_file_location("requirements", INFRA / "requirements.py")
    requirements = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(requirements)
    web = requirements.dependencies(INFRA.parent / "pyproject.toml", web=True)
    everything = requirements.dependencies(INFRA.parent / "pyproject.toml")
    assert not any(d.startswith(("torch", "transformers", "scikit-learn")) for d in web)
    assert any(d.startswith("torch==") for d in everything) and any(d.startswith("flask") for d in web)


def test_web_and_core_never_import_what_only_workers_install():
    """What keeps the slim web image working: no module of web/ or core/ imports torch and the like."""
    import ast

    worker_only = {"torch", "torchvision", "transformers", "tokenizers", "safetensors", "sklearn", "models",
                   "tasks"}
    offenders = []
    for package in ("web", "core"):
        for path in (INFRA.parent / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
                offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in worker_only]
    assert offenders == []


def test_k8s_runs_the_whole_platform():
    kinds = {(p.name, d["kind"], d["metadata"]["name"]) for p, d in _k8s_documents()}
    for expected in (("redis.yaml", "StatefulSet", "redis"), ("redis.yaml", "Service", "redis"),
                     ("minio.yaml", "StatefulSet", "minio"), ("minio.yaml", "Job", "minio-create-bucket"),
                     ("flower.yaml", "Deployment", "flower"), ("ingress.yaml", "Ingress", "aigc-web"),
                     ("models.yaml", "PersistentVolumeClaim", "aigc-models")):
        assert expected in kinds, expected
    # Redis keeps queued jobs across restarts, as infra/redis.conf does.
    [conf] = [d for _, d in _k8s_documents() if d["metadata"]["name"] == "aigc-redis-config"]
    assert {"appendonly yes", "appendfsync everysec", "maxmemory-policy noeviction"} <= set(
        conf["data"]["redis.conf"].splitlines())
    # Web and workers mount the models volume; workers have a liveness probe on their announcement.
    for filename in ("web.yaml", "worker-cpu.yaml", "worker-gpu.yaml"):
        pod = _deployment(filename)["spec"]["template"]["spec"]
        assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "aigc-models", filename
        mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        assert mounts == {"/var/lib/aigc/models", "/var/lib/aigc/hf"}, filename
    for filename in ("worker-cpu.yaml", "worker-gpu.yaml"):
        [container] = _deployment(filename)["spec"]["template"]["spec"]["containers"]
        assert container["livenessProbe"]["exec"]["command"] == ["aigc", "health", "worker"], filename


def test_keda_scales_each_worker_on_the_queues_it_serves():
    scaled = {d["spec"]["scaleTargetRef"]["name"]: d for _, d in _k8s_documents() if d["kind"] == "ScaledObject"}
    for filename in ("worker-gpu.yaml", "worker-cpu.yaml"):
        deployment = _deployment(filename)
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        argv = container["command"]
        queues = set(argv[argv.index("--queues") + 1].split(","))
        triggers = scaled[deployment["metadata"]["name"]]["spec"]["triggers"]
        assert {t["metadata"]["listName"] for t in triggers if t["type"] == "redis"} == queues, filename
