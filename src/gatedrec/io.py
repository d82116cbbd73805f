"""Atomic file writes: a reader never sees a half-written file, and a crash keeps the old one."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp_name)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes it private; the file gets a normal file's mode
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def replace_folder(built: Path, target: Path) -> None:
    """Swap the finished folder ``built`` in for ``target``; an older ``target`` is removed only once the new one
    is in place."""
    if not target.exists():
        built.rename(target)
        return
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    target.rename(old)
    built.rename(target)
    shutil.rmtree(old)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_npy(path: str | Path, array) -> None:
    """np.save to exactly ``path`` (np.save would append .npy to a temporary name)."""
    with open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


def write_npy(path: str | Path, array) -> None:
    write_atomic(path, lambda tmp: save_npy(tmp, array))


def write_text_atomic(path: str | Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_yaml(path: str | Path, data: Any) -> None:
    write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))


def read_yaml(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)
