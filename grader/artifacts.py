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

from grader import cpu_redirect, messages
from grader.config import Limits
from solution import homework

HDF5_PATH = Path(homework.NETWORK_HDF5)
LOSS_PATH = Path(homework.LOSS_LOG)
PROBE_DIR = Path("_grader")
LAYERS = homework.LAYERS
ARCHITECTURE = " -> ".join(map(str, LAYERS))
MAX_LAYERS = 16  # blocks the grader rebuilds at most; a deeper export is refused before it is read
NEURON_KEYS = ("type", "iDecay", "vDecay", "vThMant", "refDelay", "gradedSpike")
MAX_CURVE_POINTS = 100_000


@dataclass
class Probe:
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None


@dataclass
class HDF5Report:
    """Trained/network.net against slayer's export of the homework's 200 -> 256 -> 200 network.

    `problems`: every deviation from that export, in the student's words; the
    hdf5 check pays for them. `evaluable`: the file is still a network the
    grader can rebuild and run on the HW8 input (a chain of dense CUBA blocks
    from 200 inputs to 200 outputs, any hidden sizes and depth within the
    limits), so loss, similarity and export are measured on it all the same:
    one deviation costs one check. `not_evaluable` says why not, when not.
    """

    exists: bool
    problems: list[str] = field(default_factory=list)
    evaluable: bool = False
    not_evaluable: str | None = None  # ends "the export was not evaluated because ..." (rubric.not_evaluated)
    sizes: tuple[int, ...] | None = None  # neurons per layer, input to output, when the blocks chain
    weights_sha256: str | None = None

    @property
    def ok(self) -> bool:
        return self.exists and not self.problems

    def refuse(self, why: str) -> None:
        """The file cannot be evaluated after all (grade.py: it failed to rebuild or run)."""
        self.problems.append(why)
        self.evaluable = False
        self.not_evaluable = why


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
    return validated_probe(meta, arrays)


# --- the probe's record is the kernel's word: data to validate, never code or trusted text ----------

PROBE_TEXT_MAX = 400  # characters of one message the kernel wrote (an exception's words, clipped)
PROBE_NAME_MAX = 80  # a variable's name
PROBE_LIST_MAX = 32  # entries of the CUDA note's list
MAX_DIMS = 8
MAX_DIM = 2**31
SHAPE_GROUP = {"input_shape": "dataset", "target_shape": "dataset", "output_shape": "network"}
ARRAY_SHAPE = {"input": "input_shape", "target": "target_shape", "output": "output_shape"}
ERROR_KEYS = ("dataset", "network")
ACCELERATED = "accelerated"  # grader.probe.ACCELERATED (the probe runs in the kernel; this reads its record)


def clip_text(value: str, limit: int = PROBE_TEXT_MAX) -> str:
    """A string from the kernel, fit for a message: one line, at most `limit` characters (then " [...]")."""
    text = " ".join(value.split())
    return text if len(text) <= limit else text[:limit] + " [...]"


def _kind(value: Any) -> str:
    """What a malformed value is, in words, without echoing it (it may be anything the kernel wrote)."""
    if value is None:
        return "null"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _shape(value: Any) -> list[int] | None | str:
    """A recorded shape: a list of at most MAX_DIMS non-negative ints, None (none recorded), or why not."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_DIMS:
        what = f"a list of {len(value)} entries" if isinstance(value, list) else _kind(value)
        return f"{what}, expected a list of at most {MAX_DIMS} integers"
    if not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_DIM for d in value):
        return "a list holding something else than sizes, expected a list of non-negative integers"
    return list(value)


def malformed(key: str, why: str) -> str:
    """The message of a check whose evidence the kernel's record gives in the wrong form."""
    return (f"the grader's probe recorded a malformed `{key}` ({why}): the notebook's code changed the "
            "grader's record (or the objects it inspects), so the check cannot be made")


