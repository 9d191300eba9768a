#!/usr/bin/env python3
"""Test-only: re-wrap the layer keys of an OCI layout image (encrypted by skopeo for an RSA key,
JWE) the way CoCo's encryption does for a key broker. Each layer's private options are sealed
with AES-256-GCM under a key-encryption key that is written to the broker's resource store, and
the layer carries CoCo's AnnotationPacket in "org.opencontainers.image.enc.keys.provider.
attestation-agent" instead of its JWE. Usage: coco_wrap.py LAYOUT TAG RSA_KEY.pem RESOURCES KID
(KID = repository/type/tag, e.g. default/key/image)."""
import base64, hashlib, json, os, sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

JWE = "org.opencontainers.image.enc.keys.jwe"
PROVIDER = "org.opencontainers.image.enc.keys.provider.attestation-agent"


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def blob_path(d, digest):
    return os.path.join(d, "blobs", "sha256", digest.split(":", 1)[1])


def write_blob(d, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(blob_path(d, digest), "wb") as f:
        f.write(data)
    return digest, len(data)


def jwe_decrypt(text, key):
    jwe = json.loads(text)
    recipients = jwe.get("recipients") or [jwe]
    header = json.loads(b64url(jwe["protected"])) if "protected" in jwe else {}
    for r in recipients:
        alg = {**header, **r.get("header", {})}["alg"]
        md = hashes.SHA1() if alg == "RSA-OAEP" else hashes.SHA256()
        try:
            cek = key.decrypt(b64url(r["encrypted_key"]), padding.OAEP(padding.MGF1(md), md, None))
        except ValueError:
            continue
        return AESGCM(cek).decrypt(b64url(jwe["iv"]), b64url(jwe["ciphertext"]) + b64url(jwe["tag"]),
                                   jwe.get("protected", "").encode())
    sys.exit("no recipient of the JWE opens with the key")


def main():
    d, tag, key_path, resources, kid = sys.argv[1:6]
    key = serialization.load_pem_private_key(open(key_path, "rb").read(), None)
    kek = os.urandom(32)
    os.makedirs(os.path.dirname(os.path.join(resources, kid)), exist_ok=True)
    with open(os.path.join(resources, kid), "wb") as f:
        f.write(kek)
    index = json.load(open(os.path.join(d, "index.json")))
    entry = next(m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
    manifest = json.load(open(blob_path(d, entry["digest"]), "rb"))
    for layer in manifest["layers"]:
        ann = layer.get("annotations", {})
        if JWE not in ann:
            continue
        opts = jwe_decrypt(base64.b64decode(ann.pop(JWE).split(",")[0]), key)
        iv = os.urandom(12)
        packet = {"kid": "kbs:///" + kid, "wrapped_data": base64.b64encode(AESGCM(kek).encrypt(iv, opts, None)).decode(),
                  "iv": base64.b64encode(iv).decode(), "wrap_type": "A256GCM"}
        ann[PROVIDER] = base64.b64encode(json.dumps(packet).encode()).decode()
    entry["digest"], entry["size"] = write_blob(d, json.dumps(manifest).encode())
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump(index, f)


main()
