"""Fingerprints of rendered outputs, so a run re-renders only what changed (issue 18).

An output's fingerprint is a sha256 over two parts:

- **view**: a canonical serialisation of what it shows (the view model: every dataclass field,
  recursively; Decimals as written, datetimes with their offset, DataFrames cell by cell). The
  policy reaches an output only through its view model (targets, calendar, term sets are fields
  of it), so a policy change that changes what a report says changes its fingerprint;
- **environment**: everything else that decides the bytes: the files under
  `reports/templates/` (templates, CSS, fonts, logo), the rendering code (`reports/*.py`,
  `sla/report_data/models.py` with its properties, `sla/months.py`), the versions of the renderer
  packages (WeasyPrint and its PDF/font/CSS libraries, Jinja2, plotly, kaleido, pandas), the
  Pango library WeasyPrint lays text out with, and the chromium that kaleido drives.

After an output is written, its manifest is written (atomically, after the output) in the hidden
tree `<out>/.fingerprints/`, at the output's own relative path plus `.json` (the PDF
`<out>/2026-03/customers/C0001-acme.pdf` has `<out>/.fingerprints/2026-03/customers/C0001-acme.pdf.json`):
the fingerprint, its two parts and the size and sha256 of every file the output consists of. The
output folders themselves hold only what is delivered (PDFs, the dashboard page). An output is *current* when its manifest holds the
same fingerprint and every listed file is on disk with exactly those bytes; only then is it
reused. Manifests hold nothing run-specific (no timestamps, no process ids), so two runs on the
same input leave identical folders.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import math
import os
import subprocess
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from functools import lru_cache
from importlib import metadata
from pathlib import Path, PurePath

from sla.files import write_bytes_atomic

REPORTS_DIR = Path(__file__).resolve().parent
ROOT = REPORTS_DIR.parent
TEMPLATES_DIR = REPORTS_DIR / "templates"
#: the code that decides what an output looks like, besides the templates
CODE_FILES = (*sorted(REPORTS_DIR.glob("*.py")), ROOT / "sla" / "report_data" / "models.py", ROOT / "sla" / "months.py")
#: renderer packages whose version can change the bytes of a PDF or of the dashboard
PACKAGES = ("weasyprint", "pydyf", "fonttools", "tinycss2", "cssselect2", "tinyhtml5", "pyphen", "pillow",
            "jinja2", "markupsafe", "plotly", "kaleido", "choreographer", "pandas", "numpy", "openpyxl")
MANIFEST_DIR = ".fingerprints"
#: bumped when the canonical form or the manifest layout changes (every output is then re-rendered)
SCHEMA = 1


# ----------------------------------------------------------------------------- canonical form
def canonical(value):
    """A JSON-ready form of `value` that is equal exactly when the rendered output can be equal.

    Dataclasses become {type, fields} (type names count: a different class is a different
    report), mappings sorted lists of pairs (keys may be tuples), floats their repr, Decimals
    their text (0.950 and 0.95 may print differently), datetimes ISO 8601 with their offset.
    Anything else raises TypeError, so a new field type cannot be silently left out.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if not isinstance(value, enum.Enum) else canonical(value.value)
    if isinstance(value, float):
        return {"float": "nan" if math.isnan(value) else repr(value)}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, dt.datetime):  # before date: a datetime is a date
        return {"datetime": value.isoformat()}
    if isinstance(value, (dt.date, dt.time)):
        return {type(value).__name__: value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"timedelta": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, enum.Enum):
        return canonical(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__qualname__,
                "fields": {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return {"set": sorted((canonical(v) for v in value), key=_dumps)}
    if isinstance(value, Mapping):
        return {"map": sorted(([canonical(k), canonical(v)] for k, v in value.items()), key=lambda kv: _dumps(kv[0]))}
    if isinstance(value, PurePath):
        return str(value)
    return _canonical_library_value(value)


def _canonical_library_value(value):
    """numpy scalars, pandas frames and missing values (the dashboard's data is pandas)."""
    import numpy as np
    import pandas as pd

    if isinstance(value, np.generic):
        return canonical(value.item())
    if value is pd.NaT:
        return {"missing": "NaT"}
    if value is pd.NA:
        return {"missing": "NA"}
    if isinstance(value, pd.DataFrame):
        return {"frame": {"columns": [canonical(c) for c in value.columns],
                          "dtypes": [str(t) for t in value.dtypes],
                          "index": [canonical(i) for i in value.index],
                          "rows": [[canonical(v) for v in row] for row in value.itertuples(index=False, name=None)]}}
    if isinstance(value, pd.Series):
        return {"series": {"name": canonical(value.name), "dtype": str(value.dtype),
                           "index": [canonical(i) for i in value.index], "values": [canonical(v) for v in value]}}
    if isinstance(value, np.ndarray):
        return {"array": [canonical(v) for v in value.tolist()], "dtype": str(value.dtype)}
    raise TypeError(f"cannot fingerprint a value of type {type(value).__module__}.{type(value).__qualname__}")


def _dumps(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def view_hash(*views) -> str:
    """sha256 of the canonical form of the view model(s) an output is rendered from."""
    return hashlib.sha256(_dumps([SCHEMA, *(canonical(v) for v in views)]).encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------- environment
def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _tree_digest(files: Iterable[Path], base: Path) -> dict[str, str]:
    out = {}
    for p in files:
        try:
            name = p.relative_to(base).as_posix()
        except ValueError:
            name = p.as_posix()
        out[name] = _file_digest(p)
    return out


def _package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def _pango_version() -> str:
    try:
        from weasyprint.text.ffi import pango

        return str(pango.pango_version())
    except Exception:  # noqa: BLE001 - unknown counts as a value of its own, never as a crash
        return "unknown"


def _chromium_version() -> str:
    """`chromium --version` (kaleido's browser exports the charts); its path and size if it will
    not say, "absent" without one."""
    from reports import charts

    path = charts._chromium_path()  # noqa: SLF001 - the same browser the charts use
    if not path:
        return "absent"
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    if out:
        return out
    try:
        st = os.stat(os.path.realpath(path))
        return f"{os.path.realpath(path)} {st.st_size} {st.st_mtime_ns}"
    except OSError:
        return "unknown"


@lru_cache(maxsize=1)
def environment() -> dict:
    """What decides an output's bytes besides its view model (computed once per process)."""
    templates = sorted(p for p in TEMPLATES_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return {
        "schema": SCHEMA,
        "templates": _tree_digest(templates, TEMPLATES_DIR),
        "code": _tree_digest(CODE_FILES, ROOT),
        "packages": _package_versions(),
        "pango": _pango_version(),
        "chromium": _chromium_version(),
    }


@lru_cache(maxsize=1)
def environment_hash() -> str:
    return hashlib.sha256(_dumps(environment()).encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------- fingerprints
@dataclasses.dataclass(frozen=True)
class Fingerprint:
    view: str
    environment: str

    @property
    def value(self) -> str:
        return hashlib.sha256(f"{self.view}:{self.environment}".encode("ascii")).hexdigest()


def fingerprint(*views) -> Fingerprint:
    """The fingerprint of an output rendered from `views` in this environment."""
    return Fingerprint(view_hash(*views), environment_hash())


def manifest_path(output: str | os.PathLike, root: str | os.PathLike) -> Path:
    """`<root>/.fingerprints/<output's path below root>.json`."""
    rel = Path(os.path.abspath(output)).relative_to(os.path.abspath(root))
    return Path(root) / MANIFEST_DIR / rel.parent / f"{rel.name}.json"


def _read_manifest(manifest: Path) -> dict | None:
    try:
        data = json.loads(Path(manifest).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_current(outputs: Iterable[str | os.PathLike], fp: Fingerprint, manifest: str | os.PathLike) -> bool:
    """True when the manifest carries `fp` and every output is on disk exactly as the manifest
    recorded it (same size and sha256): then rendering again would change nothing."""
    outputs = [Path(p) for p in outputs]
    data = _read_manifest(Path(manifest))
    if not data or data.get("fingerprint") != fp.value:
        return False
    files = data.get("files") or {}
    if sorted(files) != sorted(p.name for p in outputs):
        return False
    for p in outputs:
        entry = files[p.name]
        try:
            if p.stat().st_size != entry.get("bytes"):
                return False
        except OSError:
            return False
        if _file_digest(p) != entry.get("sha256"):
            return False
    return True


def record(outputs: Iterable[str | os.PathLike], fp: Fingerprint, manifest: str | os.PathLike, *,
           contents: Mapping[str, bytes] | None = None) -> Path:
    """Write the manifest of an output just written (its files). `contents` (file name -> bytes)
    saves reading back what the caller still holds."""
    outputs = [Path(p) for p in outputs]
    files = {}
    for p in outputs:
        data = (contents or {}).get(p.name)
        if data is not None:
            files[p.name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        else:
            files[p.name] = {"bytes": p.stat().st_size, "sha256": _file_digest(p)}
    data = {"schema": SCHEMA, "fingerprint": fp.value, "view": fp.view, "environment": fp.environment,
            "files": files}
    return write_bytes_atomic((json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8"), manifest)


def refresh(outputs: Iterable[str | os.PathLike], fp: Fingerprint, write: Callable[[], object], *,
            root: str | os.PathLike, force: bool = False) -> bool:
    """Call `write()` (which writes `outputs`, under `root`) unless they are current, then record
    their manifest (named after the first). True when it rendered, False when it kept them."""
    outputs = [Path(p) for p in outputs]
    manifest = manifest_path(outputs[0], root)
    if not force and is_current(outputs, fp, manifest):
        return False
    write()
    record(outputs, fp, manifest)
    return True


def prune_manifests(folder: str | os.PathLike, keep: Iterable[str], root: str | os.PathLike) -> list[Path]:
    """Delete the manifests of outputs in `folder` (under `root`) that are not in `keep` (file
    names), and leftover temporary files of manifests."""
    mdir = manifest_path(Path(folder) / "-", root).parent
    keep = {f"{name}.json" for name in keep}
    removed = []
    if mdir.is_dir():
        for f in mdir.iterdir():
            if f.is_file() and f.name not in keep:
                f.unlink()
                removed.append(f)
    return removed
