"""Production refuses unsafe defaults: API and worker exit at start naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import SettingsError, check_production, is_production, load_settings, production_problems

ROOT = Path(__file__).resolve().parents[2]
SAFE_VOYAGER = {"host": "voyager.observatory.lan", "mac_key": "k", "mac_words": "a,b,c,d"}
SAFE_STRIPE = {"api_key": "sk_live_abc", "webhook_secret": "whsec_real"}
SAFE_WEB = {"session_secret": "a-long-random-cookie-secret"}
SAFE_MAIL = {"host": "smtp.example.org"}


def _prod_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STELLAR_")}
    env.update({"STELLAR_ENV": "prod", **extra})
    return env


def test_prod_with_the_default_webhook_secret_names_it():
    problems = production_problems(load_settings(env="prod", voyager=SAFE_VOYAGER, web=SAFE_WEB, mail=SAFE_MAIL,
                                                 stripe={"api_key": "sk_live_abc"}))
    assert [p.split(":")[0] for p in problems] == ["STELLAR_STRIPE__WEBHOOK_SECRET"]
    with pytest.raises(SettingsError, match="STELLAR_STRIPE__WEBHOOK_SECRET"):
        check_production(load_settings(env="prod", voyager=SAFE_VOYAGER, web=SAFE_WEB, mail=SAFE_MAIL,
                                       stripe={"api_key": "sk_live_abc"}))


def test_a_live_stripe_key_is_production_even_in_dev():
    s = load_settings(env="dev", stripe={"api_key": "sk_live_abc"})
    assert is_production(s)
    names = {p.split(":")[0] for p in production_problems(s)}
    assert names == {"STELLAR_STRIPE__WEBHOOK_SECRET", "STELLAR_VOYAGER__HOST", "STELLAR_VOYAGER__MAC_KEY",
                     "STELLAR_VOYAGER__MAC_WORDS", "STELLAR_WEB__SESSION_SECRET", "STELLAR_MAIL__HOST"}


def test_a_stripe_test_mode_key_needs_the_real_webhook_secret_but_not_a_telescope():
    s = load_settings(env="dev", stripe={"api_key": "sk_test_51RealTestMode"})
    assert not is_production(s)
    assert [p.split(":")[0] for p in production_problems(s)] == ["STELLAR_STRIPE__WEBHOOK_SECRET"]
    assert production_problems(load_settings(env="dev", stripe={"api_key": "sk_test_51RealTestMode",
                                                                "webhook_secret": "whsec_from_stripe"})) == []


def test_voyager_user_without_password_is_refused_and_a_complete_config_passes():
    s = load_settings(env="prod", stripe=SAFE_STRIPE, web=SAFE_WEB, mail=SAFE_MAIL,
                      voyager={**SAFE_VOYAGER, "username": "stellar"})
    assert [p.split(":")[0] for p in production_problems(s)] == ["STELLAR_VOYAGER__PASSWORD"]
    check_production(load_settings(env="prod", stripe=SAFE_STRIPE, web=SAFE_WEB, voyager=SAFE_VOYAGER,
                                   mail=SAFE_MAIL))


def test_prod_without_a_web_session_secret_names_it():
    """A random per-process cookie secret would sign every customer out at each restart and break
    sign-in across API processes."""
    s = load_settings(env="prod", stripe=SAFE_STRIPE, voyager=SAFE_VOYAGER, mail=SAFE_MAIL)
    assert [p.split(":")[0] for p in production_problems(s)] == ["STELLAR_WEB__SESSION_SECRET"]
    with pytest.raises(SettingsError, match="STELLAR_WEB__SESSION_SECRET"):
        check_production(s)


def test_prod_without_an_smtp_host_names_it():
    """Without an SMTP server no password-reset link or order report would ever leave the outbox."""
    s = load_settings(env="prod", stripe=SAFE_STRIPE, voyager=SAFE_VOYAGER, web=SAFE_WEB)
    assert [p.split(":")[0] for p in production_problems(s)] == ["STELLAR_MAIL__HOST"]
    with pytest.raises(SettingsError, match="STELLAR_MAIL__HOST"):
        check_production(s)


def test_dev_and_test_with_local_values_start():
    assert production_problems(load_settings(env="dev")) == []
    assert production_problems(load_settings(env="test", stripe={"api_base": "http://127.0.0.1:8420",
                                                                 "api_key": "sk_test_other"})) == []


def test_api_process_exits_at_start_naming_the_webhook_secret(tmp_path):
    env = _prod_env(STELLAR_STRIPE__API_KEY="sk_live_abc", STELLAR_VOYAGER__HOST="voyager.lan",
                    STELLAR_VOYAGER__MAC_KEY="k", STELLAR_VOYAGER__MAC_WORDS="a,b,c,d")
    r = subprocess.run([sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--port", "1"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "STELLAR_STRIPE__WEBHOOK_SECRET" in r.stdout + r.stderr


def test_worker_process_exits_at_start_naming_the_variables(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "worker.py")], cwd=tmp_path, env=_prod_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    for name in ("STELLAR_STRIPE__WEBHOOK_SECRET", "STELLAR_STRIPE__API_KEY", "STELLAR_VOYAGER__MAC_KEY"):
        assert name in r.stderr
    assert "Traceback" not in r.stderr
