"""Regenerate the shipped JSON Schema from the state module (one definition of the format).

.venv/bin/python scripts/gen_schema.py
"""

import json
from pathlib import Path

from binance_funding_ws.state import json_schema

TARGET = Path(__file__).resolve().parent.parent / "daemon/binance_funding_ws/state.schema.json"

if __name__ == "__main__":
    TARGET.write_text(json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {TARGET}")
