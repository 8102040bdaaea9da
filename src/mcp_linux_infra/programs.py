"""Finding the external programs we drive, with the Debian package that provides each."""

import shutil

from mcp_linux_infra.errors import UserError

PACKAGES = {
    "ssh-keygen": "openssh-client",
    "ssh": "openssh-client",
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "systemctl": "systemd",
}


def require(*names: str) -> dict[str, str]:
    """Absolute paths of the programs; one error naming every missing one and its package."""
    found = {name: shutil.which(name) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        pkgs = sorted({PACKAGES.get(name, name) for name in missing})
        raise UserError(
            f"missing program(s): {', '.join(missing)}",
            hint=f"install the Debian package(s): apt-get install {' '.join(pkgs)}",
        )
    return found  # type: ignore[return-value]
