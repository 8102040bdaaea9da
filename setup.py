"""The wheel's build step that pyproject.toml cannot say: assemble the Ansible collection.

The wheel carries ansible/ (roles, playbooks, galaxy.yml) and system/ (the target tier) as the
collection mcp_linux_infra.target under site-packages/ansible_collections/, where the
installed ansible-core finds it. Both trees have one copy in git; this copies them into the
build directory only (ansible/system is a symlink to ../system there).
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

COLLECTION = Path("ansible_collections/mcp_linux_infra/target")
# Left out: the lab's generated inventory, and the playbooks' roles symlink (a collection
# resolves its own roles).
SKIP = shutil.ignore_patterns("__pycache__", "*.py[cod]", "lab.ini", "roles")
TOP_SKIP = {"system", "playbooks"}


def assemble_collection(repo: Path, dest: Path) -> Path:
    """The collection tree at dest: ansible/ without the local-only files, plus system/."""
    if dest.exists():
        shutil.rmtree(dest)
    source = repo / "ansible"
    dest.mkdir(parents=True)
    for entry in sorted(source.iterdir()):
        if entry.name in TOP_SKIP:
            continue
        if entry.is_dir():
            shutil.copytree(entry, dest / entry.name, ignore=SKIP)
        else:
            shutil.copy2(entry, dest / entry.name)
    shutil.copytree(source / "playbooks", dest / "playbooks", ignore=SKIP)
    shutil.copytree(repo / "system", dest / "system", ignore=SKIP)
    return dest


class BuildWithCollection(build_py):
    def run(self):
        super().run()
        assemble_collection(Path(__file__).resolve().parent, Path(self.build_lib) / COLLECTION)


if __name__ == "__main__":
    setup(cmdclass={"build_py": BuildWithCollection})
