#include "sim/cert_mint.hpp"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <cstdio>

namespace porthole::sim {
namespace {

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};
struct ExtDeleter {
    void operator()(X509_EXTENSION* e) const { X509_EXTENSION_free(e); }
};
struct BnDeleter {
    void operator()(BIGNUM* b) const { BN_free(b); }
};

std::string ossl_reason() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "unknown OpenSSL error";
    const char* r = ERR_reason_error_string(e);
    return r != nullptr ? r : fmt::format("OpenSSL error {:#x}", e);
}

Result<X509Ptr> read_cert(const std::string& file) {
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen(file.c_str(), "r"));
    if (!f) return sys_error(fmt::format("certificate file '{}'", file), errno);
    X509Ptr x(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
    if (!x) return make_error("certificate file '{}': no PEM certificate: {}", file, ossl_reason());
    return x;
}

Result<PkeyPtr> read_key(const std::string& file) {
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen(file.c_str(), "r"));
    if (!f) return sys_error(fmt::format("key file '{}'", file), errno);
    PkeyPtr k(PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr));
    if (!k) return make_error("key file '{}': no PEM private key: {}", file, ossl_reason());
    return k;
}

// Adds one extension given in openssl.cnf syntax, with issuer context for the key identifiers.
bool add_ext(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    std::unique_ptr<X509_EXTENSION, ExtDeleter> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
    return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

}  // namespace

Result<void> ClientIdentity::apply(SSL* ssl) const {
    ERR_clear_error();
    if (SSL_use_certificate(ssl, cert.get()) != 1 || SSL_use_PrivateKey(ssl, key.get()) != 1 ||
        SSL_check_private_key(ssl) != 1)
        return make_error("cannot use the certificate of '{}': {}", name, ossl_reason());
    // Belt and braces: the context's own certificate must never be presented instead.
    if (SSL_get_certificate(ssl) == nullptr || X509_cmp(SSL_get_certificate(ssl), cert.get()) != 0)
        return make_error("certificate of '{}' not in effect", name);
    return ok();
}

Result<CertMinter> CertMinter::load(const std::string& ca_cert_file,
                                    const std::string& ca_key_file) {
    auto ca = read_cert(ca_cert_file);
    if (!ca) return ca.error();
    auto key = read_key(ca_key_file);
    if (!key) return key.error();
    if (X509_check_private_key(ca->get(), key->get()) != 1)
        return make_error("CA key '{}' does not match CA certificate '{}'", ca_key_file,
                          ca_cert_file);
    return CertMinter(std::move(*ca), std::move(*key));
}

Result<ClientIdentity> CertMinter::mint(const std::string& cn) {
    ERR_clear_error();
    PkeyPtr key(EVP_EC_gen("P-256"));
    if (!key) return make_error("cannot generate a P-256 key: {}", ossl_reason());
    X509Ptr cert(X509_new());
    if (!cert) return make_error("X509_new: {}", ossl_reason());
    X509* x = cert.get();

    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1) return make_error("RAND_bytes: {}", ossl_reason());
    serial[0] &= 0x7f;  // positive
    std::unique_ptr<BIGNUM, BnDeleter> bn(BN_bin2bn(serial, sizeof serial, nullptr));
    X509_NAME* subject = X509_get_subject_name(x);
    bool good = X509_set_version(x, X509_VERSION_3) == 1 && bn &&
                BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x)) != nullptr &&
                X509_gmtime_adj(X509_getm_notBefore(x), -3600) != nullptr &&
                X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600) != nullptr &&
                X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                           reinterpret_cast<const unsigned char*>(cn.c_str()),
                                           int(cn.size()), -1, 0) == 1 &&
                X509_set_issuer_name(x, X509_get_subject_name(ca_.get())) == 1 &&
                X509_set_pubkey(x, key.get()) == 1 &&
                add_ext(x, ca_.get(), NID_basic_constraints, "critical,CA:FALSE") &&
                add_ext(x, ca_.get(), NID_key_usage, "critical,digitalSignature") &&
                add_ext(x, ca_.get(), NID_ext_key_usage, "clientAuth") &&
                add_ext(x, ca_.get(), NID_subject_key_identifier, "hash") &&
                add_ext(x, ca_.get(), NID_authority_key_identifier, "keyid") &&
                X509_sign(x, key_.get(), EVP_sha256()) > 0;
    if (!good) return make_error("cannot mint a certificate for '{}': {}", cn, ossl_reason());
    return ClientIdentity{cn, std::move(cert), std::move(key)};
}

Result<ClientIdentity> load_identity(const std::string& cert_file, const std::string& key_file) {
    auto cert = read_cert(cert_file);
    if (!cert) return cert.error();
    auto key = read_key(key_file);
    if (!key) return key.error();
    if (X509_check_private_key(cert->get(), key->get()) != 1)
        return make_error("key file '{}' does not match certificate file '{}'", key_file,
                          cert_file);
    std::string name(256, '\0');
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert->get()), NID_commonName,
                                      name.data(), int(name.size()));
    name.resize(n > 0 ? size_t(n) : 0);
    return ClientIdentity{name, std::move(*cert), std::move(*key)};
}

}  // namespace porthole::sim
