"""The state-file module: encoding, the reader's errors and limits, the JSON Schema."""

from __future__ import annotations

import json
import os
from importlib import resources

import jsonschema
import pytest

from binance_funding_ws.state import (
    MAX_STATE_BYTES,
    SCHEMA_VERSION,
    StateFileError,
    decode_state,
    encode_state,
    json_schema,
    read_state,
)
from daemon_helpers import run_cli
from factories import DOCS_MARK, document, fresh_doc


def shipped_schema() -> dict:
    text = resources.files("binance_funding_ws").joinpath("state.schema.json").read_text()
    return json.loads(text)


def test_round_trip_keeps_every_value():
    original = document()
    assert decode_state(encode_state(original)) == original


def test_encoded_document_validates_against_the_shipped_schema():
    data = json.loads(encode_state(document()))
    jsonschema.validate(data, shipped_schema())
    assert data["schema_version"] == SCHEMA_VERSION
    assert set(data) == {
        "schema_version",
        "updated_at",
        "connection_status",
        "funding",
        "tickers",
        "missing",
    }


def test_shipped_schema_is_the_generated_one():
    # Regenerate with scripts/gen_schema.py (README, "The state file"); this test fails
    # when the shipped file and the code drift apart.
    assert shipped_schema() == json.loads(json.dumps(json_schema()))


def test_schema_rejects_a_float_price():
    data = json.loads(encode_state(document()))
    data["funding"]["AUSDT"]["mark_price"] = 1.5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, shipped_schema())


def test_read_state_missing(tmp_path):
    with pytest.raises(StateFileError) as info:
        read_state(tmp_path / "nope.json")
    assert info.value.reason == "missing" and "nope.json" in str(info.value)


def test_read_state_directory(tmp_path):
    with pytest.raises(StateFileError) as info:
        read_state(tmp_path)
    assert info.value.reason == "unreadable"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_read_state_permission_denied(tmp_path):
    path = tmp_path / "s.json"
    path.write_bytes(encode_state(document()))
    path.chmod(0)
    with pytest.raises(StateFileError) as info:
        read_state(path)
    assert info.value.reason == "unreadable"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"   \n",
        b'{"schema_version": 1, "updated_at": 5, "connection_status": {',  # torn write
        b"[1, 2]",
        b'{"schema_version": 1}',
        b"\x00\x00\x00",
    ],
)
def test_read_state_corrupt_is_one_line(tmp_path, content):
    path = tmp_path / "s.json"
    path.write_bytes(content)
    with pytest.raises(StateFileError) as info:
        read_state(path)
    assert info.value.reason == "corrupt"
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_read_state_future_schema_is_unsupported(tmp_path):
    data = json.loads(encode_state(document()))
    data["schema_version"] = SCHEMA_VERSION + 1
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    with pytest.raises(StateFileError) as info:
        read_state(path)
    assert info.value.reason == "unsupported" and "upgrade this reader" in str(info.value)


def test_readers_ignore_fields_added_later(tmp_path):
    data = json.loads(encode_state(document()))
    data["new_section"] = {"x": 1}
    data["funding"]["AUSDT"]["new_field"] = "y"
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    assert read_state(path).funding["AUSDT"].mark_price == DOCS_MARK["p"]


def test_decimal_strings_survive_unchanged():
    doc = document(funding=[{**DOCS_MARK, "r": "0.00000000", "p": "0.00000010"}])
    data = json.loads(encode_state(doc))
    entry = data["funding"]["BTCUSDT"]
    assert entry["funding_rate"] == "0.00000000" and entry["mark_price"] == "0.00000010"


# -- every read has a limit and never blocks ------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "symlink"])
def test_read_state_refuses_what_is_not_a_regular_file_without_blocking(tmp_path, kind):
    path = tmp_path / "state.json"
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would block for ever without O_NONBLOCK
    elif kind == "device":
        path = "/dev/zero"  # reading it would never end
    elif kind == "directory":
        path.mkdir()
    else:
        target = tmp_path / "elsewhere.json"
        target.write_bytes(encode_state(fresh_doc()))
        path.symlink_to(target)
    with pytest.raises(StateFileError) as raised:
        read_state(path)
    assert raised.value.reason == "unreadable"
    result = run_cli("status", "--state-file", str(path), "--json")
    assert result.returncode == 2 and json.loads(result.stdout)["verdict"] == "UNREADABLE"


def test_read_state_refuses_a_file_over_its_cap(tmp_path):
    path = tmp_path / "state.json"
    with path.open("wb") as handle:
        handle.truncate(MAX_STATE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(StateFileError, match="larger than 64 MiB"):
        read_state(path)


def test_a_deeply_nested_file_is_corrupt_not_a_recursion_error(tmp_path):
    path = tmp_path / "state.json"
    path.write_bytes(b'{"schema_version": 1, "x": ' + b"[" * 1000 + b"]" * 1000 + b"}")
    with pytest.raises(StateFileError) as raised:
        read_state(path)
    assert raised.value.reason == "corrupt"
    result = run_cli("status", "--state-file", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
