#!/usr/bin/env python3
"""Picks a small corpus from a libFuzzer merge control file.

libFuzzer's -merge=1 keeps every input that adds a feature, which for
task_lifecycle is over a thousand files. This keeps the checked-in corpus
small (docs/testing.md). The control file lists, for each input in the
order the merge ran them (smallest first), the edges (COV) and features
(FT) it added to those of the inputs before it. Taken: the files named
seed-* or regress-*, every input that added an edge (so every edge stays
covered), then the inputs that added the most features, up to
--max-files files and --max-bytes bytes.

  fuzzer -merge=1 -merge_control_file=ctl.txt /tmp/empty corpus/ new/
  select_corpus.py ctl.txt --out /tmp/selected [--max-files 150]
"""
import argparse
import os
import shutil


def parse(path):
    with open(path) as f:
        lines = f.read().split("\n")
    n = int(lines[0])
    files = lines[2:2 + n]
    cov = {i: set() for i in range(n)}
    ft = {i: set() for i in range(n)}
    size = {}
    for line in lines[2 + n:]:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "STARTED":
            size[int(parts[1])] = int(parts[2])
        elif parts[0] == "FT":
            ft[int(parts[1])] = set(parts[2:])
        elif parts[0] == "COV":
            cov[int(parts[1])] = set(parts[2:])
    return files, cov, ft, size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("control")
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-files", type=int, default=150)
    ap.add_argument("--max-bytes", type=int, default=512 * 1024)
    a = ap.parse_args()
    files, cov, ft, size = parse(a.control)
    n = len(files)
    chosen = []
    got_cov, got_ft = set(), set()
    total = 0

    def take(i):
        nonlocal total
        chosen.append(i)
        got_cov.update(cov[i])
        got_ft.update(ft[i])
        total += size.get(i, 0)

    for i in range(n):
        base = os.path.basename(files[i])
        if base.startswith("seed-") or base.startswith("regress-") or cov[i]:
            take(i)
    rest = sorted((i for i in range(n) if i not in chosen and ft[i]),
                  key=lambda i: -len(ft[i]))
    for i in rest:
        if len(chosen) >= a.max_files or total + size[i] > a.max_bytes:
            break
        take(i)
    all_cov = set().union(*cov.values())
    all_ft = set().union(*ft.values())
    os.makedirs(a.out, exist_ok=True)
    for i in chosen:
        src = files[i]
        base = os.path.basename(src)
        shutil.copy(src, os.path.join(a.out, base))
    print(f"{len(chosen)} files, {total} bytes: {len(got_cov)}/{len(all_cov)} "
          f"edges, {len(got_ft)}/{len(all_ft)} features")


if __name__ == "__main__":
    main()
