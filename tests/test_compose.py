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
