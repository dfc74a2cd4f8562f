#!/usr/bin/env python3
"""Gives every lead enterprise in the clusters seed a SAMPLE unified social credit code.

Sets "enterprise": "enterprises/<code>" on each entry of cluster.leadEnterprises in
services/clusters/seed/clusters.json (protobuf JSON of clustergov.clusters.v1.SeedData).

The codes are NOT the enterprises' real codes. They are deterministic, well-formed codes
(GB 32100-2015, as checked by common/refdata/uscc.h) that are recognisably samples:

    "91"                      registration authority 9 (market regulation), type 1 (enterprise)
    <6-digit league code>     the first core region of the cluster where the name first appears
    "CG" + 7 digits           organization part: "CG" and a sequence number, 1-based, assigned to
                              each distinct nameZh in order of first appearance in the file
    <check character>         GB 32100-2015 modulo-31 check

The same nameZh anywhere in the file gets the same code. Running the script again changes
nothing. An existing "enterprise" value that is not a sample code (a real code entered by hand)
is left alone and reported.

Usage: scripts/seed_sample_uscc.py [--check] [path/to/clusters.json]
  --check   do not write; exit 1 when the file is not up to date.
"""

import argparse
import json
import os
import re
import sys
import tempfile

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
SAMPLE_PREFIX = "CG"  # organization part of sample codes: "CG" + 7 digits
SAMPLE_CODE = re.compile(r"^enterprises/91\d{6}CG\d{7}[0-9A-Z]$")
DEFAULT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                            "services", "clusters", "seed", "clusters.json")


def check_character(first17):
    """GB 32100-2015: alphabet[(31 - sum(value * weight) mod 31) mod 31]."""
    if len(first17) != 17 or any(c not in ALPHABET for c in first17):
        raise ValueError("need 17 characters of the alphabet: %r" % first17)
    total = sum(ALPHABET.index(c) * w for c, w in zip(first17, WEIGHTS))
    return ALPHABET[(31 - total % 31) % 31]


def sample_code(league, sequence):
    if not re.fullmatch(r"15\d{4}", league):
        raise ValueError("not an Inner Mongolia league code: %r" % league)
    if not 0 < sequence < 10**7:
        raise ValueError("sequence out of range: %d" % sequence)
    first17 = "91%s%s%07d" % (league, SAMPLE_PREFIX, sequence)
    return first17 + check_character(first17)


def with_enterprise(entry, value):
    """`entry` with "enterprise" set, keeping key order (appended after nameEn when new)."""
    if "enterprise" in entry:
        return {k: (value if k == "enterprise" else v) for k, v in entry.items()}
    out = dict(entry)
    out["enterprise"] = value
    return out


def assign(seed):
    """Sets the sample codes in `seed` in place; returns a summary dict."""
    codes = {}        # nameZh -> resource name
    seen_in = {}      # nameZh -> [clusterId, ...]
    kept = []         # (clusterId, nameZh, value) of non-sample values left alone
    entries = 0
    changed = 0
    for cluster in seed.get("clusters", []):
        cluster_id = cluster.get("clusterId", "?")
        body = cluster.get("cluster", {})
        leads = body.get("leadEnterprises", [])
        if not leads:
            continue
        core = body.get("coreRegions", [])
        if not core:
            raise ValueError("cluster %s has lead enterprises but no core region" % cluster_id)
        for i, entry in enumerate(leads):
            entries += 1
            name = entry.get("nameZh", "")
            if not name:
                raise ValueError("cluster %s lead enterprise %d has no nameZh" % (cluster_id, i))
            seen_in.setdefault(name, []).append(cluster_id)
            if name not in codes:
                codes[name] = "enterprises/" + sample_code(core[0], len(codes) + 1)
            current = entry.get("enterprise", "")
            if current and current != codes[name] and not SAMPLE_CODE.match(current):
                kept.append((cluster_id, name, current))
                continue
            if current != codes[name]:
                leads[i] = with_enterprise(entry, codes[name])
                changed += 1
    duplicates = {name: ids for name, ids in seen_in.items() if len(ids) > 1}
    return {"entries": entries, "distinct": len(codes), "changed": changed,
            "duplicates": duplicates, "kept": kept, "codes": codes}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", default=DEFAULT_PATH)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file would change")
    args = parser.parse_args()
    path = os.path.normpath(args.path)

    with open(path, encoding="utf-8") as f:
        original = f.read()
    seed = json.loads(original)
    summary = assign(seed)
    text = json.dumps(seed, indent=2, ensure_ascii=False) + "\n"

    print("%s: %d lead enterprise entries, %d distinct enterprises (by nameZh), %d updated"
          % (path, summary["entries"], summary["distinct"], summary["changed"]))
    for name, ids in summary["duplicates"].items():
        print("  same nameZh in several clusters: %s (%s) -> %s"
              % (name, ", ".join(ids), summary["codes"][name]))
    for cluster_id, name, value in summary["kept"]:
        print("  kept non-sample value: %s / %s: %s" % (cluster_id, name, value))

    if text == original:
        print("up to date")
        return 0
    if args.check:
        print("not up to date: run scripts/seed_sample_uscc.py", file=sys.stderr)
        return 1
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".clusters.", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    print("wrote %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
