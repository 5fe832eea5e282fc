"""The import-linter contracts (pyproject.toml) that must name the parts of the core do name all of
them, so that a part added later is not silently outside a contract. `make lint` runs the contracts."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# Outside the layers: small modules any layer may use, the API contracts (a contract of their own),
# and the client factory (the SDK clients that bootstrap hands to the adapters).
UNLAYERED = {
    "shared.archives",
    "shared.clients",
    "shared.clock",
    "shared.config",
    "shared.contracts",
    "shared.errors",
    "shared.faults",
    "shared.logs",
    "shared.merges",
    "shared.streams",
}


def contract(kind: str, **fields: Any) -> dict[str, Any]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    matches = [c for c in config["contracts"] if c["type"] == kind and all(c.get(k) == v for k, v in fields.items())]
    assert len(matches) == 1, f"one {kind} contract with {fields}"
    return matches[0]


def core_parts() -> set[str]:
    shared = ROOT / "shared"
    modules = {f"shared.{path.stem}" for path in shared.glob("*.py") if path.stem != "__init__"}
    packages = {f"shared.{path.parent.name}" for path in shared.glob("*/__init__.py")}
    return modules | packages


def test_the_core_has_the_parts_this_test_knows() -> None:
    assert {"shared.domain", "shared.adapters", "shared.backups", "shared.contracts", "shared.errors"} <= core_parts()


def test_the_api_contracts_are_forbidden_every_other_part_of_the_core() -> None:
    forbidden = contract("forbidden", source_modules=["shared.contracts"])["forbidden_modules"]
    assert sorted(forbidden) == sorted(core_parts() - {"shared.contracts", "shared.domain", "shared.errors"})


def test_every_part_of_the_core_is_in_a_layer_or_known_to_stand_outside() -> None:
    layers = contract("layers")["layers"]
    layered = {name.strip() for layer in layers for name in layer.replace("|", ":").split(":")}
    parts = core_parts()
    assert parts - layered - UNLAYERED == set(), "put the new part in a layer of the layers contract"
    assert layered & UNLAYERED == set()
    assert parts >= UNLAYERED
