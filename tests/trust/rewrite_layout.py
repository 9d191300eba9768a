#!/usr/bin/env python3
"""Test-only rewriting of an OCI layout image, as an attacker (or a key-provider setup) would:
the manifest is rewritten and re-tagged so that the blob digests still verify and the attack
reaches the check under test. Usage: rewrite_layout.py DIR TAG OP [ARGS]
  provider NAME        move every layer's JWE wrapped keys to enc.keys.provider.NAME
  tamper-blob I        flip a ciphertext byte of layer I (blob re-digested: the HMAC must catch it)
  tamper-hmac I        replace layer I's pubopts HMAC
  swap-keys I J        swap the wrapped keys and pubopts of layers I and J
  swap-layers I J      swap the descriptors of layers I and J"""
import base64, hashlib, json, os, sys

JWE = "org.opencontainers.image.enc.keys.jwe"
PUBOPTS = "org.opencontainers.image.enc.pubopts"


def blob_path(d, digest):
    return os.path.join(d, "blobs", "sha256", digest.split(":", 1)[1])


def write_blob(d, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(blob_path(d, digest), "wb") as f:
        f.write(data)
    return digest, len(data)


def main():
    d, tag, op, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    index = json.load(open(os.path.join(d, "index.json")))
    entry = next(m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
    manifest = json.load(open(blob_path(d, entry["digest"]), "rb"))
    layers = manifest["layers"]
    if op == "provider":
        for layer in layers:
            ann = layer.get("annotations", {})
            if JWE in ann:
                ann["org.opencontainers.image.enc.keys.provider." + args[0]] = ann.pop(JWE)
    elif op == "tamper-blob":
        layer = layers[int(args[0])]
        data = bytearray(open(blob_path(d, layer["digest"]), "rb").read())
        data[len(data) // 2] ^= 1
        layer["digest"], layer["size"] = write_blob(d, bytes(data))
    elif op == "tamper-hmac":
        ann = layers[int(args[0])]["annotations"]
        pub = json.loads(base64.b64decode(ann[PUBOPTS]))
        pub["hmac"] = base64.b64encode(b"\x42" * 32).decode()
        ann[PUBOPTS] = base64.b64encode(json.dumps(pub).encode()).decode()
    elif op == "swap-keys":
        a, b = layers[int(args[0])]["annotations"], layers[int(args[1])]["annotations"]
        layers[int(args[0])]["annotations"], layers[int(args[1])]["annotations"] = b, a
    elif op == "swap-layers":
        i, j = int(args[0]), int(args[1])
        layers[i], layers[j] = layers[j], layers[i]
    else:
        sys.exit("unknown op " + op)
    entry["digest"], entry["size"] = write_blob(d, json.dumps(manifest).encode())
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump(index, f)


main()
