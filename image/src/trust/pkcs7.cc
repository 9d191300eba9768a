#include "image/src/trust/pkcs7.h"

#include <openssl/asn1.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>

#include "base/encoding.h"

namespace sealroot::image::trust {
namespace {

using Bytes = std::span<const std::uint8_t>;

constexpr std::array<std::uint8_t, 9> kOidEnvelopedData = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                                           0x0d, 0x01, 0x07, 0x03};
constexpr std::array<std::uint8_t, 9> kOidRsaEncryption = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                                           0x0d, 0x01, 0x01, 0x01};
constexpr std::array<std::uint8_t, 9> kOidAes128Gcm = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x06};
constexpr std::array<std::uint8_t, 9> kOidAes256Gcm = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2e};

struct Tlv {
  int tag = 0;
  int cls = 0;
  bool constructed = false;
  Bytes content;
  Bytes whole;
};

// A cursor over consecutive DER elements; ASN1_get_object bounds every length by the input.
class Der {
 public:
  explicit Der(Bytes data) : rest_(data) {}
  bool empty() const { return rest_.empty(); }

  Result<Tlv> Next(const char* what) {
    const unsigned char* p = rest_.data();
    long len = 0;
    int tag = 0, cls = 0;
    int ret = ASN1_get_object(&p, &len, &tag, &cls, static_cast<long>(rest_.size()));
    // 0x80: malformed; bit 0: indefinite length, which DER forbids.
    if (ret & 0x80 || ret & 0x01 || len < 0) {
      OpensslErrors();
      return InvalidArgument(std::string("PKCS7: malformed DER at ") + what);
    }
    std::size_t header = static_cast<std::size_t>(p - rest_.data());
    Tlv t{tag, cls, (ret & V_ASN1_CONSTRUCTED) != 0, rest_.subspan(header, static_cast<std::size_t>(len)),
          rest_.first(header + static_cast<std::size_t>(len))};
    rest_ = rest_.subspan(header + static_cast<std::size_t>(len));
    return t;
  }

  Result<Tlv> Expect(int tag, int cls, bool constructed, const char* what) {
    SR_ASSIGN_OR_RETURN(Tlv t, Next(what));
    if (t.tag != tag || t.cls != cls || t.constructed != constructed) {
      return InvalidArgument(std::string("PKCS7: unexpected element at ") + what);
    }
    return t;
  }

 private:
  Bytes rest_;
};

