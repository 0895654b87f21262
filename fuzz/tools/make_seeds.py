#!/usr/bin/env python3
"""Writes the hand-made seed inputs of the fuzz corpora (fuzz/corpus/*/seed-*).

Each seed is a small program in the harness's byte encoding (see the op
tables in fuzz/task_lifecycle.c, fuzz/channel.c, fuzz/timer.c). Run from the
repository root: python3 fuzz/tools/make_seeds.py. Inputs found by fuzzing
are added to the corpora separately (docs/testing.md).
"""
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")

# ---- task_lifecycle ---------------------------------------------------------
# Top-level ops (byte % 17) and their argument bytes.
SPAWN, SSPAWN, STEP, IDLE, CLONE, WAKE, WBR, DROP = 0, 1, 2, 3, 4, 5, 6, 7
CANCEL, DETACH, JOIN, SLOT, ADVANCE, SPAWNER, FAIL, DRIVE, DESTROY = range(8, 17)


def p(handle=1, kind=0, pends=0, sp=0):
    return handle | kind << 1 | pends << 2 | sp << 6


def poll(ops=(), how=None, arg=0):
    """The bytes one poll reads: op count, ops, then the wake arrangement
    (how: 0 yield, 1 waker to the harness, 2 waker kept in the future,
    3 sleep arg microseconds, 4 await task arg, 5 nothing) unless it
    completes."""
    out = [len(ops)] + [b for op in ops for b in op]
    if how is not None:
        out += [how, arg]
    return out


TASK = {
    # Yield three times, complete, join the output.
    "seed-yield-join": [0, SPAWN, p(pends=3), IDLE]
    + poll(how=0) * 3 + poll() + [JOIN, 0, 0, JOIN, 0, 0],
    # Two tasks hand their wakers to the harness; wake / clone / drop them.
    "seed-pool-wakers": [0, SPAWN, p(pends=2), SPAWN, p(handle=0, pends=2),
                         STEP] + poll(how=1) + [STEP] + poll(how=1)
    + [CLONE, 0, WBR, 1, STEP] + poll(how=1) + [WAKE, 0, WAKE, 0, DROP, 0,
                                                  IDLE] + poll() * 2,
    # Sleep on the manual clock; advance it past the deadline.
    "seed-sleep": [0, SPAWN, p(pends=1), STEP] + poll(how=3, arg=20)
    + [ADVANCE, 10, STEP, ADVANCE, 15, STEP] + poll() + [JOIN, 0, 0],
    # Cancel an idle task, detach another, join both ways.
    "seed-cancel-detach": [6, SPAWN, p(pends=5), SPAWN, p(pends=5), IDLE]
    + poll(how=5) * 2 + [CANCEL, 0, DETACH, 1, STEP, JOIN, 0, 0, JOIN, 1, 0,
                         CANCEL, 0],
    # A task spawns children from its poll, one through a spawner.
    "seed-children": [0, SPAWNER, 0, SPAWN, p(pends=1), IDLE]
    + poll(ops=[(1, p(pends=1)), (2, p(handle=0))], how=0)
    + poll(how=0) + poll() + poll() + poll() + [SPAWNER, 2],
    # Remote spawns through a spawner, then drive with run / join / block_on.
    "seed-drive": [0, SPAWNER, 0, SSPAWN, p(pends=2), SPAWNER, 2, DRIVE, 0]
    + poll(how=0) * 2 + poll() + [SPAWN, p(pends=1), DRIVE, 1]
    + poll(how=0) + poll() + [DRIVE, 2, p(pends=0)] + poll(),
    # Task 1 awaits task 0's handle; task 0 awaits its own (a cycle).
    "seed-join-await": [2, SPAWN, p(pends=2), SPAWN, p(pends=1), STEP]
    + poll(how=4, arg=0) + [STEP] + poll(how=4, arg=1) + [CANCEL, 0, IDLE],
    # Allocation failures: the executor's creation, then a spawn.
    "seed-alloc-fail": [1, FAIL, 0, SPAWN, p(pends=1), SPAWN, p(pends=0),
                        IDLE] + poll(ops=[(12, 0), (1, p())], how=0) + poll(),
    # Waker kept in the future's state, woken by the harness; re-entrant
    # executor calls from a poll; destroy with everything pending.
    "seed-slot-destroy": [4, SPAWN, p(pends=3), STEP]
    + poll(ops=[(13, 0), (13, 1), (13, 3)], how=2)
    + [SLOT, 1, STEP] + poll(how=2) + [SLOT, 0, DESTROY, 255, JOIN, 0, 0],
}

