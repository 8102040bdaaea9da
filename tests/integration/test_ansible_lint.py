"""ansible-lint with the production profile passes on ansible/, the collection's directory,
run there as its README says (its ansible.cfg gives the roles' path; no lab needed)."""
import subprocess

from paths_support import REPO


def test_ansible_lint_production_profile():
    out = subprocess.run([str(REPO / ".venv/bin/ansible-lint"), "--profile", "production",
                          "--nocolor", "."], check=False, cwd=REPO / "ansible",
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert "Profile 'production' was required, and it passed" in out.stderr
