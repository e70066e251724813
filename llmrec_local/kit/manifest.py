"""A kit's MANIFEST: the sha256 and size of every file, and the check that names each missing, extra or changed one.

Format (text, one file a line, sorted by path, paths relative to the kit with ``/``)::

    # llmrec_local kit manifest 1
    <sha256>  <size in bytes>  <path>

The MANIFEST does not list itself. Verification reads every byte (no digest cache: a kit is checked after it was
carried, when a silently changed file is exactly what we look for).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..hashing import file_sha256

MANIFEST = "MANIFEST"
HEADER = "# llmrec_local kit manifest 1"


@dataclass(frozen=True)
class Entry:
    """One MANIFEST line."""

    sha256: str
    size: int
    path: str


@dataclass(frozen=True)
class Finding:
    """One problem found by `verify_kit`: ``kind`` is "missing", "extra" or "changed"."""

    kind: str
    path: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}" + (f" ({self.detail})" if self.detail else "")


def kit_files(kit: Path) -> list[str]:
    """Every regular file under `kit` except the MANIFEST, as sorted relative posix paths.

    Raises:
        DataError: a symbolic link (a kit must be plain files to survive a copy to removable media).
    """
    found: list[str] = []
    for path in sorted(kit.rglob("*")):
        rel = path.relative_to(kit).as_posix()
        if path.is_symlink():
            raise DataError(f"{path} is a symbolic link; a kit holds plain files only (copy the target instead)")
        if path.is_file() and rel != MANIFEST:
            found.append(rel)
    return found


def write_manifest(kit: Path) -> list[Entry]:
    """Hash every file of `kit` and write ``kit/MANIFEST`` (last, so a kit without one is visibly unfinished)."""
    entries = [Entry(file_sha256(kit / rel), (kit / rel).stat().st_size, rel) for rel in kit_files(kit)]
    lines = [HEADER, *(f"{e.sha256}  {e.size}  {e.path}" for e in entries)]
    (kit / MANIFEST).write_text("\n".join(lines) + "\n")
    return entries


def read_manifest(kit: Path) -> list[Entry]:
    """Parse ``kit/MANIFEST``.

    Raises:
        DataError: no MANIFEST (not a kit, or packing did not finish) or a malformed line.
    """
    path = kit / MANIFEST
    if not path.is_file():
        raise DataError(f"{path} does not exist: {kit} is not a finished kit; pack it again with "
                        "`python -m llmrec_local.kit pack ...`")
    lines = path.read_text().splitlines()
    if not lines or lines[0].strip() != HEADER:
        raise DataError(f"{path}: first line is {lines[0]!r} if any, expected {HEADER!r}; not a kit manifest")
    entries: list[Entry] = []
    for number, line in enumerate(lines[1:], start=2):
        parts = line.split("  ", 2)
        if len(parts) != 3 or len(parts[0]) != 64 or not parts[1].isdigit():
            raise DataError(f"{path}:{number}: {line!r} is not '<sha256>  <size>  <path>'; the MANIFEST was "
                            f"edited or truncated, copy it again from the packing machine")
        entries.append(Entry(parts[0], int(parts[1]), parts[2]))
    return entries


def verify_kit(kit: Path) -> list[Finding]:
    """Compare every file of `kit` with its MANIFEST: one `Finding` per missing, extra or changed file.

    A size mismatch is reported without reading the file; otherwise the full sha256 is compared.
    """
    expected = {e.path: e for e in read_manifest(kit)}
    present = set(kit_files(kit))
    findings = [Finding("missing", rel) for rel in sorted(set(expected) - present)]
    findings += [Finding("extra", rel, "not in MANIFEST") for rel in sorted(present - set(expected))]
    for rel in sorted(present & set(expected)):
        entry, size = expected[rel], (kit / rel).stat().st_size
        if size != entry.size:
            findings.append(Finding("changed", rel, f"size {size} != {entry.size}"))
        elif file_sha256(kit / rel) != entry.sha256:
            findings.append(Finding("changed", rel, "sha256 differs"))
    return sorted(findings, key=lambda f: f.path)