bool Equal(Bytes a, Bytes b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

struct RecipientInfo {
  Bytes issuer_and_serial;  // the whole SEQUENCE
  Bytes encrypted_key;
};

struct Enveloped {
  std::vector<RecipientInfo> recipients;
  std::size_t key_size = 0;  // 16 or 32 (AES-128/256-GCM)
  Bytes nonce;
  std::vector<std::uint8_t> ciphertext;  // including the 16-byte tag
};

Result<RecipientInfo> ParseRecipient(const Tlv& seq) {
  Der d(seq.content);
  SR_RETURN_IF_ERROR(d.Expect(V_ASN1_INTEGER, V_ASN1_UNIVERSAL, false, "recipient version").status());
  SR_ASSIGN_OR_RETURN(Tlv ias, d.Expect(V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, true, "issuerAndSerialNumber"));
  SR_ASSIGN_OR_RETURN(Tlv alg, d.Expect(V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, true, "key encryption algorithm"));
  Der a(alg.content);
  SR_ASSIGN_OR_RETURN(Tlv oid, a.Expect(V_ASN1_OBJECT, V_ASN1_UNIVERSAL, false, "key encryption OID"));
  if (!Equal(oid.content, kOidRsaEncryption)) {
    return InvalidArgument("PKCS7: unsupported key transport (only rsaEncryption)");
  }
  SR_ASSIGN_OR_RETURN(Tlv key, d.Expect(V_ASN1_OCTET_STRING, V_ASN1_UNIVERSAL, false, "encrypted key"));
  return RecipientInfo{ias.whole, key.content};
}

// GCMParameters ::= SEQUENCE { nonce OCTET STRING, icvLen INTEGER DEFAULT 12 }, either standard
// or, as go pkcs7 writes it, a full SEQUENCE inside a primitive tag 16 with the nonce tagged [4].
Status ParseGcmParams(const Tlv& params, Enveloped& out) {
  if (params.tag != V_ASN1_SEQUENCE || params.cls != V_ASN1_UNIVERSAL) {
    return InvalidArgument("PKCS7: AES-GCM parameters are not a SEQUENCE");
  }
  Bytes fields = params.content;
  if (!params.constructed) {
    Der inner(params.content);
    SR_ASSIGN_OR_RETURN(Tlv seq, inner.Expect(V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, true, "AES-GCM parameters"));
    if (!inner.empty()) return InvalidArgument("PKCS7: trailing bytes in AES-GCM parameters");
    fields = seq.content;
  }
  Der d(fields);
  // go pkcs7 tags the nonce [4] IMPLICIT; RFC 5084 has a plain OCTET STRING. Accept both.
  SR_ASSIGN_OR_RETURN(Tlv nonce, d.Next("AES-GCM nonce"));
  bool octets = nonce.tag == V_ASN1_OCTET_STRING && nonce.cls == V_ASN1_UNIVERSAL;
  bool go_tagged = nonce.tag == 4 && nonce.cls == V_ASN1_CONTEXT_SPECIFIC;
  if ((!octets && !go_tagged) || nonce.constructed) return InvalidArgument("PKCS7: malformed AES-GCM nonce");
  if (nonce.content.size() != 12) return InvalidArgument("PKCS7: AES-GCM nonce is not 96 bits");
  out.nonce = nonce.content;
  if (!d.empty()) {
    SR_ASSIGN_OR_RETURN(Tlv icv, d.Expect(V_ASN1_INTEGER, V_ASN1_UNIVERSAL, false, "AES-GCM ICV length"));
    if (icv.content.size() != 1 || icv.content[0] != 16)
      return InvalidArgument("PKCS7: AES-GCM tag is not 128 bits");
  } else {
    return InvalidArgument("PKCS7: AES-GCM tag is not 128 bits");
  }
  return OkStatus();
}

Status ParseEncryptedContent(const Tlv& eci, Enveloped& out) {
  Der d(eci.content);
  SR_RETURN_IF_ERROR(d.Expect(V_ASN1_OBJECT, V_ASN1_UNIVERSAL, false, "content type").status());
  SR_ASSIGN_OR_RETURN(Tlv alg,
                      d.Expect(V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, true, "content encryption algorithm"));
  Der a(alg.content);
  SR_ASSIGN_OR_RETURN(Tlv oid, a.Expect(V_ASN1_OBJECT, V_ASN1_UNIVERSAL, false, "content encryption OID"));
  if (Equal(oid.content, kOidAes128Gcm)) {
    out.key_size = 16;
  } else if (Equal(oid.content, kOidAes256Gcm)) {
    out.key_size = 32;
  } else {
    return InvalidArgument("PKCS7: unsupported content encryption (only AES-128/256-GCM)");
  }
  SR_ASSIGN_OR_RETURN(Tlv params, a.Next("AES-GCM parameters"));
  SR_RETURN_IF_ERROR(ParseGcmParams(params, out));
  SR_ASSIGN_OR_RETURN(Tlv content, d.Next("encrypted content"));
  if (content.tag != 0 || content.cls != V_ASN1_CONTEXT_SPECIFIC) {
    return InvalidArgument("PKCS7: missing encrypted content");
  }
  if (!content.constructed) {
    out.ciphertext.assign(content.content.begin(), content.content.end());
    return OkStatus();
  }
  for (Der parts(content.content); !parts.empty();) {  // the constructed form: OCTET STRING chunks
    SR_ASSIGN_OR_RETURN(Tlv part,
                        parts.Expect(V_ASN1_OCTET_STRING, V_ASN1_UNIVERSAL, false, "content chunk"));
    out.ciphertext.insert(out.ciphertext.end(), part.content.begin(), part.content.end());
  }
  return OkStatus();
}

Result<Enveloped> Parse(Bytes der) {
  Der top(der);
  SR_ASSIGN_OR_RETURN(Tlv ci, top.Expect(V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, true, "ContentInfo"));
  Der c(ci.content);
  SR_ASSIGN_OR_RETURN(Tlv type, c.Expect(V_ASN1_OBJECT, V_ASN1_UNIVERSAL, false, "content type"));
  if (!Equal(type.content, kOidEnvelopedData)) return InvalidArgument("PKCS7: not EnvelopedData");
  SR_ASSIGN_OR_RETURN(Tlv explicit0, c.Expect(0, V_ASN1_CONTEXT_SPECIFIC, true, "content"));
  Der e(explicit0.content);
  SR_ASSIGN_OR_RETURN(Tlv env, e.Expect(V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, true, "EnvelopedData"));
  Der f(env.content);
  SR_RETURN_IF_ERROR(f.Expect(V_ASN1_INTEGER, V_ASN1_UNIVERSAL, false, "version").status());
  SR_ASSIGN_OR_RETURN(Tlv set, f.Expect(V_ASN1_SET, V_ASN1_UNIVERSAL, true, "recipientInfos"));
  Enveloped out;
  for (Der r(set.content); !r.empty();) {
    SR_ASSIGN_OR_RETURN(Tlv seq, r.Expect(V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, true, "RecipientInfo"));
    SR_ASSIGN_OR_RETURN(RecipientInfo info, ParseRecipient(seq));
    out.recipients.push_back(info);
  }
  if (out.recipients.empty()) return InvalidArgument("PKCS7: no recipients");
  SR_ASSIGN_OR_RETURN(Tlv eci, f.Expect(V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, true, "EncryptedContentInfo"));
  SR_RETURN_IF_ERROR(ParseEncryptedContent(eci, out));
  return out;
}

// PKCS#1 v1.5 decryption. Any failure reads as "not this key", the same for every cause.
Result<SecretBytes> RsaPkcs1Unwrap(EVP_PKEY* key, Bytes wrapped) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(key, nullptr));
  std::size_t len = 0;
  if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1 ||
      EVP_PKEY_decrypt(ctx.get(), nullptr, &len, wrapped.data(), wrapped.size()) != 1) {
    OpensslErrors();
    return NotFound("PKCS7: this key does not unwrap the content key");
  }
  SecretBytes out(len);
  if (EVP_PKEY_decrypt(ctx.get(), out.data(), &len, wrapped.data(), wrapped.size()) != 1) {
    OpensslErrors();
    return NotFound("PKCS7: this key does not unwrap the content key");
  }
  return SecretBytes(out.span().first(len));
}

}  // namespace

