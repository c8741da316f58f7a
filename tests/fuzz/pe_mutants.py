#!/usr/bin/env python3
"""Mutates PE seeds and scans them with the real CLI in batches, recording per batch the wall time and
peak memory (upper bounds for every input in the batch) and any crash, hang or internal error.
Batches slower than --slow are rerun file by file so the worst single input is named.

usage: pe_mutants.py --driveraudit PATH --count N [--batch 100] [--jobs 2] [--seed 1] [--timeout 120] SEED_FILE_OR_DIR...
"""
import argparse, json, os, random, shutil, struct, subprocess, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor

def seeds_from(paths, max_bytes):
    out = []
    for p in paths:
        if os.path.isdir(p):
            for root, _, files in os.walk(p):
                for f in sorted(files):
                    full = os.path.join(root, f)
                    if os.path.isfile(full) and 64 <= os.path.getsize(full) <= max_bytes:
                        with open(full, 'rb') as fh:
                            head = fh.read(2)
                        if head == b'MZ':
                            out.append(full)
        elif os.path.isfile(p):
            out.append(p)
    return sorted(out)

def pe_offsets(b):
    """(e_lfanew, optional header offset, section table offset, section count) or None."""
    if len(b) < 0x40: return None
    lfanew = struct.unpack_from('<I', b, 0x3C)[0]
    if lfanew + 24 > len(b): return None
    count = struct.unpack_from('<H', b, lfanew + 6)[0]
    opt_size = struct.unpack_from('<H', b, lfanew + 20)[0]
    return lfanew, lfanew + 24, lfanew + 24 + opt_size, count

EXTREMES = [0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 0x10000, 0x400, 0, 1]

def mutate(data, rng):
    b = bytearray(data)
    strategy = rng.randrange(8)
    offs = pe_offsets(b)
    head = min(len(b), 0x400)
    if strategy == 0:    # random bytes anywhere
        for _ in range(rng.randint(1, 32)): b[rng.randrange(len(b))] = rng.randrange(256)
    elif strategy == 1:  # bytes in the headers and section table
        for _ in range(rng.randint(1, 12)): b[rng.randrange(head)] = rng.randrange(256)
    elif strategy == 2:  # extreme dwords in the headers
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(max(1, head - 4)); struct.pack_into('<I', b, at, rng.choice(EXTREMES))
    elif strategy == 3 and offs:  # data directories: extreme RVA/size
        _, opt, table, _ = offs
        dirs = opt + (112 if struct.unpack_from('<H', b, opt)[0] == 0x20B else 96)
        for _ in range(rng.randint(1, 4)):
            at = dirs + 8 * rng.randrange(16) + 4 * rng.randrange(2)
            if at + 4 <= len(b): struct.pack_into('<I', b, at, rng.choice(EXTREMES + [rng.randrange(1 << 32)]))
    elif strategy == 4 and offs:  # section headers: sizes and pointers, overlapping copies
        _, _, table, count = offs
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(max(1, min(count, 96)))
            at = table + 40 * i + rng.choice([8, 12, 16, 20, 36])
            if at + 4 <= len(b): struct.pack_into('<I', b, at, rng.choice(EXTREMES + [rng.randrange(len(b) + 1)]))
    elif strategy == 5:  # truncation
        del b[rng.randrange(1, len(b)):]
    elif strategy == 6:  # zeroed ranges (like discarded sections)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(b)); n = rng.randint(1, 4096); b[at:at + n] = bytes(min(n, len(b) - at))
    else:                # splice a chunk of the file over another place
        n = rng.randint(16, 4096); src = rng.randrange(len(b)); dst = rng.randrange(len(b))
        chunk = b[src:src + n]; b[dst:dst + len(chunk)] = chunk
    return bytes(b[:len(b)])

def run(cmd, timeout):
    start = time.monotonic()
    try:
        p = subprocess.run(['/usr/bin/time', '-f', '%M'] + cmd, capture_output=True, timeout=timeout)
        wall = time.monotonic() - start
        rss_kb = int(p.stderr.decode(errors='replace').strip().splitlines()[-1])
        return p.returncode, wall, rss_kb, p.stdout, p.stderr.decode(errors='replace')
    except subprocess.TimeoutExpired:
        return None, timeout, 0, b'', 'timeout'

