"""The operator's signature: `ssh-keygen -Y sign`, never our own crypto.

Only the operator CLI imports this module; the MCP server never does, and never reads the
operator key's path. ssh-keygen finds the key itself: a passphrase is asked on the
terminal by ssh-keygen (or through SSH_ASKPASS), and with `-f KEY.pub` (or any key that
ssh-agent holds) the agent signs, so the private key need not be on this machine at all.
"""

import subprocess
import tempfile
from pathlib import Path

from mcp_linux_infra.approvals.document import NAMESPACE
from mcp_linux_infra.errors import UserError
from mcp_linux_infra.programs import require


def sign(text: str, key: Path, namespace: str = NAMESPACE) -> str:
    """The armored signature of `text` (UTF-8) by `key` (private key, or .pub with an agent)."""
    if not key.exists():
        raise UserError(f"operator key {key} does not exist",
                        hint="run: mcp-linux-infra keys init, or set LINUX_MCP_OPERATOR_KEY")
    ssh_keygen = require("ssh-keygen")["ssh-keygen"]
    with tempfile.TemporaryDirectory(prefix="mcp-approval-") as tmp:
        document = Path(tmp) / "document.json"
        document.write_bytes(text.encode("utf-8"))
        done = subprocess.run([ssh_keygen, "-Y", "sign", "-f", str(key), "-n", namespace,
                               str(document)], check=False, capture_output=True,
                              text=True, timeout=300)
        signature = document.with_name(document.name + ".sig")
        if done.returncode != 0 or not signature.exists():
            raise UserError(f"ssh-keygen could not sign with {key}: "
                            f"{done.stderr.strip()[-500:] or f'exit {done.returncode}'}",
                            hint="a passphrase-protected key needs a terminal (or SSH_ASKPASS) "
                                 "or ssh-agent; with an agent, point LINUX_MCP_OPERATOR_KEY at "
                                 "the .pub file")
        return signature.read_text()
