"""Write .env.example from core.settings.Settings (tests/test_foundation.py checks it is current)."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import BaseModel, SecretStr

from core.settings import Settings

HEADER = """\
# Stellar configuration: every variable, with its default. Copy to .env and uncomment what you change.
# Prefix STELLAR_, groups nested with __ (STELLAR_VOYAGER__MAC_WORDS). Secrets: never commit real ones.
# Empty DATABASE__URL / TEMPORAL__ADDRESS / STRIPE__API_BASE / VOYAGER__HOST: `stellar dev` starts its own.
"""


def render() -> str:
    out = [HEADER]

    def walk(model_cls: type[BaseModel], prefix: str) -> None:
        for name, f in model_cls.model_fields.items():
            ann = f.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                doc = (ann.__doc__ or "").strip().splitlines()[0] if ann.__doc__ else ""
                out.append(f"\n# === {name} === {doc}".rstrip())
                walk(ann, prefix + name.upper() + "__")
                continue
            default = f.default
            if isinstance(default, SecretStr):
                default = default.get_secret_value()
            if default is None:
                default = ""
            if f.description:
                out.append(f"# {f.description}")
            out.append(f"# {prefix}{name.upper()}={default}")

    walk(Settings, "STELLAR_")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / ".env.example"
    target.write_text(render())
    print(f"wrote {target}", file=sys.stderr)
