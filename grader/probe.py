"""Kernel-side code: the grader's preamble and probe cells call these inside the student kernel.

Everything the probe reports is structural evidence (shapes, the notebook's
own output); the grader never takes a score from it. It reads the official
input from the kit's data folder (read-only in the sandbox), not from the
student's working directory.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from grader import messages
from solution import homework

PROBE_DIR = "_grader"
ACCELERATED = "accelerated"  # probe.json: whether the notebook trained with the grader's accelerator
MAX_ELEMENTS = 2_000_000  # larger tensors are reported by shape only
OFFICIAL_DATA = Path(__file__).resolve().parent.parent / "data"


def preamble(seed: int, accelerate: bool) -> None:
    """Seed every generator, pin one torch thread, put the kit's orders in place (and the accelerator
    when asked) and, without CUDA, send CUDA placement to the CPU."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    if not torch.cuda.is_available():  # a notebook written for a GPU runs on the CPU, as its CPU twin would
        from grader import cpu_redirect

        cpu_redirect.install()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    from grader import exact

    exact.install()  # warns once and leaves the libraries' orders when a guard fails
    if accelerate:
        try:
            from grader.accel import install

            install()
        except Exception as exc:  # the stock slayer path still grades correctly
            print(f"[grader] accelerator unavailable, using stock slayer: {exc}")


class _NotAPair(Exception):
    """The dataset's item is not (input, target): said as such, not as an exception it raised."""


def _to_array(value: Any) -> Any:
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.numel() > MAX_ELEMENTS:
            return None, list(value.shape)
        return value.numpy().astype(np.float32), list(value.shape)
    arr = np.asarray(value)
    if arr.size > MAX_ELEMENTS:
        return None, list(arr.shape)
    return arr.astype(np.float32), list(arr.shape)


def _find(ns: dict[str, Any], name: str, kind: type, attr: str | None = None) -> tuple[str | None, Any]:
    if isinstance(ns.get(name), kind):
        return name, ns[name]
    for key, value in ns.items():
        if not key.startswith("_") and isinstance(value, kind) and (attr is None or hasattr(value, attr)):
            return key, value
    return None, None


def run(ns: dict[str, Any], out_dir: str = PROBE_DIR) -> None:
    """Record the dataset's first item and the network's output on the official input."""
    import numpy as np
    import torch

    os.makedirs(out_dir, exist_ok=True)
    arrays: dict[str, Any] = {}
    meta: dict[str, Any] = {"errors": {}}

    ds_var, net_var = homework.DATASET_VARIABLE, homework.NETWORK_VARIABLE
    name, dataset = _find(ns, ds_var, torch.utils.data.Dataset)
    meta["dataset_name"] = name
    if dataset is None:
        meta["errors"]["dataset"] = messages.missing_variable(ds_var, "torch Dataset")
    else:
        try:
            item = dataset[0]
            if not isinstance(item, (tuple, list)) or len(item) < 2:
                raise _NotAPair(messages.not_a_pair(f"{ds_var}[0]", type(item).__name__))
            for key, value in zip(("input", "target"), item[:2]):
                arr, shape = _to_array(value)
                meta[f"{key}_shape"] = shape
                if arr is not None:
                    arrays[key] = arr
        except _NotAPair as exc:
            meta["errors"]["dataset"] = str(exc)
        except Exception as exc:
            meta["errors"]["dataset"] = messages.raised(f"{ds_var}[0]", exc)

    name, net = _find(ns, net_var, torch.nn.Module, "blocks")
    meta["network_name"] = name
    if net is None:
        meta["errors"]["network"] = messages.missing_variable(net_var, "network module")
    else:
        try:
            from solution.dataset import load_spikes

            official = load_spikes(OFFICIAL_DATA / homework.INPUT_FILE)
            device = next(net.parameters()).device
            with torch.no_grad():
                out = net(official.unsqueeze(0).to(device))
            if isinstance(out, (tuple, list)):
                out = out[0]
            arr, shape = _to_array(out)
            meta["output_shape"] = shape
            if arr is not None:
                arrays["output"] = arr
        except Exception as exc:
            meta["errors"]["network"] = messages.raised(f"{net_var}(input)", exc)

    from grader import cpu_redirect

    meta[cpu_redirect.PROBE_KEY] = cpu_redirect.requested()  # CUDA placements that ran on the CPU
    from grader import accel

    meta[ACCELERATED] = accel.is_active()  # the grader's clock compares the run with the accelerated reference
    np.savez(Path(out_dir) / "probe.npz", **arrays)
    Path(out_dir, "probe.json").write_text(json.dumps(meta))
