"""The wheel's build step that pyproject.toml cannot say: assemble the Ansible collection.

The wheel carries ansible/ (roles, playbooks, galaxy.yml) and system/ (the target tier) as the
collection mcp_linux_infra.target under site-packages/ansible_collections/, where the
installed ansible-core finds it. Both trees have one copy in git; this copies them into the
build directory only, and the role finds system/ there (its mcp_infra_source_dir default).
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

COLLECTION = Path("ansible_collections/mcp_linux_infra/target")
SKIP = shutil.ignore_patterns("__pycache__", "*.py[cod]", "lab.ini", ".ansible-lint", ".ansible")


def assemble_collection(repo: Path, dest: Path) -> Path:
    """The collection tree at dest: ansible/ (galaxy.yml, roles, playbooks) and system/."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(repo / "ansible", dest, ignore=SKIP)
    shutil.copytree(repo / "system", dest / "system", ignore=SKIP)
    return dest


class BuildWithCollection(build_py):
    def run(self):
        super().run()
        assemble_collection(Path(__file__).resolve().parent, Path(self.build_lib) / COLLECTION)


if __name__ == "__main__":
    setup(cmdclass={"build_py": BuildWithCollection})