# ---- channel ------------------------------------------------------------------
CREATE, TRY_SEND, SEND, TRY_RECV, RECV, CLONE_TX, DROP_TX, DROP_RX, BURST, BAD = range(10)
CHAN = {
    "seed-fifo": [CREATE, 4, 3, TRY_SEND, 0, 0, TRY_SEND, 0, 0, SEND, 0, 0,
                  TRY_SEND, 0, 0, TRY_RECV, 0, 0, RECV, 0, 0, TRY_RECV, 0, 0,
                  TRY_RECV, 0, 0],
    "seed-wrap": [CREATE, 7, 2, BURST, 0, 9, BURST, 0, 8, BURST, 0, 13,
                  BURST, 0, 4, BURST, 0, 21],
    "seed-disconnect": [CREATE, 1, 4, CLONE_TX, 0, 0, TRY_SEND, 0, 1,
                        DROP_TX, 0, 0, TRY_SEND, 0, 0, DROP_TX, 0, 0,
                        TRY_RECV, 0, 0, RECV, 0, 0, RECV, 0, 0],
    "seed-receiver-gone": [CREATE, 5, 5, BURST, 0, 13, DROP_RX, 0, 1,
                           TRY_SEND, 0, 0, SEND, 0, 0],
    "seed-alloc-bad": [CREATE, 0x40, 1, CREATE, 0x80, 1, CREATE, 0x08, 1,
                       CREATE, 0x10, 1, CREATE, 0x18, 1, CREATE, 3, 0, BAD, 0, 0],
    "seed-three": [CREATE, 0, 0, CREATE, 6, 15, CREATE, 2, 7, BURST, 1, 41,
                   BURST, 2, 17, BURST, 1, 40, DROP_RX, 1, 1],
}

# ---- timer --------------------------------------------------------------------
REG, REG2, CANCEL_T, ADV, FIRE, NOW, COMPACT, SPOLL, SDROP, TBAD = range(10)
TIMER = {
    "seed-ties": [REG, 0, 5, REG, 1, 5, REG, 2, 5, REG, 3, 2, ADV, 10, 0],
    "seed-cancel": [REG, 0, 10, REG, 1, 20, REG, 2, 30, CANCEL_T, 1, 0,
                    REG, 0, 40, ADV | 0x80, 1, 0, 0],
    "seed-due-and-far": [REG, 0, 0x45, REG, 1, 0xff, REG, 2, 0xc3, FIRE, 0,
                         COMPACT, 0, ADV | 0x80, 255],
    "seed-rearm-in-wake": [REG, 0, 1, REG, 1, 1, ADV, 5, 1 | 8, 3, 2 | 12,
                           ADV, 9],
    "seed-sleep": [SPOLL, 0, 41, SPOLL, 1, 0x08, NOW, 3, SPOLL, 0, 0,
                   ADV | 0x80, 2, 0, SPOLL, 0, 0, SPOLL, 1, 0x80, SDROP, 1],
    "seed-many": sum(([REG, i, (i * 37) % 64] for i in range(40)), [])
    + [COMPACT, 0, CANCEL_T, 7, CANCEL_T, 21, ADV, 60] + [0] * 16 + [TBAD, 3],
}


def write(name, seeds):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    for fname, data in seeds.items():
        with open(os.path.join(d, fname), "wb") as f:
            f.write(bytes(b & 0xFF for b in data))


write("task_lifecycle", TASK)
write("channel", CHAN)
write("timer", TIMER)
