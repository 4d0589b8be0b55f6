#!/usr/bin/python3
"""Independent verifier of RFC 9162 Merkle proofs (Python 3, stdlib only).

Written from RFC 9162 section 2.1 (2.1.3.2 inclusion, 2.1.4.2 consistency),
not from Liaison's TypeScript, so that the two can be checked against each
other.

Reads one JSON object on stdin:

  {"kind": "inclusion", "leaf_hash_hex": HEX | "leaf_b64": BASE64(entry),
   "index": N, "tree_size": N, "proof": [HEX, ...], "root_hex": HEX}

  {"kind": "consistency", "first": N, "second": N, "proof": [HEX, ...],
   "first_root_hex": HEX, "second_root_hex": HEX}

and prints "OK" (exit 0) when the proof verifies, else the reason (exit 1).
"leaf_b64" is the entry itself (standard or URL-safe base64, padding
optional); its leaf hash is SHA-256(0x00 || entry).

With --jsonl, reads one such object per line and prints one line per object,
"OK" or "FAIL: reason"; exits 0 once all lines are answered.

Beyond the RFC's 0 < first < second: a consistency proof between equal sizes
is empty and the two roots are equal; one from size 0 is empty and the first
root is the empty-tree root SHA-256("").
"""

import base64
import binascii
import hashlib
import json
import sys

HASH_LEN = 32
MAX_SIZE = 2**64 - 1  # RFC 9162 tree sizes and indices are uint64


class Reject(Exception):
    """The input does not verify (or is not well-formed)."""


def sha256(data):
    return hashlib.sha256(data).digest()


def hash_children(left, right):
    # RFC 9162 2.1.1: MTH of an interior node = HASH(0x01 || left || right)
    return sha256(b"\x01" + left + right)


def lsb(n):
    return n & 1


def parse_hex_hash(value, what):
    if not isinstance(value, str) or len(value) != 2 * HASH_LEN:
        raise Reject("%s is not %d hex characters" % (what, 2 * HASH_LEN))
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise Reject("%s is not hex" % what)


def parse_size(value, what):
    # bool is a subclass of int in Python: refuse it explicitly.
    if isinstance(value, bool) or not isinstance(value, int):
        raise Reject("%s is not an integer" % what)
    if value < 0 or value > MAX_SIZE:
        raise Reject("%s is out of range" % what)
    return value


def parse_proof(value):
    if not isinstance(value, list):
        raise Reject("proof is not a list")
    return [parse_hex_hash(v, "proof[%d]" % i) for i, v in enumerate(value)]


def parse_b64(value):
    if not isinstance(value, str):
        raise Reject("leaf_b64 is not a string")
    s = value.replace("-", "+").replace("_", "/").rstrip("=")
    s += "=" * (-len(s) % 4)
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise Reject("leaf_b64 is not base64")


def verify_inclusion(hash_, leaf_index, tree_size, inclusion_path, root_hash):
    """RFC 9162 section 2.1.3.2, step by step."""
    # 1. Compare leaf_index against tree_size.
    if leaf_index >= tree_size:
        raise Reject("leaf index is not smaller than tree size")
    # 2. Set fn to leaf_index and sn to tree_size - 1.
    fn = leaf_index
    sn = tree_size - 1
    # 3. Set r to hash.
    r = hash_
    # 4. For each value p in the inclusion_path array:
    for p in inclusion_path:
        # a. If sn is 0, stop the iteration and fail the proof verification.
        if sn == 0:
            raise Reject("inclusion proof is too long")
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if lsb(fn) == 1 or fn == sn:
            # 1. Set r to HASH(0x01 || p || r).
            r = hash_children(p, r)
            # 2. If LSB(fn) is not set, right-shift both fn and sn equally
            #    until either LSB(fn) is set or fn is 0.
            if lsb(fn) == 0:
                while lsb(fn) == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        # Otherwise: set r to HASH(0x01 || r || p).
        else:
            r = hash_children(r, p)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 5. Compare sn to 0. Compare r against the root_hash.
    if sn != 0:
        raise Reject("inclusion proof is too short")
    if r != root_hash:
        raise Reject("computed root does not match root_hex")


