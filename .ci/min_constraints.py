"""Write pip constraints pinning every runtime dependency to its declared lower bound.

Used by `.ci/min-versions`: `>=X` (or `==X`, `~=X`) in `[project].dependencies` becomes `name==X`,
so the suite runs against the oldest versions the project claims to support. A dependency without
a lower bound is an error: "any version" is a claim nobody can test. The checked-in
`.ci/min-versions-extra.txt` (transitive pins the old versions need, one reason each) is appended.

Usage: python .ci/min_constraints.py [pyproject.toml] > constraints.txt
"""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

LOWER_BOUND_OPERATORS = (">=", "==", "~=")
EXTRA = Path(__file__).with_name("min-versions-extra.txt")


def lower_bound(requirement: Requirement) -> str:
    """The version named by the requirement's `>=`, `==` or `~=` clause."""
    bounds = [s.version for s in requirement.specifier if s.operator in LOWER_BOUND_OPERATORS]
    if len(bounds) != 1:
        raise SystemExit(
            f"min-versions: {requirement} must declare exactly one lower bound"
            f" ({', '.join(LOWER_BOUND_OPERATORS)}); found {len(bounds)}"
        )
    return bounds[0]


def constraints(pyproject: Path) -> list[str]:
    """One `name==lower-bound` line per runtime dependency that applies to this interpreter."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    lines = []
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        # Constraints may not carry extras: `uvicorn[standard]>=0.54` pins `uvicorn==0.54`.
        lines.append(f"{requirement.name}=={lower_bound(requirement)}")
    return lines


def main(argv: list[str]) -> None:
    pyproject = Path(argv[1]) if len(argv) > 1 else Path("pyproject.toml")
    print(f"# Declared lower bounds of [project].dependencies in {pyproject}")
    print("\n".join(constraints(pyproject)))
    print(f"# Transitive pins from {EXTRA.name}")
    print(EXTRA.read_text(encoding="utf-8").rstrip())


if __name__ == "__main__":
    main(sys.argv)
