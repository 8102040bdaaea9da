"""The lab's record of what it started: written atomically, read back by status and down."""

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Target:
    name: str
    port: int
    pid: int
    started: int  # kernel start time of the nspawn process, see process.start_time
    upper: str
    log: str
    behind: str = ""  # the lab target in whose network namespace its SSH port is bound


@dataclass
class LabState:
    image: str = ""
    targets: dict[str, Target] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "LabState":
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text())
        return cls(image=raw.get("image", ""),
                   targets={n: Target(**t) for n, t in raw.get("targets", {}).items()})

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"image": self.image,
                                   "targets": {n: asdict(t) for n, t in self.targets.items()}},
                                  indent=1))
        os.replace(tmp, path)