Result<SecretBytes> Pkcs7Decrypt(std::span<const std::uint8_t> der, std::span<const PrivateKey> keys) {
  SR_ASSIGN_OR_RETURN(Enveloped env, Parse(der));
  if (env.ciphertext.size() < 16) return InvalidArgument("PKCS7: encrypted content shorter than its tag");
  for (const RecipientInfo& r : env.recipients) {
    for (const PrivateKey& key : keys) {
      if (EVP_PKEY_get_base_id(key.key.get()) != EVP_PKEY_RSA) continue;
      Result<SecretBytes> cek = RsaPkcs1Unwrap(key.key.get(), r.encrypted_key);
      if (!cek.ok() || cek->size() != env.key_size) continue;
      Result<SecretBytes> plain = AesGcmOpen(cek->span(), env.nonce, {}, env.ciphertext);
      if (plain.ok()) return plain;
    }
  }
  return NotFound("no decryption key unwraps this PKCS7 envelope");
}

Result<std::vector<std::string>> Pkcs7Recipients(std::span<const std::uint8_t> der) {
  SR_ASSIGN_OR_RETURN(Enveloped env, Parse(der));
  std::vector<std::string> out;
  for (const RecipientInfo& r : env.recipients) {
    Der d(r.issuer_and_serial);
    SR_ASSIGN_OR_RETURN(Tlv seq, d.Next("issuerAndSerialNumber"));
    Der fields(seq.content);
    SR_ASSIGN_OR_RETURN(Tlv name, fields.Next("issuer"));
    SR_ASSIGN_OR_RETURN(Tlv serial, fields.Next("serial"));
    const unsigned char* p = name.whole.data();
    std::unique_ptr<X509_NAME, OsslDeleter<X509_NAME_free>> dn(
        d2i_X509_NAME(nullptr, &p, static_cast<long>(name.whole.size())));
    char buf[256] = "?";
    if (dn) X509_NAME_oneline(dn.get(), buf, sizeof buf);
    out.push_back(std::string("rsa issuer=") + buf + " serial=" + HexEncode(serial.content));
  }
  return out;
}

}  // namespace sealroot::image::trust
