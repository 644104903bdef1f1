"""The two library functions on the training path, in the kit's own definition.

* ``sqrt`` replaces torch's CPU kernel of ``aten::sqrt`` (and ``sqrt_``,
  ``sqrt.out``) while the mode is installed: torch sends float tensors to MKL's
  vector math, which is not correctly rounded (17 % of float32 results differ
  from IEEE's square root on an AMD EPYC) and takes another code path on Intel,
  so Adam's ``exp_avg_sq.sqrt()`` differed between vendors from the first step.
  numpy's square root is IEEE's, correctly rounded, on every machine.
* ``spike_backward`` replaces slayer's surrogate gradient, whose ``torch.exp``
  also goes through MKL's vector math, with ``kernels.exp`` (``order.exp``).
"""

from __future__ import annotations

import numpy as np
import torch

from lava.lib.dl.slayer.spike import spike as _spike

from . import kernels, observe

STOCK_SPIKE_BACKWARD = _spike._spike_backward  # captured at import, before any patching
_NUMPY_SQRT = {torch.float16, torch.float32, torch.float64, torch.complex64, torch.complex128}


def _sqrt_values(t: torch.Tensor) -> torch.Tensor:
    """sqrt of t as numpy computes it (IEEE's, correctly rounded), in the dtype torch would return."""
    t = t.detach()
    if t.dtype.is_floating_point or t.dtype.is_complex:
        dtype = t.dtype
    else:  # integers and bools: torch promotes to the default float dtype
        dtype = torch.get_default_dtype()
    if dtype in _NUMPY_SQRT:
        values = np.sqrt(t.to(dtype).contiguous().numpy())
        return torch.from_numpy(np.ascontiguousarray(values)).reshape(t.shape)
    # bfloat16 and other narrow floats: through float32, exact (24 >= 2*8 + 2 bits)
    return torch.from_numpy(np.sqrt(t.to(torch.float32).contiguous().numpy())).reshape(t.shape).to(dtype)


def sqrt(t: torch.Tensor) -> torch.Tensor:
    """``aten::sqrt`` on the CPU."""
    return _sqrt_values(t)


def sqrt_(t: torch.Tensor) -> torch.Tensor:
    """``aten::sqrt_`` on the CPU (in place)."""
    return t.copy_(_sqrt_values(t))


def sqrt_out(t: torch.Tensor, *, out: torch.Tensor) -> torch.Tensor:
    """``aten::sqrt.out`` on the CPU."""
    values = _sqrt_values(t)
    out.resize_(values.shape)
    return out.copy_(values)


def exp(t: torch.Tensor) -> torch.Tensor:
    """The kit's exp for CPU float32 tensors outside autograd; torch.exp otherwise (a GPU, a double backward)."""
    if t.device.type != "cpu" or t.dtype is not torch.float32 or (torch.is_grad_enabled() and t.requires_grad):
        return torch.exp(t)
    src = t.detach().contiguous()
    out = torch.empty_like(src)
    kernels.exp(src.reshape(-1).numpy(), out.reshape(-1).numpy())
    observe.note("kit.exp", out)
    return out


def spike_backward(voltage, threshold, tau_rho, scale_rho, graded_spike=False):
    """Drop-in for slayer's ``_spike_backward``: its code, with the kit's exp."""
    if graded_spike is False:
        return scale_rho / 2 / tau_rho * exp(
            - torch.abs(voltage - threshold) / tau_rho
        )

    return scale_rho * exp(
        torch.clamp(voltage - threshold, max=0) / tau_rho
    )


__all__ = ["STOCK_SPIKE_BACKWARD", "exp", "spike_backward", "sqrt", "sqrt_", "sqrt_out"]