def validated_probe(raw: dict[str, Any], arrays: dict[str, np.ndarray]) -> Probe:
    """The probe's record with every value checked by type and size, its strings clipped.

    What the kernel wrote is evidence, not trusted text: a value of the wrong type
    or size becomes an error of its check's group ("dataset" or "network"), so that
    check fails with a message and no check ever sees it; unknown keys are dropped;
    an array whose dtype is not numeric, or whose shape is not the recorded one, is
    dropped with an error of its group.
    """
    meta: dict[str, Any] = {}
    problems: dict[str, list[str]] = {group: [] for group in ERROR_KEYS}
    errors = raw.get("errors", {})
    kept: dict[str, str] = {}
    if not isinstance(errors, dict):
        for group in ERROR_KEYS:
            problems[group].append(malformed("errors", f"{_kind(errors)}, expected a mapping"))
    else:
        for group in ERROR_KEYS:
            if group not in errors:
                continue
            value = errors[group]
            if isinstance(value, str):
                kept[group] = clip_text(value)
            else:
                problems[group].append(malformed(f"errors.{group}", f"{_kind(value)}, expected a message"))
    for key, group in SHAPE_GROUP.items():
        if key not in raw:
            continue
        shape = _shape(raw[key])
        if isinstance(shape, str):
            problems[group].append(malformed(key, shape))
        else:
            meta[key] = shape
    for key in ("dataset_name", "network_name"):
        if key in raw:
            value = raw[key]
            meta[key] = clip_text(value, PROBE_NAME_MAX) if isinstance(value, str) else None
    if ACCELERATED in raw:  # a note for the clock only (never scored): anything but true is "not known"
        meta[ACCELERATED] = raw[ACCELERATED] is True
    if cpu_redirect.PROBE_KEY in raw:  # a note only (never scored): a malformed list is no request
        value = raw[cpu_redirect.PROBE_KEY]
        meta[cpu_redirect.PROBE_KEY] = (
            [clip_text(v, PROBE_NAME_MAX) for v in value[:PROBE_LIST_MAX] if isinstance(v, str)]
            if isinstance(value, list) else [])
    good: dict[str, np.ndarray] = {}
    for name, arr in arrays.items():
        key = ARRAY_SHAPE[name]
        group = SHAPE_GROUP[key]
        recorded = meta.get(key)
        if arr.dtype.kind not in "biuf" or arr.ndim > MAX_DIMS:
            problems[group].append(malformed(name, f"an array of dtype {arr.dtype} and {arr.ndim} dimensions, "
                                                   "expected numbers"))
        elif recorded is not None and list(arr.shape) != recorded:
            problems[group].append(malformed(name, f"an array of shape {tuple(arr.shape)} where the record says "
                                                   f"{tuple(recorded)}"))
        else:
            good[name] = arr
    for group, found in problems.items():
        if found:  # the record's own fault comes first: it is why the check cannot be made
            kept[group] = "; ".join([*found, *([kept[group]] if group in kept else [])])
    meta["errors"] = kept
    return Probe(arrays=good, meta=meta)


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
    """Trained/network.net against slayer's export of 200 -> 256 -> 200, one message per deviation."""
    import h5py

    path, refused = own_file(workdir, HDF5_PATH)
    if path is None:
        why = refused or messages.missing_file(str(HDF5_PATH))
        return HDF5Report(exists=False, problems=[why], not_evaluable=why)
    size = path.stat().st_size
    if size > limits.hdf5_max_mb * 2**20:
        why = f"{HDF5_PATH} is {size / 2**20:.1f} MiB (limit {limits.hdf5_max_mb} MiB): refused unread"
        return HDF5Report(exists=True, problems=[why], not_evaluable=why)
    found = _Structure(limits)
    try:
        with h5py.File(path, "r") as h:
            found.read(h)
    except OSError as exc:
        found.deviation(messages.not_hdf5(str(HDF5_PATH), str(exc)), blocks=True)
    evaluable = not found.blockers
    return HDF5Report(
        exists=True,
        problems=found.problems,
        evaluable=evaluable,
        not_evaluable=None if evaluable else found.blockers[0],
        sizes=found.sizes,
        weights_sha256=found.digest.hexdigest() if evaluable else None,
    )


def architecture_deviation(sizes: tuple[int, ...]) -> tuple[str | None, str | None]:
    """(what differs from 200 -> 256 -> 200, why the grader cannot run it), each None when nothing.

    Hidden sizes and depth cost only the structure check; the input and output
    sizes decide whether the network can run on the HW8 input at all.
    """
    differences, blocker = [], None
    if sizes[0] != LAYERS[0]:
        differences.append(f"wrong input size ({sizes[0]} neurons, expected {LAYERS[0]})")
        blocker = f"the network takes {sizes[0]} inputs and the HW8 input has {LAYERS[0]} neurons"
    hidden, expected = sizes[1:-1], LAYERS[1:-1]
    if len(hidden) != len(expected):
        differences.append(f"wrong number of hidden layers ({len(hidden)}, expected {len(expected)})")
    else:
        differences += [f"wrong hidden size ({got} neurons, expected {want})"
                        for got, want in zip(hidden, expected) if got != want]
    if sizes[-1] != LAYERS[-1]:
        differences.append(f"wrong output size ({sizes[-1]} neurons, expected {LAYERS[-1]})")
        blocker = blocker or f"the network has {sizes[-1]} outputs and the HW8 target has {LAYERS[-1]} neurons"
    if not differences:
        return None, None
    found = " -> ".join(map(str, sizes))
    return f"{HDF5_PATH} holds a {found} network, the homework's is {ARCHITECTURE}: {', '.join(differences)}", blocker


