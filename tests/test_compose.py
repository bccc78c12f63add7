"""The production compose file validates against the Compose specification (offline schema)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_file_validates_against_the_compose_spec():
    checker = Path(sys.executable).parent / "check-jsonschema"
    r = subprocess.run([str(checker), "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_compose_runs_migration_before_api_and_keeps_worker_scalable():
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = spec["services"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["stellar", "db", "upgrade"]
    assert "ports" not in services["worker"] and "container_name" not in services["worker"]
    assert services["voyager-sim"]["profiles"] == ["simulator"]
    assert "healthcheck" in services["postgres"] and "pgdata" in spec["volumes"]
    assert services["temporal"]["image"].startswith("temporalio/auto-setup")


def test_temporal_ui_is_loopback_only_and_read_only_by_default():
    ui = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["temporal-ui"]
    assert all(str(p).startswith("127.0.0.1:") for p in ui["ports"]), ui["ports"]
    assert ui["environment"]["TEMPORAL_DISABLE_WRITE_ACTIONS"] == "${TEMPORAL_UI_WRITE_ACTIONS_DISABLED:-true}"


def test_api_health_check_uses_readiness_not_voyager():
    api = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["api"]
    assert "/health/ready" in " ".join(api["healthcheck"]["test"])


def test_frames_go_to_the_minio_service_from_every_stellar_service():
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = spec["services"]
    tag = services["minio"]["image"].split(":", 1)[1]
    assert tag.startswith("RELEASE.") and tag != "latest"  # pinned
    assert "frames" in spec["volumes"]
    for name in ("api", "worker"):
        env = services[name]["environment"]
        assert env["STELLAR_IMAGE_STORE__URL"].startswith("s3://stellar-frames")
        assert env["STELLAR_IMAGE_STORE__ENDPOINT"] == "http://minio:9000"
        assert services[name]["depends_on"]["minio-setup"]["condition"] == "service_completed_successfully"
    assert "stellar-frames" in " ".join(services["minio-setup"]["command"])
