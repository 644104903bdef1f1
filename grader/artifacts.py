"""Read and validate what a run left in its working directory, refusing oversized input first.

Three artifacts: the probe's dump (`_grader/probe.json|npz`), the exported
network (`Trained/network.net`, HDF5) and the learning curve
(`Trained/loss.txt`, written by `stats.save`). Sizes, shapes and dtypes are
read from metadata before any data is loaded.
"""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grader.config import Limits
from solution import homework

HDF5_PATH = Path(homework.NETWORK_HDF5)
LOSS_PATH = Path(homework.LOSS_LOG)
PROBE_DIR = Path("_grader")
LAYERS = homework.LAYERS
NEURON_KEYS = ("type", "iDecay", "vDecay", "vThMant", "refDelay", "gradedSpike")
MAX_CURVE_POINTS = 100_000


@dataclass
class Probe:
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None


@dataclass
class HDF5Report:
    exists: bool
    problems: list[str] = field(default_factory=list)
    evaluable: bool = False  # structure sound enough to rebuild and run
    weights_sha256: str | None = None

    @property
    def ok(self) -> bool:
        return self.exists and not self.problems


def own_file(workdir: Path, relative: Path) -> tuple[Path | None, str | None]:
    """(path, None) if `relative` is a regular file reached without symbolic links; else (None, why not).

    The grader runs outside the sandbox: following a link the notebook made would
    let it hand in another submission's files, or read the instructor's. `why` is
    None when the file simply does not exist.
    """
    path = Path(workdir)
    for part in Path(relative).parts:
        path = path / part
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            return None, f"{relative} cannot be read ({exc.strerror})"
        if stat.S_ISLNK(st.st_mode):
            name = path.relative_to(workdir)
            return None, f"{name} is a symbolic link: refused (the grader reads only files the notebook wrote)"
    if not stat.S_ISREG(st.st_mode):
        return None, f"{relative} is not a regular file: refused"
    return path, None


def read_probe(workdir: Path, limits: Limits) -> Probe:
    meta_path, meta_problem = own_file(workdir, PROBE_DIR / "probe.json")
    npz_path, npz_problem = own_file(workdir, PROBE_DIR / "probe.npz")
    if meta_problem or npz_problem:
        return Probe(problem=f"the grader's probe results are unusable: {meta_problem or npz_problem}")
    if meta_path is None or npz_path is None:
        return Probe(problem="the grader's probe left no results: the notebook did not run to its end "
                             "(see the execution check)")
    limit = limits.probe_max_mb * 2**20
    if meta_path.stat().st_size > limit or npz_path.stat().st_size > limit:
        return Probe(problem=f"the probe's dump exceeds {limits.probe_max_mb} MiB")
    try:
        unpacked = _unpacked_size(npz_path)
        if unpacked > limit:  # a small .npz can inflate to gigabytes in the grader's memory
            return Probe(problem=f"the probe's dump unpacks to {unpacked / 2**20:.0f} MiB "
                                 f"(limit {limits.probe_max_mb} MiB): refused unread")
        meta = json.loads(meta_path.read_text())
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {k: np.asarray(npz[k]) for k in npz.files if k in ("input", "target", "output")}
    except Exception as exc:  # the kernel could have written anything there
        return Probe(problem=f"the probe's dump is unreadable: {exc}")
    if not isinstance(meta, dict):
        return Probe(problem="the probe's dump is malformed")
    meta.setdefault("errors", {})
    return Probe(arrays=arrays, meta=meta)


def _unpacked_size(npz: Path) -> int:
    """What the arrays of an .npz (a zip) take once read: zipfile never reads past a member's stated size."""
    import zipfile

    with zipfile.ZipFile(npz) as zf:
        return sum(info.file_size for info in zf.infolist())


def read_learning_curve(workdir: Path) -> list[float] | None:
    """The training losses from stats.save, or None; advisory (plotted, never scored)."""
    path, _ = own_file(workdir, LOSS_PATH)
    if path is None or path.stat().st_size > 8 * 2**20:
        return None
    values: list[float] = []
    for line in path.read_text(errors="replace").splitlines()[:MAX_CURVE_POINTS]:
        parts = line.split()
        if not parts or line.lstrip().startswith("#"):
            continue
        try:
            v = float(parts[0])
        except ValueError:
            continue
        if math.isfinite(v):
            values.append(v)
    return values or None


def _scalar(ds: Any) -> Any:
    value = ds[()]
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size == 1 else None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value


