#!/usr/bin/env python3
"""ARM64 calibration: every pool call site `driveraudit tags` reports on ARM64 drivers, checked against llvm-objdump.

Usage: arm64-sites.py FOLDER [--driveraudit PATH]

For each ARM64 PE under FOLDER (read in place, nothing is copied), runs `driveraudit tags` (text output) and
`llvm-objdump -d --triple=aarch64`, then checks that each reported site is a branch in llvm's listing: blr/br
(through a register holding the IAT value) or bl/b (to an import thunk). Prints per file: sites with a tag,
sites whose tag is unknown, sites that are not branches in llvm's listing (must be 0), and `blr` instructions
right after an `adrp`+`ldr` of a pool API's IAT slot that the tool reports no site for (missed; should be 0).
"""
import argparse
import os
import re
import struct
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_DA = os.path.join(ROOT, "src", "Scanner", "bin", "Release", "net10.0", "driveraudit")
SITE = re.compile(r"^\s+(?:'.*?' 0x[0-9a-f]{8}|tag unknown)\s+(\S+)(?: \(untagged\))? at 0x([0-9a-f]+)")
INSN = re.compile(r"^\s*([0-9a-f]+):\s+(?:[0-9a-f]{2} ){4}\s*(\S+)\s*(.*)$")


def is_arm64(path):
    with open(path, "rb") as f:
        head = f.read(0x400)
    if head[:2] != b"MZ" or len(head) < 0x40:
        return False
    pe = struct.unpack_from("<I", head, 0x3C)[0]
    return pe + 6 <= len(head) and head[pe:pe + 4] == b"PE\0\0" and struct.unpack_from("<H", head, pe + 4)[0] == 0xAA64


def image_base(path):
    with open(path, "rb") as f:
        head = f.read(0x400)
    pe = struct.unpack_from("<I", head, 0x3C)[0]
    return struct.unpack_from("<Q", head, pe + 24 + 24)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--driveraudit", default=DEFAULT_DA)
    a = ap.parse_args()
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(a.folder) for f in fs if is_arm64(os.path.join(d, f)))
    totals = [0, 0, 0]
    for path in files:
        out = subprocess.run([a.driveraudit, "tags", path], capture_output=True, text=True, check=False).stdout
        sites = {}
        for line in out.splitlines():
            m = SITE.match(line)
            if m:
                sites[int(m.group(2), 16)] = (m.group(1), "unknown" not in line.split(m.group(1))[0])
        listing = {}
        listing_lines = []
        for line in subprocess.run(["llvm-objdump", "-d", "--triple=aarch64", path], capture_output=True, text=True, check=False).stdout.splitlines():
            m = INSN.match(line)
            if m:
                listing[int(m.group(1), 16)] = m.group(2)
                listing_lines.append((int(m.group(1), 16), m.group(2), m.group(3)))
        base = image_base(path)
        bad = [hex(rva) for rva in sites if listing.get(base + rva) not in ("blr", "br", "bl", "b")]
        missed = [hex(va - base) for va in pool_loads(path, listing_lines, base) if (va - base) not in sites]
        known = sum(1 for _, k in sites.values() if k)
        totals[0] += known
        totals[1] += len(sites) - known
        totals[2] += len(bad)
        totals.append(0) if len(totals) < 4 else None
        totals[3] += len(missed)
        print(f"{os.path.relpath(path, a.folder)}: {len(sites)} site(s), {known} with a tag, {len(sites) - known} unknown, "
              f"{len(bad)} not a branch in llvm-objdump{(' ' + ', '.join(bad[:5])) if bad else ''}, "
              f"{len(missed)} adrp+ldr+blr of a pool slot missed{(' ' + ', '.join(missed[:5])) if missed else ''}")
    print(f"total: {len(files)} ARM64 file(s), {totals[0]} site(s) with a tag, {totals[1]} unknown, {totals[2]} not a branch, "
          f"{totals[3] if len(totals) > 3 else 0} missed")
    return 1 if totals[2] else 0


POOL = ("ExAllocatePool", "ExAllocatePoolWithTag", "ExAllocatePoolWithQuota", "ExAllocatePoolWithQuotaTag",
        "ExAllocatePoolWithTagPriority", "ExAllocatePool2", "ExAllocatePool3", "ExFreePoolWithTag")


def pool_loads(path, lines, base):
    """VAs of `blr xN` whose two previous instructions are `adrp xN, page` and `ldr xN, [xN, #off]` of a pool slot."""
    out = subprocess.run(["llvm-readobj", "--coff-imports", path], capture_output=True, text=True, check=False).stdout
    slots, module, iat, k = set(), None, None, 0
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Name:"):
            module, k = line.split(":", 1)[1].strip().lower(), 0
        elif line.startswith("ImportAddressTableRVA:"):
            iat = int(line.split(":", 1)[1], 16)
        elif line.startswith("Symbol:"):
            name = line.split(":", 1)[1].split("(")[0].strip()
            if module and module.startswith("ntoskrnl") and name in POOL:
                slots.add(base + iat + 8 * k)
            k += 1
    found = []
    for i in range(2, len(lines)):
        (va, mn, ops), (_, m1, o1), (_, m0, o0) = lines[i], lines[i - 1], lines[i - 2]
        if mn != "blr" or m1 != "ldr" or m0 != "adrp":
            continue
        a = re.match(r"(x\d+), (0x[0-9a-f]+)", o0)
        l = re.match(r"(x\d+), \[(x\d+)(?:, #(\d+))?\]", o1)
        if a and l and l.group(2) == a.group(1) and ops.strip() == l.group(1) and int(a.group(2), 16) + int(l.group(3) or 0) in slots:
            found.append(va)
    return found


if __name__ == "__main__":
    sys.exit(main())
