"""The shipped Dockerfile and Kubernetes manifest use commands and options lsmigrate really has."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML

from lsmigrate.cli.app import main

ROOT = Path(__file__).resolve().parent.parent


def _options(command_name: str) -> set[str]:
    command = main.commands[command_name]
    return {opt for param in command.params for opt in getattr(param, "opts", [])}


def test_kubernetes_job_runs_real_commands_and_options():
    docs = list(YAML(typ="safe").load_all((ROOT / "docs" / "kubernetes-job.yaml").read_text()))
    job = next(doc for doc in docs if doc["kind"] == "Job")
    container = job["spec"]["template"]["spec"]["containers"][0]
    command, *args = container["args"]
    assert command in main.commands
    known = _options(command)
    for arg in args:
        assert arg.split("=", 1)[0] in known, f"{arg} is not an option of lsmigrate {command}"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/label-studio/data"]["readOnly"] is True
    state_arg = next(a for a in args if a.startswith("--state="))
    assert state_arg.split("=", 1)[1].startswith("/state/")
    names = {e["name"] for e in container["env"]}
    assert names == {"STORAGE_AWS_ACCESS_KEY_ID", "STORAGE_AWS_SECRET_ACCESS_KEY"}
    assert all("secretKeyRef" in e["valueFrom"] for e in container["env"])


def test_dockerfile_installs_the_package_and_runs_the_cli():
    text = (ROOT / "Dockerfile").read_text()
    assert "pip install" in text and 'ENTRYPOINT ["lsmigrate"]' in text
    for line in text.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
