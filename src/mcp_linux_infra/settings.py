"""Settings from the environment (prefix LINUX_MCP_) and `.env`; every field is in .env.example."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINUX_MCP_", env_file=".env", extra="ignore")

    keys_dir: Path = Field(Path("keys"), description="Client and operator key pairs")
    lab_dir: Path = Field(Path("lab"), description="Lab state: bootstrap key, known_hosts, targets")
    lab_cache_dir: Path = Field(
        Path("/var/cache/mcp-linux-infra"), description="Cached lab images (built once)"
    )
    lab_inventory: Path = Field(
        Path("ansible/inventory/lab.ini"), description="Ansible inventory written by `lab up`"
    )
    lab_name_prefix: str = Field("lab", pattern=r"^[a-z][a-z0-9]{0,15}$")
    lab_port_base: int = Field(2201, ge=1024, le=65000, description="sshd port of the first target")
    lab_mirror: str = Field("http://deb.debian.org/debian", description="Debian mirror for the image")
    lab_boot_timeout: float = Field(180.0, gt=0, description="Seconds to wait for targets to boot")
