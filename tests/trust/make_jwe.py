#!/usr/bin/env python3
"""Test-only JWE maker (python3-cryptography), an implementation independent of sealroot's,
for the algorithms skopeo does not produce: RSA-OAEP-256 and ECDH-ES+A128KW/A192KW, flattened
or general JSON. Usage: make_jwe.py ALG PUBKEY.pem [ALG PUBKEY.pem ...] < plaintext > jwe.json"""
import base64, json, os, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def concat_kdf(z, alg, bits):
    info = b"".join(len(x).to_bytes(4, "big") + x for x in (alg.encode(), b"", b"")) + bits.to_bytes(4, "big")
    h = hashes.Hash(hashes.SHA256())
    h.update(b"\0\0\0\1" + z + info)
    return h.finalize()[: bits // 8]


def recipient(alg, pub, cek):
    if alg.startswith("RSA-OAEP"):
        md = hashes.SHA256() if alg == "RSA-OAEP-256" else hashes.SHA1()
        wrapped = pub.encrypt(cek, padding.OAEP(mgf=padding.MGF1(md), algorithm=md, label=None))
        return {"alg": alg}, wrapped
    eph = ec.generate_private_key(pub.curve)
    nums = eph.public_key().public_numbers()
    size = (pub.curve.key_size + 7) // 8
    crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[pub.curve.name]
    epk = {"kty": "EC", "crv": crv, "x": b64u(nums.x.to_bytes(size, "big")), "y": b64u(nums.y.to_bytes(size, "big"))}
    kek = concat_kdf(eph.exchange(ec.ECDH(), pub), alg, {"ECDH-ES+A128KW": 128, "ECDH-ES+A192KW": 192, "ECDH-ES+A256KW": 256}[alg])
    return {"alg": alg, "epk": epk}, aes_key_wrap(kek, cek)


def main():
    args = sys.argv[1:]
    pairs = [(args[i], serialization.load_pem_public_key(open(args[i + 1], "rb").read())) for i in range(0, len(args), 2)]
    plaintext = sys.stdin.buffer.read()
    cek, iv = os.urandom(32), os.urandom(12)
    recipients = [recipient(alg, pub, cek) for alg, pub in pairs]
    if len(recipients) == 1:
        header = dict(recipients[0][0], enc="A256GCM")
        protected = b64u(json.dumps(header).encode())
        out = {"protected": protected, "encrypted_key": b64u(recipients[0][1])}
    else:
        protected = b64u(json.dumps({"enc": "A256GCM"}).encode())
        out = {"protected": protected, "recipients": [{"header": h, "encrypted_key": b64u(k)} for h, k in recipients]}
    sealed = AESGCM(cek).encrypt(iv, plaintext, protected.encode())
    out.update(iv=b64u(iv), ciphertext=b64u(sealed[:-16]), tag=b64u(sealed[-16:]))
    sys.stdout.write(json.dumps(out))


main()
