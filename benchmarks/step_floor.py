"""The floor of a training step, and its operator / kernel-launch count (used by train_speed.py).

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

Traffic. The same recording also keeps the step's memory passes that no composition of PyTorch's kernels avoids,
each timed alone the same way but from a cold cache: the rows it gathers (``index_select``) from the model's constant
tables (the propagated feature buffers: hundreds of MB, so the rows come from main memory; timed on the step's own
table with fresh random rows each repeat) and the optimizer's fused update (``_fused_adamw_`` and kin, which read
and write every parameter and its state once; replayed on copies). A gather-GEMM kernel that reads the rows while it
multiplies could hide the gathers under the arithmetic; PyTorch has none on the CPU, so here they add to the
products: ``bound = floor + traffic`` is what the step costs with everything else (softmaxes, normalisations, the
BPR terms, index bookkeeping, sampling, dispatch) free.

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
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_PRODUCTS = {"mm", "addmm", "bmm", "baddbmm"}
_UPDATES = {"_fused_adamw_", "_fused_adam_", "_fused_sgd_"}  # the optimizers' one-pass fused updates
_LAUNCHES = {"cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx", "cudaGraphLaunch"}


@dataclass
class Product:
    """One distinct costed operation of the step, its key and how often a step runs it: ``kind`` gemm | spmm (a
    matrix product, ``flops``) or gather | update (memory traffic, ``nbytes`` read plus written). ``operand``: what
    timing it alone needs from the step (the sparse matrix of an spmm, the table of a gather, the update's op and
    copies of its arguments)."""

    kind: str
    key: tuple[Any, ...]
    flops: int = 0
    nbytes: int = 0
    calls: int = 0
    operand: Any = field(default=None, repr=False)
    seconds: float = 0.0  # measured time of one call

    @property
    def traffic(self) -> bool:
        return self.kind in ("gather", "update")

    @property
    def amount(self) -> float:
        """GB moved by one call (traffic) or its GFLOP (a product)."""
        return (self.nbytes if self.traffic else self.flops) / 1e9

    def describe(self) -> str:
        if self.kind == "spmm":
            rows, cols, nnz, n = self.key[1:]
            return f"spmm ({rows}x{cols}, nnz {nnz}) @ ({cols}x{n})"
        if self.kind == "gather":
            shape, rows = self.key[1:3]
            return f"gather {rows} rows of ({'x'.join(map(str, shape))})"
        if self.kind == "update":
            name, n_tensors, numel = self.key[1:]
            return f"{name.strip('_')} ({n_tensors} tensors, {numel / 1e6:.2f} M elements)"
        b, m, k, n, a_t, b_t = self.key[1:]
        batch = f"{b}x " if b > 1 else ""
        return f"gemm {batch}({m}x{k}{'^T' if a_t else ''}) @ ({k}x{n}{'^T' if b_t else ''})"


def _transposed(t: torch.Tensor) -> bool:
    """Column-major operand (a transposed view), which BLAS reads differently from a row-major one."""
    return t.dim() >= 2 and t.stride(-1) != 1


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _update_bytes(func: Any, args: tuple[Any, ...]) -> int:
    """Bytes a fused optimizer update moves: every tensor-list argument read once, the ones it updates in place
    (the schema's write annotations: parameters and optimizer state) written once."""
    total = 0
    for arg, spec in zip(args, func._schema.arguments):
        if isinstance(arg, (list, tuple)) and arg and isinstance(arg[0], torch.Tensor):
            size = sum(_nbytes(t) for t in arg)
            total += size * (2 if spec.alias_info is not None and spec.alias_info.is_write else 1)
    return total


class _Recorder(TorchDispatchMode):
    """Collects the matrix products and the traffic (see the module doc) dispatched while active (forward, autograd
    backward and the optimizer step); ``tables``: the constant tables whose gathered rows count as traffic."""

    def __init__(self, tables: list[torch.Tensor]) -> None:
        super().__init__()
        self.products: dict[tuple[Any, ...], Product] = {}
        self.tables = {_storage(t) for t in tables}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if name == "index_select" and args[0].layout == torch.strided and _storage(args[0]) in self.tables:
            src, rows = args[0], int(args[2].numel())
            key = ("gather", tuple(src.shape), rows, args[1])
            row_bytes = _nbytes(src) // max(src.shape[args[1]], 1)
            self.products.setdefault(key, Product("gather", key, nbytes=2 * rows * row_bytes, operand=src)).calls += 1
        elif name in _UPDATES:
            tensors = args[0]  # the parameters
            key = ("update", name, len(tensors), sum(t.numel() for t in tensors))
            if key not in self.products:  # copies, so that timing it alone leaves the model as it is
                copied = tuple([t.clone() for t in a] if isinstance(a, (list, tuple)) else a for a in args)
                self.products[key] = Product("update", key, nbytes=_update_bytes(func, args),
                                             operand=(func, copied, kwargs))
            self.products[key].calls += 1
        elif name in _PRODUCTS:
            mats = [a for a in args if isinstance(a, torch.Tensor) and a.dim() == (3 if "bmm" in name else 2)]
            a, b = mats[-2], mats[-1]  # addmm(bias, a, b): the last two are the factors
            if a.layout != torch.strided:
                key: tuple[Any, ...] = ("spmm", a.shape[0], a.shape[1], int(a._nnz()), b.shape[-1])
                prod = self.products.setdefault(key, Product("spmm", key, 2 * int(a._nnz()) * b.shape[-1], operand=a))
            else:
                bsz = a.shape[0] if a.dim() == 3 else 1
                m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
                key = ("gemm", bsz, m, k, n, _transposed(a), _transposed(b))
                prod = self.products.setdefault(key, Product("gemm", key, 2 * bsz * m * k * n))
            prod.calls += 1
        return func(*args, **kwargs)


def record_products(step: Callable[[], Any], n_steps: int, tables: list[torch.Tensor] | None = None
                    ) -> list[Product]:
    """The distinct matrix products and traffic of ``n_steps`` eager steps, with ``calls`` summed over them;
    ``tables``: the model's constant tables (gathers from anything else are not counted)."""
    rec = _Recorder(tables or [])
    with rec:
        for _ in range(n_steps):
            step()
    return list(rec.products.values())


def _operands(p: Product, device: torch.device, repeats: int) -> Callable[[], Any]:
    """The product or traffic ``p`` alone, ready to time (``repeats`` + 1 calls)."""
    if p.kind == "gather":
        table, dim = p.operand, p.key[3]
        # distinct sorted rows, as the step's (unique) ones, drawn afresh for every call (not the last call's rows,
        # still in the cache)
        index = iter([torch.randperm(table.shape[dim], device=device)[:p.key[2]].sort().values
                      for _ in range(repeats + 1)])
        return lambda: table.index_select(dim, next(index))
    if p.kind == "update":
        func, args, kwargs = p.operand
        return lambda: func(*args, **kwargs)
    if p.kind == "spmm":
        x = torch.randn(p.key[2], p.key[4], device=device)
        a = p.operand
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


def _last_level_cache_bytes(device: torch.device) -> int:
    """The last-level cache: the GPU's L2, or the CPU's highest cache level that sysfs lists (64 MiB if unknown)."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).L2_cache_size)
    sizes = {}
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            size = (index / "size").read_text().strip()  # e.g. "107520K"
            unit = {"K": 2**10, "M": 2**20, "G": 2**30}[size[-1]]
            sizes[int((index / "level").read_text())] = int(size[:-1]) * unit
        except (OSError, ValueError, KeyError):
            continue
    return sizes[max(sizes)] if sizes else 64 * 2**20


def _sweeps(products: list[Product], device: torch.device) -> dict[int, list[torch.Tensor]]:
    """For each traffic product (by id): flat views of twice the last-level cache's worth of memory other than its
    own table, to read before timing it. Taken from the step's gathered tables first (memory the process holds
    anyway, so the sweep adds nothing to its peak), the rest from one buffer allocated for the purpose."""
    need = 2 * _last_level_cache_bytes(device) // 4  # float32 elements
    tables = {_storage(p.operand): p.operand for p in products if p.kind == "gather" and p.operand.is_contiguous()
              and p.operand.dtype == torch.float32}
    extra: list[torch.Tensor] = []
    out = {}
    for p in products:
        if not p.traffic:
            continue
        own = _storage(p.operand) if p.kind == "gather" else None
        views, have = [], 0
        for key, table in tables.items():
            if key != own and have < need:
                views.append(table.view(-1)[:need - have])
                have += views[-1].numel()
        if have < need:
            if not extra or extra[0].numel() < need - have:
                # written once, so that its pages are real memory (reads of never-written pages map one zero page)
                extra[:] = [torch.ones(need - have, device=device)]
            views.append(extra[0][:need - have])
        out[id(p)] = views
    return out


def time_products(products: list[Product], device: torch.device, repeats: int = 5) -> None:
    """Set ``seconds`` of each product: the median over ``repeats`` of its time alone (after one warm-up call).

    A product is timed with its operands in the cache, as a GEMM's blocks are once it runs; a traffic pass after
    reading twice the last-level cache's worth of other memory (:func:`_sweeps`), because in the step the gigabyte or
    so the products and the other passes touch between two of its calls has evicted its data (an update replayed at
    once would find the parameters it just wrote still cached). The sweep reads, so that it leaves clean lines: the
    pass timed after it does not pay for writing the sweep's lines back."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sweeps = _sweeps(products, device)
    for p in products:
        fn = _operands(p, device, repeats)
        fn()
        sync()
        times = []
        for _ in range(repeats):
            for view in sweeps.get(id(p), []):
                view.sum()
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t0)
        p.seconds = statistics.median(times)