def scan(da, paths, timeout):
    out = tempfile.mktemp(suffix='.jsonl')
    rc, wall, rss, _, err = run([da, 'scan', *paths, '--format', 'json', '--output', out, '--jobs', '1', '--no-progress', '--fail-on', 'none'], timeout)
    internal = 0
    if os.path.exists(out):
        with open(out) as fh:
            for line in fh:
                if '"DA0099"' in line: internal += 1
        os.remove(out)
    return rc, wall, rss, internal, err

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--driveraudit', required=True)
    ap.add_argument('--count', type=int, default=10000)
    ap.add_argument('--batch', type=int, default=10, help='files per process: small, so a batch over --slow names few suspects')
    ap.add_argument('--jobs', type=int, default=2)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--timeout', type=int, default=300)
    ap.add_argument('--slow', type=float, default=15.0, help='rerun a batch file by file when it takes longer (s): the per-input target')
    ap.add_argument('--max-seed-bytes', type=int, default=10 << 20)
    ap.add_argument('--keep', default='', help='folder for inputs that crash, hang or give an internal error')
    ap.add_argument('seeds', nargs='+')
    a = ap.parse_args()
    seeds = seeds_from(a.seeds, a.max_seed_bytes)
    if not seeds: sys.exit('no PE seeds found')
    rng = random.Random(a.seed)
    work = tempfile.mkdtemp(prefix='da-fuzz-')
    seed_bytes = {}
    batches = []
    for k in range(0, a.count, a.batch):
        d = os.path.join(work, f'b{k // a.batch:05}'); os.makedirs(d)
        files = []
        for i in range(k, min(a.count, k + a.batch)):
            s = rng.choice(seeds)
            if s not in seed_bytes:
                with open(s, 'rb') as fh: seed_bytes[s] = fh.read()
            f = os.path.join(d, f'm{i:06}.sys')
            with open(f, 'wb') as fh: fh.write(mutate(seed_bytes[s], rng))
            files.append(f)
        batches.append(files)
    print(f'{a.count} mutants of {len(seeds)} seeds in {len(batches)} batches, {a.jobs} in parallel', flush=True)

    results = []
    def one(files):
        rc, wall, rss, internal, err = scan(a.driveraudit, files, a.timeout)
        return files, rc, wall, rss, internal, err
    with ThreadPoolExecutor(a.jobs) as pool:
        for n, r in enumerate(pool.map(one, batches), 1):
            results.append(r)
            if n % 10 == 0: print(f'  {n}/{len(batches)} batches', flush=True)

    bad = [r for r in results if r[1] not in (0, 1, 3) or r[4] > 0]
    worst_batch = max(results, key=lambda r: r[2])
    peak = max(results, key=lambda r: r[3])
    singles = []
    for files, rc, wall, rss, internal, err in results:
        if wall > a.slow or rc not in (0, 1, 3) or internal:
            for f in files:
                r1 = scan(a.driveraudit, [f], a.timeout)
                singles.append((f, *r1))
                if (r1[0] not in (0, 1, 3) or r1[3]) and a.keep:
                    os.makedirs(a.keep, exist_ok=True); shutil.copy(f, a.keep)
    summary = {
        'mutants': a.count, 'seeds': len(seeds), 'batches': len(batches), 'batch_size': a.batch,
        'bad_batches': [(os.path.dirname(r[0][0]), r[1], r[4], r[5][-300:]) for r in bad],
        'worst_batch_seconds': round(worst_batch[2], 2), 'peak_batch_rss_mb': round(peak[3] / 1024, 1),
        'singles_rerun': len(singles),
        'worst_single': max(((s[0], round(s[2], 2), round(s[3] / 1024, 1), s[1]) for s in singles), key=lambda x: x[1], default=None),
        'single_failures': [(s[0], s[1], s[4]) for s in singles if s[1] not in (0, 1, 3) or s[4]],
    }
    print(json.dumps(summary, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if summary['single_failures'] or (bad and not singles) else 0)

if __name__ == '__main__':
    main()
