"""console.js's own rules, run by node against the server's: the SSHSIG blob it computes from
the shown document is the server's `signed_data`, and the characters it refuses to sign are
those `str.isprintable` rejects. (The real browser flow: tests/console/browser/.)"""

import json
import shutil
import subprocess
import sys

import pytest
from sshsig_support import signed_data

from mcp_linux_infra.console.app import STATIC

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

RUNNER = """
const vm = require("vm");
const fs = require("fs");
const context = vm.createContext({document: {addEventListener() {}}, TextEncoder, crypto,
                                  btoa, atob, Uint8Array, DataView});
vm.runInContext(fs.readFileSync(process.argv[1], "utf8"), context);
const input = JSON.parse(fs.readFileSync(0, "utf8"));
(async () => {
  const blobs = [];
  for (const text of input.documents) {
    const blob = await vm.runInContext("signedData", context)(
      new TextEncoder().encode(text), "mcp-linux-infra-approval");
    blobs.push(Buffer.from(blob).toString("hex"));
  }
  const unprintable = vm.runInContext("UNPRINTABLE", context);
  const refused = input.chars.map((c) => unprintable.test(c));
  const roundtrip = input.documents.map((t) => {
    const b64url = vm.runInContext("b64url", context);
    const unb64url = vm.runInContext("unb64url", context);
    const bytes = new TextEncoder().encode(t);
    return Buffer.from(unb64url(b64url(bytes))).equals(Buffer.from(bytes));
  });
  process.stdout.write(JSON.stringify({blobs, refused, roundtrip}));
})();
"""

DOCUMENTS = ['{"approvals":1,"id":"p1","steps":[],"v":2}', "é ü ∑ 𝔘", "", "x" * 5000]
CHARS = ([chr(c) for c in range(0x250)]
         + [chr(c) for c in (0x200B, 0x200E, 0x202E, 0x2066, 0x2028, 0x2029, 0x3000, 0xFEFF,
                             0xE000, 0x1F600, 0xE0041, 0x10FFFF, 0x0378)])


def test_console_js_builds_the_servers_blob_and_refuses_what_the_server_would():
    done = subprocess.run([NODE, "-e", RUNNER, "--", str(STATIC / "console.js")],
                          input=json.dumps({"documents": DOCUMENTS, "chars": CHARS}),
                          capture_output=True, text=True, timeout=120, check=True)
    answer = json.loads(done.stdout)
    assert answer["blobs"] == [signed_data(d.encode()).hex() for d in DOCUMENTS]
    assert answer["roundtrip"] == [True] * len(DOCUMENTS)
    differ = [f"U+{ord(c):04X}" for c, js in zip(CHARS, answer["refused"], strict=True)
              if js is c.isprintable()]
    assert differ == [], f"node {sys.version_info[:2]}: JS and Python disagree on {differ}"
