import stat
import subprocess

import pytest

from mcp_linux_infra.cli import main
from mcp_linux_infra.errors import UserError
from mcp_linux_infra.keys import KEYS, init_keys

NAMES = [k.name for k in KEYS]


def test_creates_three_ed25519_pairs_private_0600_with_purpose_comment(tmp_path):
    results = init_keys(tmp_path / "keys")
    assert [r.name for r in results] == NAMES == ["mcp-reader", "pra-exec", "operator"]
    assert {r.status for r in results} == {"created"}
    for spec in KEYS:
        key = tmp_path / "keys" / f"{spec.name}.key"
        pub = key.with_name(key.name + ".pub")
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        kind, _, comment = pub.read_text().strip().split(" ", 2)
        assert kind == "ssh-ed25519" and comment == spec.comment
        derived = subprocess.run(["ssh-keygen", "-y", "-f", str(key)], capture_output=True,
                                 text=True, check=True).stdout.split()[1]
        assert derived == pub.read_text().split()[1]
    assert len({r.fingerprint for r in results}) == 3
    assert not list((tmp_path / "keys").glob(".*")), "no temporary files left behind"


def test_never_overwrites_and_says_which_exist(tmp_path):
    first = {r.name: r.fingerprint for r in init_keys(tmp_path)}
    (tmp_path / "operator.key").unlink()
    (tmp_path / "operator.key.pub").unlink()
    again = init_keys(tmp_path)
    assert {r.name: r.status for r in again} == {
        "mcp-reader": "kept", "pra-exec": "kept", "operator": "created"}
    assert again[0].fingerprint == first["mcp-reader"]
    assert again[2].fingerprint != first["operator"]


def test_force_replaces_and_keeps_the_old_key_as_retired(tmp_path):
    old = {r.name: r.fingerprint for r in init_keys(tmp_path)}
    new = init_keys(tmp_path, force=True)
    assert {r.status for r in new} == {"replaced"}
    assert all(r.fingerprint != old[r.name] for r in new)
    retired = sorted(p.name.split(".retired-")[0] for p in tmp_path.glob("*.retired-*"))
    assert retired == sorted([f"{n}.key" for n in NAMES] + [f"{n}.key.pub" for n in NAMES])


def test_missing_public_half_is_derived_not_regenerated(tmp_path):
    first = {r.name: r.fingerprint for r in init_keys(tmp_path)}
    (tmp_path / "pra-exec.key.pub").unlink()
    again = {r.name: (r.status, r.fingerprint) for r in init_keys(tmp_path)}
    assert again["pra-exec"] == ("kept", first["pra-exec"])


def test_stray_public_key_without_private_is_refused_and_nothing_changes(tmp_path):
    (tmp_path / "operator.key.pub").write_text("ssh-ed25519 AAAA stray\n")
    with pytest.raises(UserError, match="without its private key"):
        init_keys(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["operator.key.pub"]


def test_missing_ssh_keygen_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError) as err:
        init_keys(tmp_path / "keys")
    assert "ssh-keygen" in str(err.value) and "openssh-client" in err.value.hint
    assert not (tmp_path / "keys").exists()


def test_cli_keys_init_reports_and_exits_zero(tmp_path, capsys):
    assert main(["keys", "init", "--dir", str(tmp_path / "k")]) == 0
    assert main(["keys", "init", "--dir", str(tmp_path / "k")]) == 0
    err = capsys.readouterr().err
    assert "kept existing key(s): mcp-reader, pra-exec, operator" in err
