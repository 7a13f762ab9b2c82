"""Files the package carries: the JSON Schemas, the example channels file, the simulator inventory.

They live in the repository's top-level `schemas/` and `config/` folders, where operators read
them. `bridge/_resources/` links to both folders, so an editable install reads the checkout and a
wheel carries copies: either way `importlib.resources` finds them, with no checkout around.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path


def resource_path(*parts: str) -> Path:
    """A packaged file or folder as a real path (wheels are installed unpacked, never zipped)."""
    return Path(str(files("bridge").joinpath("_resources", *parts))).resolve()


@cache
def schemas_dir() -> Path:
    """Resolved once per process: every webhook's schema check asks for it."""
    return resource_path("schemas")


def example_channels_file() -> Path:
    """The commented example channels file; it also drives `fba-bridge demo`."""
    return resource_path("config", "channels.yaml")


def example_simulator_file() -> Path:
    """The simulator's demo inventory, matching the example channels file's SKUs."""
    return resource_path("config", "simulator.yaml")
