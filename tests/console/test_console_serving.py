"""How the console is served: loopback by default, TLS from a certificate and key, never
plaintext on another address unless explicitly allowed; X-Forwarded-* only from proxies."""

import datetime
import ipaddress
import os
import ssl
import subprocess

import httpx2
import pytest
from console_support import ConsoleServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from net_support import free_port, wait_listening
from paths_support import CLI

from mcp_linux_infra.cli import main
from mcp_linux_infra.console.security import Client, check_bind, client_of
from mcp_linux_infra.errors import UserError
from mcp_linux_infra.settings import Settings


@pytest.mark.parametrize("bind", ["0.0.0.0", "192.0.2.10", "::"])
def test_a_plaintext_non_loopback_bind_is_refused(bind, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LINUX_MCP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["console", "--bind", bind, "--port", "1"]) == 3
    err = capsys.readouterr().err
    assert "console_plaintext_bind" in err and "Traceback" not in err
    assert not (tmp_path / "state").exists()  # refused before anything was opened


def test_the_rp_id_is_the_origins_host_or_a_parent_and_never_an_ip(tmp_path, monkeypatch,
                                                                     capsys):
    origin = "https://approve.example.com"
    assert Settings(_env_file=None, console_origin=origin).console_rp_id == "approve.example.com"
    assert Settings(_env_file=None, console_origin=origin,
                    console_rp_id="example.com").console_rp_id == "example.com"
    for other in ("other.example.com", "ample.com", "192.0.2.1"):
        with pytest.raises(ValueError):
            Settings(_env_file=None, console_origin=origin, console_rp_id=other)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LINUX_MCP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LINUX_MCP_CONSOLE_ORIGIN", "http://127.0.0.1:8766")
    assert main(["console", "--port", "1"]) == 3
    assert "console_rp_id_is_ip" in capsys.readouterr().err
    monkeypatch.setenv("LINUX_MCP_CONSOLE_ORIGIN", origin)
    monkeypatch.setenv("LINUX_MCP_CONSOLE_RP_ID", "other.example.com")
    assert main(["console", "--port", "1"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: settings (") and "CONSOLE_RP_ID" in err and "Traceback" not in err


def test_the_bind_rule(tmp_path):
    plain = Settings(_env_file=None)
    for bind in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        check_bind(plain, bind)
    with pytest.raises(UserError):
        check_bind(plain, "10.0.0.1")
    check_bind(Settings(_env_file=None, console_allow_plaintext=True), "10.0.0.1")
    tls = Settings(_env_file=None, console_tls_cert=tmp_path / "c", console_tls_key=tmp_path / "k")
    check_bind(tls, "10.0.0.1")
    with pytest.raises(ValueError):
        Settings(_env_file=None, console_tls_cert=tmp_path / "c")


def test_forwarded_headers_count_only_from_trusted_proxies():
    headers = {"x-forwarded-for": "203.0.113.9, 198.51.100.7", "x-forwarded-proto": "https"}
    trusted = frozenset({"127.0.0.1"})
    assert client_of("127.0.0.1", headers, False, trusted) == Client("198.51.100.7", True)
    assert client_of("10.1.1.1", headers, False, trusted) == Client("10.1.1.1", False)
    assert client_of("127.0.0.1", {"x-forwarded-for": "junk"}, False, trusted) == \
        Client("127.0.0.1", False)


@pytest.mark.parametrize("trusted", [True, False])
def test_a_proxys_headers_over_http(tmp_path, monkeypatch, trusted):
    """Behind a trusted proxy: the client's own address is rate-limited and https from the
    proxy makes the cookie __Host- and Secure; from anyone else the headers change nothing."""
    monkeypatch.chdir(tmp_path)
    proxies = ["127.0.0.1"] if trusted else []
    server = ConsoleServer(tmp_path / "state", console_trusted_proxies=proxies)
    try:
        with server.client(headers={"X-Forwarded-Proto": "https"}) as browser:
            passkey, _ = browser.enroll("alice")
            cookie = browser.login(passkey).headers["set-cookie"]
            assert cookie.startswith("__Host-mcp-console=") is trusted
            assert ("Secure" in cookie) is trusted
            codes = {browser.post("/login/begin", headers={"X-Forwarded-For": f"192.0.2.{i}"}
                                  ).status_code for i in range(12)}
            assert (429 in codes) is not trusted
    finally:
        server.stop()


def _certificate(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "console.crt", tmp_path / "console.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_from_a_certificate_and_a_host_prefixed_secure_cookie(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cert, key = _certificate(tmp_path)
    server = ConsoleServer(tmp_path / "state", tls=(cert, key))
    try:
        context = ssl.create_default_context(cafile=str(cert))
        with server.client(verify=context) as browser:
            passkey, _ = browser.enroll("alice")
            done = browser.login(passkey)
            cookie = done.headers["set-cookie"]
            assert cookie.startswith("__Host-mcp-console=")
            assert "Secure" in cookie and "HttpOnly" in cookie and "Domain" not in cookie
            assert browser.get("/").status_code == 200
    finally:
        server.stop()


def test_the_console_command_serves_the_console(tmp_path):
    port = free_port()
    env = {**os.environ, "LINUX_MCP_STATE_DIR": str(tmp_path / "state"),
           "LINUX_MCP_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
           "LINUX_MCP_CONSOLE_ORIGIN": f"http://localhost:{port}"}
    proc = subprocess.Popen([CLI, "console", "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_listening(proc, "127.0.0.1", port)
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            page = client.get("/login")
        assert page.status_code == 200 and 'id="login"' in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert '"console_started"' in (tmp_path / "audit.jsonl").read_text()
