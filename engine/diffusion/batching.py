"""Denoiser passes shared across requests: runs in different threads that need the network at the same
moment get one batch.

A sampler calls the network once per step. `BatchedNetwork` stands in for the network: each call
waits its turn; the caller whose turn it is gathers the calls of every run in progress (each run is a
`member` while it samples; the gathering waits at most `gather_s` for a late one), runs them as one
batch (rows of different lengths padded and masked, as the sampler already masks a shorter window)
and hands each caller its own rows. Runs so go in step with each other. A request that starts while
others run joins them at their next step; each keeps its own seed, template, controls and step
count, since only the network pass is shared. A row's output is the one it gets alone, up to the
rounding of a larger matrix product.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.diffusion.model import Denoised

Network = Callable[..., Denoised]  # (x_t, t, x0_prev, attention_mask) -> Denoised


@dataclass
class Call:
    """One sampler's pass: its inputs, and its output once a batch has run it."""

    x: torch.Tensor  # [B, L, D]
    t: torch.Tensor  # [B]
    x0_prev: torch.Tensor | None
    attention_mask: torch.Tensor | None  # [B, L]
    out: Denoised | None = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class BatchStats:
    """What the shared passes did: network passes run, sampler calls they served, rows in them."""

    passes: int = 0
    calls: int = 0
    rows: int = 0
    largest: int = 0  # most sampler calls one pass served


class BatchedNetwork:
    """A thread-safe stand-in for `network` that merges calls made at the same moment (see the module
    docstring). `max_rows` bounds one pass; calls past it wait for the next."""

    def __init__(self, network: Network, max_rows: int = 256, gather_s: float = 0.02):
        self.network = network
        self.max_rows = max_rows
        self.gather_s = gather_s
        self.stats = BatchStats()
        self._turn = threading.Condition()
        self._waiting: list[Call] = []
        self._running = False
        self._members = 0

    @contextmanager
    def member(self) -> Iterator[None]:
        """A run in progress: the passes wait (briefly) for its call, so that it shares them."""
        with self._turn:
            self._members += 1
        try:
            yield
        finally:
            with self._turn:
                self._members -= 1
                self._turn.notify_all()

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, x0_prev: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None) -> Denoised:
        call = Call(x_t, t, x0_prev, attention_mask)
        with self._turn:
            self._waiting.append(call)
            self._turn.notify_all()  # a pass gathering calls may now have them all
        while True:
            with self._turn:
                while self._running and not call.done:
                    self._turn.wait()  # the pass running now, or the next, holds this call
                if call.done:
                    break
                self._running = True  # this caller runs the next pass: first it gathers the runs' calls
                deadline = time.monotonic() + self.gather_s
                while len(self._waiting) < self._members and (left := deadline - time.monotonic()) > 0:
                    self._turn.wait(left)
                batch = self._take()
            self._run(batch)
        if call.error is not None:
            raise call.error
        return call.out

    def _take(self) -> list[Call]:
        """The calls waiting, oldest first, up to max_rows (at least one)."""
        batch, rows = [], 0
        while self._waiting and (not batch or rows + self._waiting[0].x.shape[0] <= self.max_rows):
            rows += self._waiting[0].x.shape[0]
            batch.append(self._waiting.pop(0))
        return batch

    def _run(self, batch: list[Call]) -> None:
        try:
            if len(batch) == 1:
                call = batch[0]
                call.out = self.network(call.x, call.t, call.x0_prev, call.attention_mask)
            else:
                for call, out in zip(batch, split(self.network(*merge(batch)), batch), strict=True):
                    call.out = out
        except BaseException as exc:  # every caller of this pass raises it, not only the one that ran it
            for call in batch:
                call.error = exc
        finally:
            with self._turn:
                self._running = False
                for call in batch:
                    call.done = True
                self.stats.passes += 1
                self.stats.calls += len(batch)
                self.stats.rows += sum(c.x.shape[0] for c in batch)
                self.stats.largest = max(self.stats.largest, len(batch))
                self._turn.notify_all()


def merge(batch: list[Call]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """The calls' inputs as one batch: rows padded to the longest, the padding masked out of attention
    (no mask when every row is as long and none had one); a missing self-conditioning input as zeros."""
    length = max(c.x.shape[1] for c in batch)
    self_conditioned = any(c.x0_prev is not None for c in batch)
    masked = any(c.attention_mask is not None or c.x.shape[1] < length for c in batch)

    def padded(tensor: torch.Tensor) -> torch.Tensor:
        return F.pad(tensor, (0, 0, 0, length - tensor.shape[1]))

    x = torch.cat([padded(c.x) for c in batch])
    t = torch.cat([c.t for c in batch])
    x0_prev = torch.cat([padded(c.x0_prev if c.x0_prev is not None else torch.zeros_like(c.x))
                         for c in batch]) if self_conditioned else None
    mask = None
    if masked:
        mask = torch.cat([F.pad(c.attention_mask.long() if c.attention_mask is not None else
                                torch.ones(c.x.shape[:2], dtype=torch.long, device=c.x.device),
                                (0, length - c.x.shape[1])) for c in batch])
    return x, t, x0_prev, mask


def split(out: Denoised, batch: list[Call]) -> list[Denoised]:
    """Each call's rows and positions of a merged pass's output."""
    outputs, start = [], 0
    for call in batch:
        rows, length = call.x.shape[:2]
        part = slice(start, start + rows)
        regressed = out.regressed_x0[part, :length] if out.regressed_x0 is not None else None
        outputs.append(Denoised(out.logits[part, :length], out.embeddings, regressed))
        start += rows
    return outputs