class _Structure:
    """One pass over an open export: its deviations, what stops a rebuild, its sizes, its weights' digest."""

    def __init__(self, limits: Limits) -> None:
        import hashlib

        self.problems: list[str] = []
        self.blockers: list[str] = []  # why the grader cannot rebuild and run it, first first
        self.sizes: tuple[int, ...] | None = None
        self.digest = hashlib.sha256()
        self.limit_mb = limits.hdf5_max_mb
        self.values_left = limits.hdf5_max_mb * 2**20 // 4  # float32 weights a plain file that size holds

    def deviation(self, message: str, blocks: bool | str = False) -> None:
        """A deviation from slayer's export; `blocks`: it stops a rebuild (True, or the reason in other words)."""
        self.problems.append(message)
        if blocks:
            self.blockers.append(message if blocks is True else blocks)

    def read(self, h: Any) -> None:
        import h5py

        foreign = _foreign_storage(h)
        if foreign:
            self.deviation(foreign, blocks=True)
            return
        if "layer" not in h or not isinstance(h["layer"], h5py.Group):
            self.deviation("no group `layer` at the top of the file", blocks=True)
            return
        group = h["layer"]
        numbered = {k: int(k) for k in group.keys() if k.isascii() and k.isdigit()}
        names = {i: k for k, i in numbered.items() if str(i) == k}  # 0, 1, ...: not 01
        extra = sorted(set(group.keys()) - set(names.values()), key=lambda k: (k not in numbered, numbered.get(k, 0), k))
        count = max(names) + 1 if names else 0
        if count > MAX_LAYERS:
            self.deviation(f"`layer` holds {count} layers: the grader evaluates at most {MAX_LAYERS}", blocks=True)
            return
        if not names:
            self.deviation("`layer` holds no layers: slayer's export writes one group per block, "
                           "`layer/0`, `layer/1`, ...", blocks=True)
        for first, last in _runs(i for i in range(count) if i not in names):
            if first == last:
                self.deviation(f"group `layer/{first}` is missing", blocks=True)
            else:
                self.deviation(f"groups `layer/{first}` to `layer/{last}` are missing", blocks=True)
        for name in extra:
            self.deviation(f"extra entry `layer/{name}`: slayer's export names its layers `0`, `1`, ... only",
                           blocks=True)
        sizes = {i: self.layer(group[names[i]], f"layer/{i}") for i in sorted(names)}
        for i in range(count - 1):
            a, b = sizes.get(i), sizes.get(i + 1)
            if a is not None and b is not None and a[1] != b[0]:
                self.deviation(f"`layer/{i}` has {a[1]} outputs but `layer/{i + 1}` takes {b[0]} inputs",
                               blocks=True)
                return
        if names and len(names) == count and all(sizes.values()):
            self.sizes = (sizes[0][0], *(sizes[i][1] for i in range(count)))
            deviation, blocker = architecture_deviation(self.sizes)
            if deviation:
                self.deviation(deviation, blocks=blocker or False)

    def layer(self, layer: Any, where: str) -> tuple[int, int] | None:
        """Check one block's group against slayer's export; its (inFeatures, outFeatures) when both are sound."""
        import h5py

        if not isinstance(layer, h5py.Group):
            self.deviation(f"`{where}` is a dataset, expected a group", blocks=True)
            return None
        for key in ("type", "shape", "inFeatures", "outFeatures", "weight", "neuron"):
            if key not in layer:  # the grader rebuilds a block without `shape`, from its weight
                self.deviation(messages.hdf5_missing(f"{where}/{key}"), blocks=key != "shape")
        if "type" in layer and self.small(layer["type"], where + "/type"):
            kind = _scalar(layer["type"])
            if kind != "dense":
                self.deviation(f"`{where}/type` is {kind!r}, expected 'dense'",
                               blocks=f"`{where}/type` is {kind!r}: the grader rebuilds dense blocks only")
        n_in, n_out = self.features(layer, where, "inFeatures"), self.features(layer, where, "outFeatures")
        if "shape" in layer and self.small(layer["shape"], where + "/shape") and n_out is not None:
            got = np.asarray(layer["shape"][()]).reshape(-1).tolist()
            if got != [n_out]:
                self.deviation(f"`{where}/shape` is {got}, expected [{n_out}] (outFeatures)", blocks=True)
        if "weight" in layer:
            self.weight(layer["weight"], where + "/weight", n_in, n_out)
        if "neuron" in layer:
            self.neuron(layer["neuron"], where + "/neuron")
        return None if n_in is None or n_out is None else (n_in, n_out)

    def features(self, layer: Any, where: str, key: str) -> int | None:
        if key not in layer or not self.small(layer[key], f"{where}/{key}"):
            return None
        if layer[key].size != 1:
            self.deviation(f"`{where}/{key}` holds {layer[key].size} values, expected one integer", blocks=True)
            return None
        got = _scalar(layer[key])
        if isinstance(got, str):
            self.deviation(f"`{where}/{key}` holds the text {got!r}, expected an integer", blocks=True)
        elif not isinstance(got, (int, np.integer)) or got < 1:
            self.deviation(f"`{where}/{key}` is {got}, expected a positive integer", blocks=True)
        else:
            return int(got)
        return None

    def weight(self, w: Any, where: str, n_in: int | None, n_out: int | None) -> None:
        import h5py

        if not isinstance(w, h5py.Dataset):
            self.deviation(f"`{where}` is not a dataset", blocks=True)
        elif n_in is None or n_out is None:
            return  # the layer's sizes are unknown (said above): nothing to compare the weight with
        elif w.shape != (n_out, n_in):
            self.deviation(messages.weight_shape(where, w.shape, n_out, n_in), blocks=True)
        elif w.dtype.kind != "f":
            self.deviation(f"`{where}` has dtype {w.dtype}, expected floating point", blocks=True)
        elif w.size > self.values_left:
            self.deviation(f"`{where}` holds {w.size} values, more than a {self.limit_mb} MiB export holds: "
                           "refused unread", blocks=True)
        else:
            self.values_left -= w.size
            values = w[()]
            if not np.all(np.isfinite(values)):
                self.deviation(f"`{where}` holds {int(np.sum(~np.isfinite(values)))} NaN/inf values", blocks=True)
            self.digest.update(np.ascontiguousarray(values, dtype=np.float32).tobytes())

    def neuron(self, neuron: Any, where: str) -> None:
        import h5py

        if not isinstance(neuron, h5py.Group):
            self.deviation(f"`{where}` is not a group", blocks=True)
            return
        for key in NEURON_KEYS:
            if key not in neuron:
                self.deviation(messages.hdf5_missing(f"{where}/{key}"), blocks=True)
            else:
                self.small(neuron[key], f"{where}/{key}")
        if "type" in neuron and isinstance(neuron["type"], h5py.Dataset) and neuron["type"].size <= 1:
            kind = _scalar(neuron["type"])
            if kind != homework.NEURON_TYPE:
                self.deviation(f"`{where}/type` is {kind!r}, expected {homework.NEURON_TYPE!r}",
                               blocks=f"`{where}/type` is {kind!r}: the grader rebuilds "
                                      f"{homework.NEURON_TYPE} neurons only")
        for key in ("iDecay", "vDecay", "vThMant", "refDelay"):
            if key in neuron and isinstance(neuron[key], h5py.Dataset) and neuron[key].size == 1:
                if neuron[key].dtype.kind not in "iuf":
                    self.deviation(f"`{where}/{key}` has dtype {neuron[key].dtype}, expected a number", blocks=True)

    def small(self, ds: Any, where: str) -> bool:
        """A dataset that should hold one small value; big ones are refused before they are read."""
        import h5py

        if not isinstance(ds, h5py.Dataset):
            self.deviation(f"`{where}` is not a dataset", blocks=True)
            return False
        if ds.size > 16:
            self.deviation(f"`{where}` holds {ds.size} values, expected one", blocks=True)
            return False
        if ds.dtype.kind == "O" and h5py.check_string_dtype(ds.dtype) is None:
            self.deviation(f"`{where}` has an unsupported type", blocks=True)
            return False
        return True


def _runs(indices: Any) -> list[tuple[int, int]]:
    """Consecutive integers as (first, last) runs: 3, 4, 5, 8 -> (3, 5), (8, 8)."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


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
