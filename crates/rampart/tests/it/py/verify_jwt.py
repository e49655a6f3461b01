"""Verifies a Rampart access token with PyJWT, using nothing but the published JWKS.

usage: verify_jwt.py JWKS_FILE TOKEN ISSUER AUDIENCE
Prints the verified claims as JSON; exits non-zero (PyJWT's exception) when verification fails.
"""
import json
import sys

import jwt

jwks_file, token, issuer, audience = sys.argv[1:5]
with open(jwks_file) as f:
    jwks = jwt.PyJWKSet.from_dict(json.load(f))
header = jwt.get_unverified_header(token)
if header.get("typ") != "at+jwt":
    sys.exit(f"unexpected typ {header.get('typ')!r}")
key = next(k for k in jwks.keys if k.key_id == header["kid"])
claims = jwt.decode(
    token,
    key.key,
    algorithms=[key.algorithm_name],
    audience=audience,
    issuer=issuer,
    options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
)
print(json.dumps(claims))
