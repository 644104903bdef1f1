"""slayer's dense synapse in the kit's order: forward, input gradient and weight gradient.

Stock ``synapse.Dense.forward`` is a ``conv3d`` with a 1x1x1 kernel, which torch
hands to MKL's sgemm for the forward pass and both gradients, in an order MKL
picks at run time. ``forward`` below computes the same products with
``kernels.matmul`` (specified by ``order.matmul``) through one autograd function;
everything else of the layer (the weight's ``pre_hook_fx`` quantisation, weight
norm, reshapes) stays slayer's own. A layer the kernel was not written for (a
kernel that is not 1x1x1, a bias, strides, another dtype, another device) runs
on stock slayer; on the CPU it says so once per process, because its sums then
follow the library's order and may differ between CPUs.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from lava.lib.dl.slayer.synapse import layer as _layer

from . import kernels, observe

STOCK_FORWARD = _layer.Dense.forward  # captured at import, before any patching
_warned = False


SPARSE_BELOW = 0.25  # b's share of nonzeros under which the zero-skipping kernel serves (same bits, faster)


def _matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b in the kit's order; spikes (mostly zeros) skip their zero products, which changes no bit."""
    out = torch.empty((a.shape[0], b.shape[1]), dtype=torch.float32)
    a, b = a.contiguous().numpy(), b.contiguous().numpy()
    # numpy, not torch: a choice of kernel (same bits either way) is no op of the training to trace
    sparse = b.size > 0 and kernels.count_nonzero(b) < SPARSE_BELOW * b.size and bool(np.isfinite(a).all())
    (kernels.matmul_skipping_zeros if sparse else kernels.matmul)(a, b, out.numpy())
    observe.note("kit.matmul", out)
    return out


class DenseProduct(torch.autograd.Function):
    """y[s] = w @ x[s] for x (S, I, T) and w (O, I), with both gradients in the kit's order."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x, w = x.detach().contiguous(), w.detach().contiguous()
        ctx.save_for_backward(x, w)
        return torch.stack([_matmul(w, xs) for xs in x]) if len(x) else x.new_zeros((0, w.shape[0], x.shape[-1]))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        x, w = ctx.saved_tensors
        grad = grad.detach().to(torch.float32).contiguous()
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            wt = w.t().contiguous()
            grad_x = torch.stack([_matmul(wt, gs) for gs in grad])
        if ctx.needs_input_grad[1]:
            samples, outs, steps = grad.shape
            a = grad.permute(1, 0, 2).reshape(outs, samples * steps)  # sum over samples, then time
            b = x.permute(0, 2, 1).reshape(samples * steps, x.shape[1])
            grad_w = _matmul(a, b)
        return grad_x, grad_w


def unsupported(layer: torch.nn.Module, input: torch.Tensor, weight: torch.Tensor) -> str | None:
    """Why the kit's kernel cannot compute this layer exactly as stock does, or None."""
    if not (isinstance(input, torch.Tensor) and isinstance(weight, torch.Tensor)):
        return "input or weight is not a tensor"
    if input.device.type != "cpu" or weight.device.type != "cpu":
        return "not on the CPU"
    if input.dtype is not torch.float32 or weight.dtype is not torch.float32:
        return f"dtype {input.dtype}/{weight.dtype}, not float32"
    if tuple(weight.shape[2:]) != (1, 1, 1) or weight.dim() != 5:
        return f"weight of shape {tuple(weight.shape)}, not (out, in, 1, 1, 1)"
    if layer.bias is not None or tuple(layer.stride) != (1, 1, 1) or layer.groups != 1 \
            or tuple(layer.dilation) != (1, 1, 1) or layer.padding not in ((0, 0, 0), "valid"):
        return "bias, stride, padding, dilation or groups"
    if input.dim() == 5 and tuple(input.shape[2:4]) != (1, 1):
        return f"input of shape {tuple(input.shape)}"
    if input.dim() not in (3, 5) or input.shape[1] != weight.shape[1] or input.shape[-1] == 0:
        return f"input of shape {tuple(input.shape)}"
    return None


def _warn_once(reason: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"grader.exact: a slayer Dense layer runs on stock torch ({reason}): its sums follow "
                      f"MKL's order, which can differ between CPUs, so its numbers may not repeat on "
                      f"another machine", RuntimeWarning, stacklevel=3)


def forward(self, input):
    """Drop-in for ``synapse.Dense.forward``: the kit's order where it applies, stock elsewhere."""
    weight = self.weight if self._pre_hook_fx is None else self._pre_hook_fx(self.weight)
    reason = unsupported(self, input, weight)
    if reason is not None:
        if reason != "not on the CPU":
            _warn_once(reason)
        return STOCK_FORWARD(self, input)
    shape = input.shape
    x = input.reshape(shape[0], shape[1], shape[-1])
    y = DenseProduct.apply(x, weight.reshape(weight.shape[0], weight.shape[1]))
    return y.reshape(shape[0], -1, shape[-1]) if input.dim() == 3 else y.reshape(shape[0], -1, 1, 1, shape[-1])


forward.__kit_orders__ = True  # patch.KIT_MARK: the kit's orders are in place, whichever copy put them


def _reset_warning() -> None:
    """Tests only: allow the once-per-process warning again."""
    global _warned
    _warned = False


__all__ = ["DenseProduct", "STOCK_FORWARD", "forward", "unsupported"]