def verify_consistency(first, second, consistency_path, first_hash, second_hash):
    """RFC 9162 section 2.1.4.2, step by step (for 0 < first < second)."""
    if first > second:
        raise Reject("first is larger than second")
    if first == second:
        if consistency_path:
            raise Reject("proof between equal sizes must be empty")
        if first_hash != second_hash:
            raise Reject("equal sizes but different roots")
        return
    if first == 0:
        if consistency_path:
            raise Reject("proof from the empty tree must be empty")
        if first_hash != sha256(b""):
            raise Reject("first root is not the empty-tree root")
        return
    # 1. If consistency_path is an empty array, stop and fail.
    if not consistency_path:
        raise Reject("consistency proof is empty")
    path = list(consistency_path)
    # 2. If first is an exact power of 2, prepend first_hash.
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    # 3. Set fn to first - 1 and sn to second - 1.
    fn = first - 1
    sn = second - 1
    # 4. If LSB(fn) is set, right-shift both fn and sn equally until LSB(fn)
    #    is not set.
    while lsb(fn) == 1:
        fn >>= 1
        sn >>= 1
    # 5. Set both fr and sr to the first value in the consistency_path array.
    fr = path[0]
    sr = path[0]
    # 6. For each subsequent value c in the consistency_path array:
    for c in path[1:]:
        # a. If sn is 0, stop the iteration and fail the proof verification.
        if sn == 0:
            raise Reject("consistency proof is too long")
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if lsb(fn) == 1 or fn == sn:
            # 1. Set fr to HASH(0x01 || c || fr).
            fr = hash_children(c, fr)
            # 2. Set sr to HASH(0x01 || c || sr).
            sr = hash_children(c, sr)
            # 3. If LSB(fn) is not set, right-shift both fn and sn equally
            #    until either LSB(fn) is set or fn is 0.
            if lsb(fn) == 0:
                while lsb(fn) == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        # Otherwise: set sr to HASH(0x01 || sr || c).
        else:
            sr = hash_children(sr, c)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 7. Verify fr == first_hash, sr == second_hash and sn == 0.
    if sn != 0:
        raise Reject("consistency proof is too short")
    if fr != first_hash:
        raise Reject("computed first root does not match first_root_hex")
    if sr != second_hash:
        raise Reject("computed second root does not match second_root_hex")


def check(request):
    """Raises Reject with the reason unless the request verifies."""
    if not isinstance(request, dict):
        raise Reject("input is not a JSON object")
    kind = request.get("kind")
    if kind == "inclusion":
        has_hex = "leaf_hash_hex" in request
        has_b64 = "leaf_b64" in request
        if has_hex == has_b64:
            raise Reject("give exactly one of leaf_hash_hex and leaf_b64")
        if has_hex:
            leaf = parse_hex_hash(request["leaf_hash_hex"], "leaf_hash_hex")
        else:
            leaf = sha256(b"\x00" + parse_b64(request["leaf_b64"]))
        verify_inclusion(
            leaf,
            parse_size(request.get("index"), "index"),
            parse_size(request.get("tree_size"), "tree_size"),
            parse_proof(request.get("proof")),
            parse_hex_hash(request.get("root_hex"), "root_hex"),
        )
    elif kind == "consistency":
        verify_consistency(
            parse_size(request.get("first"), "first"),
            parse_size(request.get("second"), "second"),
            parse_proof(request.get("proof")),
            parse_hex_hash(request.get("first_root_hex"), "first_root_hex"),
            parse_hex_hash(request.get("second_root_hex"), "second_root_hex"),
        )
    else:
        raise Reject("kind must be inclusion or consistency")


def check_text(text):
    """Returns None when the JSON text verifies, else the reason."""
    try:
        request = json.loads(text)
    except ValueError:
        return "input is not JSON"
    try:
        check(request)
    except Reject as e:
        return str(e)
    return None


def main(argv):
    if argv[1:] == ["--jsonl"]:
        for line in sys.stdin:
            if not line.strip():
                continue
            reason = check_text(line)
            print("OK" if reason is None else "FAIL: " + reason)
        return 0
    if len(argv) > 1:
        print("usage: merkle_verify.py [--jsonl] < request.json")
        return 1
    reason = check_text(sys.stdin.read())
    print("OK" if reason is None else reason)
    return 0 if reason is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
