"""Files the platform renders for its peers (dnsmasq, the bastions' sshd)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def file_replace(path: Path, text: str) -> bool:
    """Atomically replace `path` with `text`, mode 0644 (peers may read it after dropping
    root); False, and nothing written, when it already says that."""
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True