def check_hdf5(workdir: Path, limits: Limits) -> HDF5Report:
    """slayer's export_hdf5 structure for 200 -> 256 -> 200, one message per deviation."""
    import hashlib

    import h5py

    path, refused = own_file(workdir, HDF5_PATH)
    if path is None:
        return HDF5Report(exists=False, problems=[refused or f"{HDF5_PATH} was not written (export the trained network)"])
    size = path.stat().st_size
    if size > limits.hdf5_max_mb * 2**20:
        return HDF5Report(
            exists=True,
            problems=[f"{HDF5_PATH} is {size / 2**20:.1f} MiB (limit {limits.hdf5_max_mb} MiB): refused unread"],
        )
    report = HDF5Report(exists=True)
    p = report.problems
    digest = hashlib.sha256()
    try:
        with h5py.File(path, "r") as h:
            foreign = _foreign_storage(h)
            if foreign:
                p.append(foreign)
                return report
            if "layer" not in h or not isinstance(h["layer"], h5py.Group):
                p.append("no group `layer` at the top of the file")
                return report
            group = h["layer"]
            names = sorted(group.keys(), key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
            expected_names = [str(i) for i in range(len(LAYERS) - 1)]
            for name in expected_names:
                if name not in group:
                    p.append(f"group `layer/{name}` is missing")
            for name in names:
                if name not in expected_names:
                    p.append(f"extra entry `layer/{name}`: the network has {len(expected_names)} layers")
            sound = not p
            for i, name in enumerate(expected_names):
                if name not in group:
                    continue
                n_in, n_out = LAYERS[i], LAYERS[i + 1]
                sound &= _check_layer(group[name], f"layer/{name}", n_in, n_out, p, digest)
            report.evaluable = sound and not p
    except OSError as exc:
        p.append(f"{HDF5_PATH} is not a readable HDF5 file ({exc})")
        return report
    report.weights_sha256 = digest.hexdigest() if report.evaluable else None
    return report


def _foreign_storage(h: Any) -> str | None:
    """Why the file reaches outside itself (external/soft links, external or virtual datasets), or None.

    Checked before anything is followed: an external link or an external dataset
    would make the grader read another file, e.g. another student's export.
    """
    import h5py

    found: list[str] = []

    def link(name: str, info: Any) -> None:
        if isinstance(info, (h5py.ExternalLink, h5py.SoftLink)) and len(found) < 3:
            kind = "an external link" if isinstance(info, h5py.ExternalLink) else "a soft link"
            found.append(f"`{name}` is {kind}")

    def dataset(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and len(found) < 3:
            if obj.external:
                found.append(f"`{name}` keeps its data in another file")
            elif obj.is_virtual:
                found.append(f"`{name}` is a virtual dataset")

    h.visititems_links(link)
    if not found:
        h.visititems(dataset)
    if not found:
        return None
    return f"{HDF5_PATH} refers outside itself ({'; '.join(found)}): refused, slayer's export holds plain data"


def _check_layer(layer: Any, where: str, n_in: int, n_out: int, p: list[str], digest: Any) -> bool:
    """Append this layer's deviations to `p`; return whether it can still be rebuilt."""
    import h5py

    if not isinstance(layer, h5py.Group):
        p.append(f"`{where}` is a dataset, expected a group")
        return False
    sound = True
    for key in ("type", "shape", "inFeatures", "outFeatures", "weight", "neuron"):
        if key not in layer:
            p.append(f"`{where}/{key}` is missing")
            sound = False
    if "type" in layer and _small(layer["type"], where + "/type", p):
        kind = _scalar(layer["type"])
        if kind != "dense":
            p.append(f"`{where}/type` is {kind!r}, expected 'dense'")
    for key, want in (("inFeatures", n_in), ("outFeatures", n_out)):
        if key in layer and _small(layer[key], f"{where}/{key}", p):
            got = _scalar(layer[key])
            if isinstance(got, str):
                p.append(f"`{where}/{key}` holds the text {got!r}, expected the integer {want}")
                sound = False
            elif not isinstance(got, (int, np.integer)) or int(got) != want:
                p.append(f"`{where}/{key}` is {got}, expected {want}")
                sound = False
    if "shape" in layer and _small(layer["shape"], where + "/shape", p):
        got = np.asarray(layer["shape"][()]).reshape(-1).tolist()
        if got != [n_out]:
            p.append(f"`{where}/shape` is {got}, expected [{n_out}]")
    if "weight" in layer:
        w = layer["weight"]
        if not isinstance(w, h5py.Dataset):
            p.append(f"`{where}/weight` is not a dataset")
            sound = False
        elif w.shape != (n_out, n_in):
            hint = " (transposed)" if w.shape == (n_in, n_out) else ""
            p.append(f"`{where}/weight` has shape {w.shape}{hint}, expected ({n_out}, {n_in}) = (out, in)")
            sound = False
        elif w.dtype.kind != "f":
            p.append(f"`{where}/weight` has dtype {w.dtype}, expected floating point")
            sound = False
        else:
            values = w[()]
            if not np.all(np.isfinite(values)):
                p.append(f"`{where}/weight` holds {int(np.sum(~np.isfinite(values)))} NaN/inf values")
                sound = False
            digest.update(np.ascontiguousarray(values, dtype=np.float32).tobytes())
    if "neuron" in layer:
        neuron = layer["neuron"]
        if not isinstance(neuron, h5py.Group):
            p.append(f"`{where}/neuron` is not a group")
            return False
        for key in NEURON_KEYS:
            if key not in neuron:
                p.append(f"`{where}/neuron/{key}` is missing")
                sound = False
            elif not _small(neuron[key], f"{where}/neuron/{key}", p):
                sound = False
        if "type" in neuron and isinstance(neuron["type"], h5py.Dataset) and neuron["type"].size <= 1:
            kind = _scalar(neuron["type"])
            if kind != "CUBA":
                p.append(f"`{where}/neuron/type` is {kind!r}, expected 'CUBA'")
                sound = False
        for key in ("iDecay", "vDecay", "vThMant", "refDelay"):
            if key in neuron and isinstance(neuron[key], h5py.Dataset) and neuron[key].size == 1:
                if neuron[key].dtype.kind not in "iuf":
                    p.append(f"`{where}/neuron/{key}` has dtype {neuron[key].dtype}, expected a number")
                    sound = False
    return sound


def _small(ds: Any, where: str, p: list[str]) -> bool:
    """A dataset that should hold one small value; refuse big ones before reading."""
    import h5py

    if not isinstance(ds, h5py.Dataset):
        p.append(f"`{where}` is not a dataset")
        return False
    if ds.size > 16:
        p.append(f"`{where}` holds {ds.size} values, expected one")
        return False
    if ds.dtype.kind == "O" and h5py.check_string_dtype(ds.dtype) is None:
        p.append(f"`{where}` has an unsupported type")
        return False
    return True
