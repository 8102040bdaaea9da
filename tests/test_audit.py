"""The server's and the CLI's audit (audit.py): JSON lines, secrets redacted."""

import io
import json

from mcp_linux_infra.audit import Audit, redact


def test_redaction_by_key_and_by_shape():
    event = redact({"token": "abc", "args": {"command": "mysql -psecret --password hunter2",
                                             "header": "Authorization: Bearer eyJhbGciOi.x.y",
                                             "key": "-----BEGIN OPENSSH PRIVATE KEY-----\n"
                                                    "b3BlbnNzaC1rZXk\n-----END OPENSSH "
                                                    "PRIVATE KEY-----"}})
    text = json.dumps(event)
    for secret in ("abc", "hunter2", "eyJhbGciOi", "b3BlbnNzaC1rZXk"):
        assert secret not in text


def test_audit_writes_json_lines_to_file_and_stream(tmp_path):
    stream = io.StringIO()
    audit = Audit(tmp_path / "state" / "audit.jsonl", stream)
    audit.info("tool_call", trace="t1", arguments={"password": "x"})
    audit.close()
    line = (tmp_path / "state" / "audit.jsonl").read_text()
    assert line == stream.getvalue()
    record = json.loads(line)
    assert record["trace"] == "t1" and record["arguments"]["password"] == "[REDACTED]"
    assert (tmp_path / "state" / "audit.jsonl").stat().st_mode & 0o777 == 0o600
