#!/usr/bin/env python3
"""A64 reference runs for moat's differential oracle (frontend-aarch64's
tests/unicorn_oracle.rs), on Unicorn: QEMU's CPU core as a library, run here
as a separate process so moat never links it.

Reads one test case per line on stdin, as JSON:

    {"id": 7, "code_base": N, "code": [word, ...],
     "x": [x0 .. x30], "sp": N, "nzcv": 0..15,
     "v": [[lo, hi] x 32], "fpcr": N,          (both optional)
     "mem_base": N, "mem": "hex bytes"}

runs `code` from `code_base` at EL1h (Unicorn's reset state: MMU off,
FP/SIMD enabled) on the "max" CPU model, until the pc reaches the end of the
code or an exception, and writes one JSON line per case to stdout:

    {"id": 7, "x": [...], "sp": N, "pc": N, "nzcv": N, "fpsr": N,
     "v": [[lo, hi] x 32], "mem": "hex bytes",
     "exception": null | {"kind": "interrupt", "number": N, "pc": N}
                       | {"kind": "error", "message": "...", "pc": N}}

The pc of an exception is the address of the instruction that raised it.
Numbers are plain JSON integers (Python's are unbounded; u64 on the Rust
side). Needs `python3 -m pip install unicorn==2.1.4`; exits 3 with a
message on stderr when the module is missing, so the test can say SKIPPED.
"""

import json
import sys

try:
    from unicorn import Uc, UcError, UC_ARCH_ARM64, UC_MODE_ARM, UC_HOOK_INTR
    from unicorn import arm64_const as a64
except ImportError as error:  # the test turns this into a loud skip
    print(f"a64-oracle: the unicorn module is missing ({error})", file=sys.stderr)
    sys.exit(3)

PAGE = 0x1000
# An upper bound on executed instructions: generated code branches only
# forward, so this is a guard, never a limit a correct case reaches.
MAX_INSNS = 100_000

X_REGS = [getattr(a64, f"UC_ARM64_REG_X{n}") for n in range(29)] + [
    a64.UC_ARM64_REG_X29,
    a64.UC_ARM64_REG_X30,
]
Q_REGS = [getattr(a64, f"UC_ARM64_REG_Q{n}") for n in range(32)]
MASK64 = (1 << 64) - 1


def pages(base, size):
    """The page-aligned range covering [base, base + size)."""
    start = base & ~(PAGE - 1)
    end = (base + max(size, 1) + PAGE - 1) & ~(PAGE - 1)
    return start, end


def map_ranges(uc, ranges):
    """Maps the union of page ranges (overlapping ones merged)."""
    merged = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in merged:
        uc.mem_map(start, end - start)


def run(case):
    code = case["code"]
    code_base = case["code_base"]
    code_bytes = b"".join(w.to_bytes(4, "little") for w in code)
    mem_base = case["mem_base"]
    mem = bytes.fromhex(case["mem"])

    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.ctl_set_cpu_model(a64.UC_CPU_ARM64_MAX)
    # The code page range includes one word past the end: the stop address.
    map_ranges(uc, [pages(code_base, len(code_bytes) + 4), pages(mem_base, len(mem))])
    uc.mem_write(code_base, code_bytes)
    uc.mem_write(mem_base, mem)

    for reg, value in zip(X_REGS, case["x"]):
        uc.reg_write(reg, value & MASK64)
    uc.reg_write(a64.UC_ARM64_REG_SP, case["sp"] & MASK64)
    pstate = uc.reg_read(a64.UC_ARM64_REG_PSTATE)
    uc.reg_write(a64.UC_ARM64_REG_PSTATE, (pstate & 0x0FFFFFFF) | ((case["nzcv"] & 0xF) << 28))
    if "v" in case:
        for reg, (lo, hi) in zip(Q_REGS, case["v"]):
            uc.reg_write(reg, (lo & MASK64) | ((hi & MASK64) << 64))
    if "fpcr" in case:
        uc.reg_write(a64.UC_ARM64_REG_FPCR, case["fpcr"])

    exception = None

    def on_interrupt(uc, number, _data):
        nonlocal exception
        # Unicorn leaves the pc on the instruction that raised it.
        exception = {"kind": "interrupt", "number": number, "pc": uc.reg_read(a64.UC_ARM64_REG_PC)}
        uc.emu_stop()

    uc.hook_add(UC_HOOK_INTR, on_interrupt)
    end = code_base + len(code_bytes)
    try:
        uc.emu_start(code_base, end, count=MAX_INSNS)
    except UcError as error:
        exception = {"kind": "error", "message": str(error), "pc": uc.reg_read(a64.UC_ARM64_REG_PC)}

    v = []
    for reg in Q_REGS:
        q = uc.reg_read(reg)
        v.append([q & MASK64, (q >> 64) & MASK64])
    return {
        "id": case.get("id"),
        "x": [uc.reg_read(reg) for reg in X_REGS],
        "sp": uc.reg_read(a64.UC_ARM64_REG_SP),
        "pc": uc.reg_read(a64.UC_ARM64_REG_PC),
        "nzcv": (uc.reg_read(a64.UC_ARM64_REG_PSTATE) >> 28) & 0xF,
        "fpsr": uc.reg_read(a64.UC_ARM64_REG_FPSR),
        "v": v,
        "mem": bytes(uc.mem_read(mem_base, len(mem))).hex(),
        "exception": exception,
    }


def main():
    out = sys.stdout
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        out.write(json.dumps(run(json.loads(line)), separators=(",", ":")))
        out.write("\n")
    out.flush()


if __name__ == "__main__":
    main()
