"""The matrix-product floor of a training step, and its operator / kernel-launch count (used by train_speed.py).

Floor. While a few eager steps run, a TorchDispatchMode records every matrix product the step dispatches, forward
and backward: dense GEMMs (``mm``, ``addmm``, ``bmm``, ``baddbmm``, by shape and operand layout) and sparse-dense
products (SpMM: the same ops with a sparse CSR/COO operand, by the sparse matrix and the dense width). FLOPs:
``2 M K N`` per GEMM (``2 B M K N`` batched), ``2 nnz N`` per SpMM. Each distinct product is then timed alone on this
machine (same shapes and layouts, fresh random operands; the SpMM with the step's own sparse matrix; median of
repeats); the step's floor is the sum of those times over the recorded products divided by the recorded steps: what
the step would cost if it did nothing but its matrix products, each at the rate this machine reaches for that very
shape. ``floor_ratio = measured step time / floor``: 1.0 is the floor; the rest is gathers, elementwise work,
reductions, the optimizer, the sampler and overhead. The floor does not depend on how the step is run (eager or
compiled): it is the step's arithmetic.

Counts. ``count_ops`` profiles a few steps as they are run (compiled or not). On the CPU it counts operator calls
per step: top-level ``aten::`` operators (not those called inside another) plus Inductor's generated C++ kernels
(visible to the profiler with ``torch._inductor.config.cpp.enable_kernel_profile``). On CUDA it counts kernel
launches per step (the host's ``cudaLaunchKernel``-family and ``cudaGraphLaunch`` calls: one replayed CUDA graph is one
launch) and the kernels that ran on the device.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_PRODUCTS = {"mm", "addmm", "bmm", "baddbmm"}
_LAUNCHES = {"cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx", "cudaGraphLaunch"}


@dataclass
class Product:
    """One distinct matrix product of the step: ``kind`` gemm | spmm, its shape key and how often a step runs it."""

    kind: str
    key: tuple[Any, ...]
    flops: int
    calls: int = 0
    sparse: torch.Tensor | None = field(default=None, repr=False)
    seconds: float = 0.0  # measured time of one call

    def describe(self) -> str:
        if self.kind == "spmm":
            rows, cols, nnz, n = self.key[1:]
            return f"spmm ({rows}x{cols}, nnz {nnz}) @ ({cols}x{n})"
        b, m, k, n, a_t, b_t = self.key[1:]
        batch = f"{b}x " if b > 1 else ""
        return f"gemm {batch}({m}x{k}{'^T' if a_t else ''}) @ ({k}x{n}{'^T' if b_t else ''})"


def _transposed(t: torch.Tensor) -> bool:
    """Column-major operand (a transposed view), which BLAS reads differently from a row-major one."""
    return t.dim() >= 2 and t.stride(-1) != 1


class _Recorder(TorchDispatchMode):
    """Collects the matrix products dispatched while active (forward and autograd backward)."""

    def __init__(self) -> None:
        super().__init__()
        self.products: dict[tuple[Any, ...], Product] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if name in _PRODUCTS:
            mats = [a for a in args if isinstance(a, torch.Tensor) and a.dim() == (3 if "bmm" in name else 2)]
            a, b = mats[-2], mats[-1]  # addmm(bias, a, b): the last two are the factors
            if a.layout != torch.strided:
                key: tuple[Any, ...] = ("spmm", a.shape[0], a.shape[1], int(a._nnz()), b.shape[-1])
                prod = self.products.setdefault(key, Product("spmm", key, 2 * int(a._nnz()) * b.shape[-1], sparse=a))
            else:
                bsz = a.shape[0] if a.dim() == 3 else 1
                m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
                key = ("gemm", bsz, m, k, n, _transposed(a), _transposed(b))
                prod = self.products.setdefault(key, Product("gemm", key, 2 * bsz * m * k * n))
            prod.calls += 1
        return func(*args, **kwargs)


def record_products(step: Callable[[], Any], n_steps: int) -> list[Product]:
    """The distinct matrix products of ``n_steps`` eager steps, with ``calls`` summed over them."""
    rec = _Recorder()
    with rec:
        for _ in range(n_steps):
            step()
    return list(rec.products.values())


def _operands(p: Product, device: torch.device) -> Callable[[], torch.Tensor]:
    if p.kind == "spmm":
        assert p.sparse is not None
        x = torch.randn(p.key[2], p.key[4], device=device)
        a = p.sparse
        out = x.new_empty(a.shape[0], x.shape[1])
        return lambda: torch.addmm(out, a, x, beta=0.0, out=out)  # as the graph module's _spmm

    b, m, k, n, a_t, b_t = p.key[1:]

    def mat(rows: int, cols: int, transposed: bool) -> torch.Tensor:
        lead = (b,) if b > 1 else ()
        if transposed:  # a column-major view, as the step's operand was
            return torch.randn(*lead, cols, rows, device=device).transpose(-1, -2)
        return torch.randn(*lead, rows, cols, device=device)

    x, y = mat(m, k, a_t), mat(k, n, b_t)
    return (lambda: torch.bmm(x, y)) if b > 1 else (lambda: torch.mm(x, y))


def time_products(products: list[Product], device: torch.device, repeats: int = 5) -> None:
    """Set ``seconds`` of each product: the median over ``repeats`` of its time alone (after one warm-up call)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for p in products:
        fn = _operands(p, device)
        fn()
        sync()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t0)
        p.seconds = statistics.median(times)


