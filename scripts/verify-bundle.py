#!/usr/bin/env python3
"""Independent verifier of postbud evidence bundles (docs/evidence.md).

Python 3 standard library plus `cryptography` (Debian: apt-get install python3-cryptography).
No database, no network, no code shared with the hub.

    verify-bundle.py BUNDLE.json [--jwks JWKS.json]
    verify-bundle.py --consistency PROOF.json [--head HELD-HEAD.json] [--jwks JWKS.json]

Prints {"valid": ..., "problems": [{"code", "where", "message"}, ...]} and exits 0 only when
every check holds. The problem codes are those of `postbud verify --bundle`.
"""
import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

FORMAT = "postbud-evidence-bundle/1"
LOG_ID = "postbud-evidence-log"


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def canonical(v):
    """Canonical JSON as the hub hashes it: keys sorted, no whitespace, UTF-8."""
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def verify_jws(jws, keys, typ):
    """ES256 compact JWS -> (payload, None) or (None, error)."""
    try:
        h64, p64, s64 = jws.split(".")
        header = json.loads(b64url(h64))
    except Exception:
        return None, "not a compact JWS"
    key = next((k for k in keys if k.get("kid") == header.get("kid")), None)
    if key is None:
        return None, "signed by key %s, which the bundle does not hold" % header.get("kid")
    if header.get("typ") != typ:
        return None, "typ is %s, not %s" % (header.get("typ"), typ)
    if header.get("alg") != "ES256" or key.get("kty") != "EC" or key.get("crv") != "P-256":
        return None, "not an ES256 signature by a P-256 key"
    sig = b64url(s64)
    if len(sig) != 64:
        return None, "the signature does not verify with key %s" % key["kid"]
    pub = ec.EllipticCurvePublicNumbers(
        int.from_bytes(b64url(key["x"]), "big"), int.from_bytes(b64url(key["y"]), "big"), ec.SECP256R1()
    ).public_key()
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        pub.verify(der, (h64 + "." + p64).encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return None, "the signature does not verify with key %s" % key["kid"]
    return json.loads(b64url(p64)), None


def event_hash(message_id, e):
    if not isinstance(e["type"], str) or not isinstance(e["at"], str):
        return None
    body = {"messageId": message_id, "seq": e["seq"], "type": e["type"], "at": e["at"], "data": e["data"], "prevHash": e["prevHash"]}
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


def verify_inclusion(leaf, index, size, proof, root):
    """RFC 9162 section 2.1.3.2."""
    if not (0 <= index < size):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = sha256(b"\x01", p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha256(b"\x01", r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_root, second_root, proof):
    """RFC 9162 section 2.1.4.2."""
    if not (0 <= first <= second):
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof:
        return False
    path = [first_root] + proof if first & (first - 1) == 0 else list(proof)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = sha256(b"\x01", c, fr)
            sr = sha256(b"\x01", c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = sha256(b"\x01", sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


def check_head(h, keys, where, problem):
    """A signed tree head -> its payload, or None (with the problem reported)."""
    p, err = verify_jws(h.get("jws", "") if isinstance(h, dict) else "", keys, "postbud-tree-head+jws")
    if err:
        problem("head-signature", where, err)
        return None
    if p.get("log") != LOG_ID or not isinstance(p.get("treeSize"), int) or not is_hex64(p.get("rootHash")):
        problem("head-signature", where, "the signed head is not a tree head of this log")
        return None
    if (h.get("treeSize"), h.get("rootHash"), h.get("timestamp")) != (p["treeSize"], p["rootHash"], p["timestamp"]):
        problem("head-signature", where, "the head fields differ from what its signature covers")
    return p


def check_keys(keys, jwks, problem):
    if jwks is None:
        return
    for k in keys:
        p = next((x for x in jwks["keys"] if x.get("kid") == k.get("kid")), None)
        if p is None or any(p.get(f) != k.get(f) for f in ("kty", "crv", "x", "y")):
            problem("key-unpublished", "key %s" % k.get("kid"), "key %s is not in the published JWKS" % k.get("kid"))


def verify_consistency_document(doc, jwks=None, held=None):
    problems = []

    def problem(code, where, message):
        problems.append({"code": code, "where": where, "message": message})

    keys = doc["keys"]["keys"]
    check_keys(keys, jwks, problem)
    first = check_head(doc["first"], keys, "first", problem)
    second = check_head(doc["second"], keys, "second", problem)
    if held is not None:
        h = check_head(held, jwks["keys"] if jwks else keys, "held head", problem)
        if h and (h["treeSize"], h["rootHash"]) != ((first or {}).get("treeSize"), (first or {}).get("rootHash")):
            problem("head-mismatch", "first", "the first head is not the one you hold (size %s)" % h["treeSize"])
    if first and second:
        proof = doc["proof"]
        ok = all(is_hex64(x) for x in proof)
        if not ok or not verify_consistency(first["treeSize"], second["treeSize"], bytes.fromhex(first["rootHash"]), bytes.fromhex(second["rootHash"]), [bytes.fromhex(x) for x in proof]):
            problem("consistency", "heads %s -> %s" % (first["treeSize"], second["treeSize"]), "the head of size %s does not extend the head of size %s: events were removed or rewritten" % (second["treeSize"], first["treeSize"]))
    return problems


def is_hex64(s):
    return isinstance(s, str) and len(s) == 64 and all(c in "0123456789abcdef" for c in s)


def verify(bundle, jwks=None):
    problems = []

    def problem(code, where, message):
        problems.append({"code": code, "where": where, "message": message})

    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        problem("format", "bundle", "not a %s document" % FORMAT)
        return problems
    mid, sender, events, receipts = bundle["messageId"], bundle["sender"], bundle["events"], bundle["receipts"]
    keys = bundle["keys"]["keys"]

    check_keys(keys, jwks, problem)

    prev = None
    for i, e in enumerate(events):
        where = "event %s" % e["seq"]
        if e["seq"] != i + 1:
            if any(x["seq"] >= e["seq"] for x in events[:i]):
                problem("event-order", where, "event %s comes after event %s" % (e["seq"], events[i - 1]["seq"]))
            else:
                problem("event-missing", where, "expected event %d here, found %s: an event is missing" % (i + 1, e["seq"]))
        if e.get("redacted") is True:
            # No content to hash: the next prevHash, the inclusion proof and the statement vouch for it.
            if (e.get("type"), e.get("at"), e.get("data")) != (None, None, None):
                problem("redaction", where, "a redacted event carries a type, time or data")
            if not is_hex64(e["hash"]):
                problem("event-hash", where, "the hash of the redacted event is not a SHA-256")
        elif event_hash(mid, e) != e["hash"]:
            problem("event-hash", where, "the hash does not match the event's content")
        if e["prevHash"] != prev:
            problem("chain-link", where, "prevHash is not the hash of the event before")
        prev = e["hash"]

    sealed = next((e for e in events if e.get("redacted") is not True and e["type"] == "SEALED"), None)
    if sealed is not None:
        d = sealed["data"]
        if canonical(d.get("documents", [])) != canonical(bundle.get("documents", [])) or d.get("manifestSha256") != bundle.get("manifestSha256"):
            problem("documents", "event %s" % sealed["seq"], "the documents listed differ from those in the SEALED event")
    elif bundle.get("documents"):
        problem("documents", "bundle", "documents are listed but there is no SEALED event")

    for r in receipts:
        where = "receipt %s" % r["id"]
        p, err = verify_jws(r["jws"], keys, "postbud-receipt+jws")
        if err:
            problem("receipt-signature", where, err)
            continue
        if p.get("messageId") != mid or p.get("sender") != sender or p.get("receiptId") != r["id"]:
            problem("receipt-message", where, "the receipt is for message %s, not this one" % p.get("messageId"))
            continue
        ev = p.get("event") or {}
        e = next((x for x in events if x["seq"] == ev.get("seq")), None)
        if e is None:
            problem("receipt-event", where, "the receipt names event %s, which the bundle does not hold" % ev.get("seq"))
        elif e.get("redacted") is True:
            problem("receipt-event", where, "the receipt names event %s, which the bundle redacts" % e["seq"])
        elif (e["hash"], e["type"], e["prevHash"], e["at"], canonical(e["data"])) != (ev.get("hash"), ev.get("type"), ev.get("prevHash"), p.get("at"), canonical(p.get("data"))):
            problem("receipt-event", where, "event %s differs from the one the receipt signed" % e["seq"])

    head = check_head(bundle["head"], keys, "head", problem) if bundle.get("head") is not None else None
    if head is not None:
        for e in events:
            li = e.get("leafIndex")
            if li is None or li >= head["treeSize"]:
                continue  # not yet in the log: pending
            proof = e.get("inclusionProof") or []
            ok = is_hex64(e["hash"]) and all(is_hex64(x) for x in proof)
            leaf = sha256(b"\x00", bytes.fromhex(e["hash"])) if ok else b""
            if not ok or not verify_inclusion(leaf, li, head["treeSize"], [bytes.fromhex(x) for x in proof], bytes.fromhex(head["rootHash"])):
                problem("inclusion", "event %s" % e["seq"], "event %s is not leaf %s of the signed head" % (e["seq"], li))

    st, err = verify_jws(bundle.get("statement", ""), keys, "postbud-evidence+jws")
    if err:
        problem("statement-signature", "statement", err)
    else:
        if st.get("messageId") != mid or st.get("sender") != sender:
            problem("statement", "statement", "the statement is about message %s, not this one" % st.get("messageId"))
        signed = st.get("events") or []
        for se in signed:
            e = next((x for x in events if x["seq"] == se["seq"]), None)
            if e is None:
                problem("statement", "statement", "event %s (%s) is missing from the bundle" % (se["seq"], se.get("type") or "redacted"))
            elif (e.get("redacted") is True) != (se.get("redacted") is True):
                problem("statement", "statement", "event %s is %sredacted, unlike the one the hub listed" % (se["seq"], "" if e.get("redacted") is True else "not "))
            elif (e["hash"], e["type"]) != (se["hash"], se["type"]):
                problem("statement", "statement", "event %s differs from the one the hub listed" % se["seq"])
        for e in events:
            if not any(x["seq"] == e["seq"] for x in signed):
                problem("statement", "statement", "event %s was not listed by the hub" % e["seq"])
        if len(signed) == len(events) and [x["seq"] for x in signed] != [x["seq"] for x in events]:
            problem("statement", "statement", "the events are not in the order the hub listed")
        if sorted(st.get("receipts") or []) != sorted(r["id"] for r in receipts):
            problem("statement", "statement", "the receipts differ from those the hub listed")
        sh = st.get("head") or {}
        if (sh.get("treeSize"), sh.get("rootHash")) != ((head or {}).get("treeSize"), (head or {}).get("rootHash")):
            problem("statement", "statement", "the head differs from the one the hub listed")
    return problems


USAGE = "usage: verify-bundle.py BUNDLE.json [--jwks JWKS.json] | --consistency PROOF.json [--head HEAD.json] [--jwks JWKS.json]\n"


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main(argv):
    opts, rest = {}, list(argv)
    if rest and not rest[0].startswith("--"):
        opts["--bundle"] = rest.pop(0)
    while rest:
        flag = rest.pop(0)
        if flag not in ("--jwks", "--consistency", "--head") or not rest or flag in opts:
            sys.stderr.write(USAGE)
            return 64
        opts[flag] = rest.pop(0)
    if ("--bundle" in opts) == ("--consistency" in opts) or ("--head" in opts and "--bundle" in opts):
        sys.stderr.write(USAGE)
        return 64
    jwks = load(opts["--jwks"]) if "--jwks" in opts else None
    doc = load(opts.get("--bundle") or opts["--consistency"])
    try:
        if "--bundle" in opts:
            problems = verify(doc, jwks)
        else:
            problems = verify_consistency_document(doc, jwks, load(opts["--head"]) if "--head" in opts else None)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        problems = [{"code": "format", "where": "document", "message": "malformed document: %r" % (err,)}]
    out = {"valid": not problems, "problems": problems}
    if "--bundle" in opts:
        out["messageId"] = doc.get("messageId") if isinstance(doc, dict) else None
    print(json.dumps(out, indent=2))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
