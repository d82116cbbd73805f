"""Run configuration: model name and parameters, training settings, data location; YAML in and out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from gatedrec.errors import GatedRecError
from gatedrec.io import read_yaml, write_yaml
from gatedrec.models import default_params
from gatedrec.settings import check_setting


@dataclass
class TrainConfig:
    epochs: int = 1000
    batch_size: int = 2048
    learning_rate: float = 1e-3
    patience: int = 20
    eval_every: int = 1
    seed: int = 1
    mask_valid: bool = False
    device: str = "cpu"
    threads: int = 0


@dataclass
class DataConfig:
    path: str = ""
    inter: str | None = None
    modalities: dict[str, str] | None = None
    missing: str = "mask"
    split: str | None = None


@dataclass
class RunConfig:
    model: str
    params: dict
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    @classmethod
    def for_model(cls, model: str, **train_settings) -> "RunConfig":
        return cls(model=model, params=default_params(model), train=TrainConfig(**train_settings))

    def to_dict(self) -> dict:
        return {"model": self.model, "params": dict(self.params), "train": asdict(self.train),
                "data": asdict(self.data)}

    @classmethod
    def from_dict(cls, raw: dict, source: str = "config") -> "RunConfig":
        try:
            config = cls.for_model(raw["model"])
            config.data = DataConfig(**raw.get("data", {}))
        except (KeyError, TypeError) as error:
            raise GatedRecError(f"{source}: not a gatedrec run configuration ({error})") from None
        overrides = {**raw.get("params", {}), **raw.get("train", {})}
        config.apply({key: value for key, value in overrides.items()})
        return config

    def save(self, path: str | Path) -> None:
        write_yaml(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        return cls.from_dict(read_yaml(path), str(path))

    def apply(self, overrides: dict) -> None:
        """Set model parameters or training settings by key, checking names, types and ranges."""
        train_keys = {f.name: f for f in fields(TrainConfig)}
        for key, value in overrides.items():
            if key in self.params:
                self.params[key] = _coerce(key, value, self.params[key])
                check_setting(key, self.params[key])
            elif key in train_keys:
                setattr(self.train, key, _coerce(key, value, getattr(self.train, key)))
                check_setting(key, getattr(self.train, key))
            else:
                known = ", ".join(sorted(self.params) + sorted(train_keys))
                raise GatedRecError(f"unknown config key '{key}' for model '{self.model}'; known keys: {known}")

    def apply_assignments(self, assignments: list[str]) -> None:
        """Apply ``key=value`` strings (the CLI's --set); values are parsed as YAML scalars."""
        self.apply(dict(parse_assignment(text) for text in assignments))


def parse_assignment(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise GatedRecError(f"--set '{text}' is not of the form key=value")
    return key.strip(), yaml.safe_load(value) if value.strip() else ""


def _coerce(key: str, value, default):
    """Give ``value`` the type of ``default``; ints are accepted for floats, numbers written as text
    (YAML reads '1e-3' as a string) are parsed, nothing else is converted."""
    if isinstance(value, str) and isinstance(default, float) and not isinstance(default, bool):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif default is None or isinstance(value, type(default)):
        return value
    raise GatedRecError(f"config key '{key}' expects a {type(default).__name__} (like {default!r}), got {value!r}")