def floor_summary(products: list[Product], n_steps: int) -> dict[str, float]:
    """Per step: FLOPs, the floor in seconds, and the achieved rates of its GEMMs and SpMMs (GFLOP/s)."""
    out: dict[str, float] = {}
    for kind in ("gemm", "spmm"):
        ps = [p for p in products if p.kind == kind]
        flops = sum(p.flops * p.calls for p in ps) / n_steps
        secs = sum(p.seconds * p.calls for p in ps) / n_steps
        out[f"{kind}_gflop_per_step"] = flops / 1e9
        out[f"{kind}_floor_ms"] = secs * 1e3
        out[f"{kind}_gflops"] = flops / secs / 1e9 if secs else 0.0
    out["floor_step_s"] = (out["gemm_floor_ms"] + out["spmm_floor_ms"]) / 1e3
    return out


def product_table(products: list[Product], n_steps: int) -> str:
    """One line per distinct product: calls per step, GFLOP per call, measured ms per call and GFLOP/s."""
    lines = [f"{'product':<52}{'calls/step':>11}{'GFLOP':>9}{'ms':>9}{'GFLOP/s':>9}"]
    for p in sorted(products, key=lambda p: -p.seconds * p.calls):
        rate = p.flops / p.seconds / 1e9 if p.seconds else 0.0
        lines.append(f"{p.describe():<52}{p.calls / n_steps:>11.2f}{p.flops / 1e9:>9.4f}{p.seconds * 1e3:>9.3f}"
                     f"{rate:>9.1f}")
    return "\n".join(lines)


def profiled(step: Callable[[], Any], device: torch.device, n_steps: int) -> Any:
    """Run ``n_steps`` steps under torch.profiler (host activity, plus the device's on CUDA, synchronised before the
    profile closes); returns the profile."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(n_steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    return prof


def count_ops(step: Callable[[], Any], device: torch.device, n_steps: int = 3) -> dict[str, float]:
    """Operator calls per step (CPU) or kernel launches and device kernels per step (CUDA), see the module doc."""
    events = profiled(step, device, n_steps).events()
    if device.type == "cuda":
        launches = sum(1 for e in events if e.name in _LAUNCHES)
        kernels = sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA
                      and not e.name.startswith(("Memcpy", "Memset")))
        return {"launches_per_step": launches / n_steps, "kernels_per_step": kernels / n_steps}

    def top_level(e: Any) -> bool:
        parent = e.cpu_parent
        while parent is not None:
            if parent.name.startswith("aten::") or "cpp_fused" in parent.name:
                return False
            parent = parent.cpu_parent
        return True

    kinds = Counter("kernel" if "cpp_fused" in e.name else "aten" for e in events
                    if (e.name.startswith("aten::") or "cpp_fused" in e.name) and top_level(e))
    return {"ops_per_step": (kinds["aten"] + kinds["kernel"]) / n_steps,
            "aten_ops_per_step": kinds["aten"] / n_steps, "inductor_kernels_per_step": kinds["kernel"] / n_steps}