def floor_summary(products: list[Product], n_steps: int) -> dict[str, float]:
    """Per step: FLOPs, the floor in seconds, and the achieved rates of its GEMMs and SpMMs (GFLOP/s); the traffic's
    GB, ms and GB/s per kind (gather, update); ``floor_step_s`` (the products) and ``bound_step_s`` (plus the
    traffic)."""
    out: dict[str, float] = {}
    product_keys, traffic_keys = ("gflop_per_step", "floor_ms", "gflops"), ("gb_per_step", "ms", "gbps")
    for kind in ("gemm", "spmm", "gather", "update"):
        amount_key, ms_key, rate_key = traffic_keys if kind in ("gather", "update") else product_keys
        ps = [p for p in products if p.kind == kind]
        amount = sum(p.amount * p.calls for p in ps) / n_steps  # GFLOP or GB
        secs = sum(p.seconds * p.calls for p in ps) / n_steps
        out[f"{kind}_{amount_key}"] = amount
        out[f"{kind}_{ms_key}"] = secs * 1e3
        out[f"{kind}_{rate_key}"] = amount / secs if secs else 0.0
    out["floor_step_s"] = (out["gemm_floor_ms"] + out["spmm_floor_ms"]) / 1e3
    out["bound_step_s"] = out["floor_step_s"] + (out["gather_ms"] + out["update_ms"]) / 1e3
    return out


def product_table(products: list[Product], n_steps: int) -> str:
    """One line per distinct product, then per distinct traffic: calls per step, GFLOP (GB) per call, measured ms per
    call and GFLOP/s (GB/s)."""
    lines = []
    for traffic, unit in ((False, "GFLOP"), (True, "GB")):
        lines.append(f"{'traffic' if traffic else 'product':<52}{'calls/step':>11}{unit:>9}{'ms':>9}"
                     f"{unit + '/s':>9}")
        for p in sorted((p for p in products if p.traffic == traffic), key=lambda p: -p.seconds * p.calls):
            rate = p.amount / p.seconds if p.seconds else 0.0
            lines.append(f"{p.describe():<52}{p.calls / n_steps:>11.2f}{p.amount:>9.4f}{p.seconds * 1e3:>9.3f}"
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
