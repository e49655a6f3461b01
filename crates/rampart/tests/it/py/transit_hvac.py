"""Rampart's transit API through hvac, the Vault client Python teams use, unchanged.

usage: transit_hvac.py URL ADMIN_KEY NARROW_KEY
ADMIN_KEY holds transit:*; NARROW_KEY only transit:encrypt:orders. Exits non-zero on the first
broken expectation; prints what it checked.
"""

import base64
import sys

import hvac
from hvac import exceptions


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def raises(kind, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except kind as e:
        return e
    raise AssertionError(f"{fn.__name__} did not raise {kind.__name__}")


url, admin_key, narrow_key = sys.argv[1:4]
t = hvac.Client(url=url, token=admin_key).secrets.transit
checked = []

# Create, encrypt, decrypt.
t.create_key(name="orders")
card = b"4111 1111 1111 1111"
v1 = t.encrypt_data(name="orders", plaintext=b64(card))["data"]["ciphertext"]
assert v1.startswith("vault:v1:"), v1
assert base64.b64decode(t.decrypt_data(name="orders", ciphertext=v1)["data"]["plaintext"]) == card
checked.append("encrypt/decrypt")

# Batches.
batch = t.encrypt_data(name="orders", plaintext=None, batch_input=[{"plaintext": b64(b"a")}, {"plaintext": b64(b"b")}])
cts = [r["ciphertext"] for r in batch["data"]["batch_results"]]
back = t.decrypt_data(name="orders", ciphertext=None, batch_input=[{"ciphertext": c} for c in cts])
assert [base64.b64decode(r["plaintext"]) for r in back["data"]["batch_results"]] == [b"a", b"b"]
checked.append("batch_input")

# Rotation: new encryptions use v2, v1 still decrypts, rewrap moves v1 to v2.
t.rotate_key(name="orders")
key = t.read_key(name="orders")["data"]
assert key["latest_version"] == 2 and sorted(key["keys"]) == ["1", "2"], key
v2 = t.encrypt_data(name="orders", plaintext=b64(card))["data"]["ciphertext"]
assert v2.startswith("vault:v2:"), v2
assert base64.b64decode(t.decrypt_data(name="orders", ciphertext=v1)["data"]["plaintext"]) == card
rewrapped = t.rewrap_data(name="orders", ciphertext=v1)["data"]["ciphertext"]
assert rewrapped.startswith("vault:v2:") and rewrapped != v1
assert base64.b64decode(t.decrypt_data(name="orders", ciphertext=rewrapped)["data"]["plaintext"]) == card
checked.append("rotate/rewrap")

# Below the minimum version: refused.
t.update_key_configuration(name="orders", min_decryption_version=2)
assert t.read_key(name="orders")["data"]["min_decryption_version"] == 2
raises(exceptions.InvalidRequest, t.decrypt_data, name="orders", ciphertext=v1)
assert base64.b64decode(t.decrypt_data(name="orders", ciphertext=v2)["data"]["plaintext"]) == card
checked.append("min_decryption_version")

# A tampered ciphertext, and one of another key.
tampered = v2[:-4] + ("AAAA" if not v2.endswith("AAAA") else "BBBB")
raises(exceptions.InvalidRequest, t.decrypt_data, name="orders", ciphertext=tampered)
t.create_key(name="other")
raises(exceptions.InvalidRequest, t.decrypt_data, name="other", ciphertext=v2)
checked.append("tamper")

# Data keys.
dk = t.generate_data_key(name="orders", key_type="plaintext")["data"]
assert len(base64.b64decode(dk["plaintext"])) == 32
assert t.decrypt_data(name="orders", ciphertext=dk["ciphertext"])["data"]["plaintext"] == dk["plaintext"]
wrapped = t.generate_data_key(name="orders", key_type="wrapped", bits=512)["data"]
assert "plaintext" not in wrapped and len(base64.b64decode(t.decrypt_data(name="orders", ciphertext=wrapped["ciphertext"])["data"]["plaintext"])) == 64
checked.append("datakey")

# Derived keys: the context is part of the key.
t.create_key(name="tenants", derived=True)
ct = t.encrypt_data(name="tenants", plaintext=b64(b"note"), context=b64(b"tenant-a"))["data"]["ciphertext"]
assert base64.b64decode(t.decrypt_data(name="tenants", ciphertext=ct, context=b64(b"tenant-a"))["data"]["plaintext"]) == b"note"
raises(exceptions.InvalidRequest, t.decrypt_data, name="tenants", ciphertext=ct, context=b64(b"tenant-b"))
raises(exceptions.InvalidRequest, t.encrypt_data, name="tenants", plaintext=b64(b"note"))
checked.append("derived")

# HMAC and signatures.
h1 = t.generate_hmac(name="orders", hash_input=b64(b"id-42"))["data"]["hmac"]
h2 = t.generate_hmac(name="orders", hash_input=b64(b"id-42"))["data"]["hmac"]
assert h1 == h2 and h1.startswith("vault:v2:"), (h1, h2)
assert t.generate_hmac(name="orders", hash_input=b64(b"id-43"))["data"]["hmac"] != h1
t.create_key(name="signer", key_type="ed25519")
sig = t.sign_data(name="signer", hash_input=b64(b"release 1.0"))["data"]["signature"]
assert t.verify_signed_data(name="signer", hash_input=b64(b"release 1.0"), signature=sig)["data"]["valid"] is True
assert t.verify_signed_data(name="signer", hash_input=b64(b"release 1.1"), signature=sig)["data"]["valid"] is False
assert t.read_key(name="signer")["data"]["keys"]["1"]["public_key"]
checked.append("hmac/sign/verify")

# Scopes: the narrow key encrypts with orders and nothing else.
narrow = hvac.Client(url=url, token=narrow_key).secrets.transit
assert narrow.encrypt_data(name="orders", plaintext=b64(b"x"))["data"]["ciphertext"].startswith("vault:v2:")
raises(exceptions.Forbidden, narrow.decrypt_data, name="orders", ciphertext=v2)
raises(exceptions.Forbidden, narrow.encrypt_data, name="other", plaintext=b64(b"x"))
raises(exceptions.Forbidden, narrow.rotate_key, name="orders")
raises(exceptions.Unauthorized, hvac.Client(url=url, token="rk_not_a_key").secrets.transit.encrypt_data, name="orders", plaintext=b64(b"x"))
checked.append("scopes")

# Deletion only when allowed.
raises(exceptions.InvalidRequest, t.delete_key, name="other")
t.update_key_configuration(name="other", deletion_allowed=True)
t.delete_key(name="other")
raises(exceptions.InvalidPath, t.read_key, name="other")
checked.append("delete")

print("ok", " ".join(checked))
