#!/usr/bin/python3
"""An independent JOSE implementation (python3-jwcrypto) talking to Liaison.

  verify-receipt:  stdin {"jwks": {...}, "receipt": "<compact JWS>"}  -> prints the claims JSON, exit 0; exit 1 if it does not verify
  seal:            stdin {"notice": "<notice JSON text>", "signing_jwk": {...}, "broker_jwk": {...}, "alg": "ECDH-ES+A256KW"}
                   -> prints a compact JWE (A256GCM) holding a compact JWS by signing_jwk
  open:            stdin {"jwe": "<compact JWE, or a flattened JSON JWE's text>", "private_jwk": {...}}
                   -> prints {"header": {...protected header}, "jose_header": {...all members},
                      "plaintext_b64": "..."}; exit 1 if it does not decrypt
  verify-entry:    stdin {"jwks": {...}, "entry_b64": "<entry bytes, base64url>", "signature": "<protected>..<signature>"}
                   -> verifies the detached-payload JWS (RFC 7515 Appendix F) over the entry bytes; prints the kid, exit 0; exit 1 if not
  open-e2e:        stdin {"envelope": "<end-to-end delivery>", "private_jwk": {...}, "origin_jwk": {...public signing key}}
                   -> verifies the routing header JWS and its body_sha256, decrypts the body (JWE General JSON) with
                      private_jwk, verifies the origin's notice JWS, checks the notice against the routing header
                      (for a withdrawal: its body.supersedes is the header's supersedes, listed in references);
                      prints {"header": {...}, "notice": {...}}; exit 1 if any step fails (docs/end-to-end.md)
"""
import base64
import hashlib
import json
import sys

from jwcrypto import jwe, jwk, jws


def verify_receipt(req):
    token = jws.JWS()
    token.deserialize(req["receipt"])
    kid = token.jose_header.get("kid")
    if token.jose_header.get("alg") != "EdDSA" or token.jose_header.get("typ") != "liaison-receipt+jws":
        raise ValueError("unexpected receipt header")
    keys = [k for k in req["jwks"]["keys"] if k.get("kid") == kid and k.get("use", "sig") == "sig"]
    if len(keys) != 1:
        raise ValueError("no broker signing key with kid %r" % kid)
    token.verify(jwk.JWK(**keys[0]), alg="EdDSA")
    print(token.payload.decode("utf-8"))


def verify_entry(req):
    protected, payload, signature = req["signature"].split(".")
    if payload != "":
        raise ValueError("the payload is not detached")
    token = jws.JWS()
    token.deserialize(".".join([protected, req["entry_b64"], signature]))
    kid = token.jose_header.get("kid")
    if token.jose_header.get("alg") != "EdDSA" or token.jose_header.get("typ") != "liaison-log-entry+jws":
        raise ValueError("unexpected entry signature header")
    keys = [k for k in req["jwks"]["keys"] if k.get("kid") == kid and k.get("use", "sig") == "sig"]
    if len(keys) != 1:
        raise ValueError("no broker signing key with kid %r" % kid)
    token.verify(jwk.JWK(**keys[0]), alg="EdDSA")
    print(kid)


def seal(req):
    signing = jwk.JWK(**req["signing_jwk"])
    alg = "EdDSA" if req["signing_jwk"].get("crv") == "Ed25519" else "ES256"
    signed = jws.JWS(req["notice"].encode("utf-8"))
    signed.add_signature(signing, alg=alg, protected=json.dumps({"alg": alg, "kid": req["signing_jwk"]["kid"]}))
    inner = signed.serialize(compact=True)
    broker = jwk.JWK(**req["broker_jwk"])
    header = {"alg": req.get("alg", "ECDH-ES+A256KW"), "enc": "A256GCM", "kid": req["broker_jwk"]["kid"]}
    outer = jwe.JWE(inner.encode("ascii"), protected=json.dumps(header))
    outer.add_recipient(broker)
    print(outer.serialize(compact=True))


def open_jwe(req):
    token = jwe.JWE()
    token.deserialize(req["jwe"], key=jwk.JWK(**req["private_jwk"]))
    header = json.loads(token.objects["protected"])
    print(json.dumps({"header": header, "jose_header": token.jose_header,
                      "plaintext_b64": base64.b64encode(token.payload).decode("ascii")}))


def open_e2e(req):
    env = json.loads(req["envelope"])
    if sorted(env.keys()) != ["body", "header"]:
        raise ValueError("not an end-to-end envelope")
    origin = jwk.JWK(**req["origin_jwk"])
    alg = "EdDSA" if req["origin_jwk"].get("crv") == "Ed25519" else "ES256"
    signed_header = jws.JWS()
    signed_header.deserialize(env["header"])
    if signed_header.jose_header.get("typ") != "liaison-e2e-header+jws":
        raise ValueError("unexpected routing header typ")
    signed_header.verify(origin, alg=alg)
    header = json.loads(signed_header.payload.decode("utf-8"))
    if hashlib.sha256(env["body"].encode("utf-8")).hexdigest() != header["body_sha256"]:
        raise ValueError("body_sha256 does not match the body")
    body = jwe.JWE()
    body.deserialize(env["body"], key=jwk.JWK(**req["private_jwk"]))
    protected = json.loads(body.objects["protected"])
    if protected.get("enc") != "A256GCM" or protected.get("cty") != "liaison-notice+jws":
        raise ValueError("unexpected protected header")
    signed_notice = jws.JWS()
    signed_notice.deserialize(body.payload.decode("ascii"))
    signed_notice.verify(origin, alg=alg)
    notice = json.loads(signed_notice.payload.decode("utf-8"))
    for field in ["id", "operation", "origin", "addressees", "tlp", "type", "schema_version", "created_at",
                  "expires_at", "handling_code"]:
        if notice.get(field) != header.get(field):
            raise ValueError("the notice's %s is not the routing header's" % field)
    # A withdrawal is routed by the header's supersedes: the sealed notice must withdraw that one.
    supersedes = header.get("supersedes")
    if notice.get("type") == "withdrawal":
        body_supersedes = (notice.get("body") or {}).get("supersedes")
        if body_supersedes != supersedes or supersedes not in (notice.get("references") or []):
            raise ValueError("the withdrawal's body supersedes is not the routing header's supersedes")
    elif supersedes is not None:
        raise ValueError("the routing header names a notice it supersedes, but the notice is no withdrawal")
    print(json.dumps({"header": header, "notice": notice}))


if __name__ == "__main__":
    request = json.load(sys.stdin)
    try:
        {
            "verify-receipt": verify_receipt,
            "seal": seal,
            "open": open_jwe,
            "verify-entry": verify_entry,
            "open-e2e": open_e2e,
        }[sys.argv[1]](request)
    except Exception as e:  # any failure is a non-zero exit with the reason
        print("FAILED: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)
