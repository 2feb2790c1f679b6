#!/usr/bin/env python3
"""Adds the best of a fuzz run's inputs to the committed corpus, keeping it small.

    fuzz/trim.py BINARY TARGET WORK_DIR [MAX_FILES]

Runs libFuzzer's merge over corpus/TARGET and WORK_DIR with edge coverage only
(-use_counters=0 -use_cmp=0), then picks inputs greedily by new edges covered
(files already in corpus/TARGET are always kept) until every edge is covered or
the corpus holds MAX_FILES (default 300). New files are named by their SHA-1.
Prints how many edges the kept corpus covers out of all the run reached.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile


def main():
    binary, target, work = sys.argv[1:4]
    cap = int(sys.argv[4]) if len(sys.argv) > 4 else 300
    here = os.path.dirname(os.path.abspath(__file__))
    corpus = os.path.join(here, "corpus", target)
    with tempfile.TemporaryDirectory() as tmp:
        control = os.path.join(tmp, "control")
        out = os.path.join(tmp, "out")
        os.mkdir(out)
        subprocess.run(
            [binary, "-merge=1", "-use_counters=0", "-use_cmp=0",
             f"-merge_control_file={control}", out, corpus, work],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lines = open(control).read().split("\n")
        n = int(lines[0])
        files = lines[2:2 + n]
        features = {}
        for line in lines[2 + n:]:
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "FT":
                features[int(parts[1])] = set(parts[2:])
    kept = [i for i, f in enumerate(files) if os.path.dirname(os.path.abspath(f)) == corpus]
    covered = set().union(set(), *(features.get(i, set()) for i in kept))
    every = set().union(set(), *features.values())
    added = 0
    while covered != every and len(kept) < cap:
        best = max(features, key=lambda i: (len(features[i] - covered), -os.path.getsize(files[i])))
        kept.append(best)
        covered |= features[best]
        data = open(files[best], "rb").read()
        name = os.path.join(corpus, hashlib.sha1(data).hexdigest())
        if not os.path.exists(name):
            shutil.copyfile(files[best], name)
            added += 1
    print(f"{target}: corpus {len(kept)} files (+{added}), "
          f"{len(covered)} of {len(every)} edges the run reached")


if __name__ == "__main__":
    main()
