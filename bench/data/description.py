"""What a dataset description (``datasets/<name>.toml``) says, as a record.

Its own module so that both the formats (which interpret a description) and the discovery of
descriptions (which checks the format a description names) can use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DatasetDescription:
    """One dataset or domain, as read from its TOML file."""

    name: str
    format: str
    source: Path
    suite: str = "default"
    title: str = ""
    control_for: str | None = None  # a bias-free twin of this dataset, trained on as a sanity check
    order: int = 100  # position in listings and plans (then the name)
    image_size: int | None = None  # cache at this size whatever the run's data.image_size (real datasets)
    options: dict[str, Any] = field(default_factory=dict)  # the format's own keys

    @property
    def is_control(self) -> bool:
        return self.control_for is not None
