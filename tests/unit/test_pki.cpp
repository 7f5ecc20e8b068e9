#include "test_pki.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace test_pki {
namespace {

[[noreturn]] void die(const std::string& what) {
    unsigned long e = ERR_get_error();
    std::fprintf(stderr, "test_pki: %s: %s\n", what.c_str(),
                 e != 0 ? ERR_reason_error_string(e) : "(no OpenSSL error)");
    std::abort();
}

struct FileCloser {
    void operator()(FILE* f) const { std::fclose(f); }
};
struct NameDeleter {
    void operator()(X509_NAME* n) const { X509_NAME_free(n); }
};
struct ExtDeleter {
    void operator()(X509_EXTENSION* e) const { X509_EXTENSION_free(e); }
};

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    std::unique_ptr<X509_EXTENSION, ExtDeleter> ext(
        X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
    if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) die("extension " + value);
}

std::string slug(const std::string& cn) {
    std::string out;
    for (char c : cn)
        out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    return out;
}

}  // namespace

Pki::Pki() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/porthole-pki-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
        std::perror("test_pki: mkdtemp");
        std::abort();
    }
    dir_ = pattern;
}

Pki::~Pki() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

Cert Pki::make_ca(const std::string& cn, int days_valid) {
    return issue(nullptr, cn, {}, true, -1, days_valid);
}

Cert Pki::make_intermediate(const Cert& ca, const std::string& cn) {
    return issue(&ca, cn, {}, true, -1, 3650);
}

Cert Pki::make_leaf(const Cert& ca, const std::string& cn, const std::vector<std::string>& sans,
                    int days_valid, int starts_in_days) {
    long not_before = starts_in_days > 0 ? starts_in_days : (days_valid > 0 ? -1 : -30);
    return issue(&ca, cn, sans, false, not_before, days_valid);
}

Cert Pki::issue(const Cert* issuer, const std::string& cn, const std::vector<std::string>& sans,
                bool is_ca, long not_before_days, long not_after_days) {
    std::shared_ptr<EVP_PKEY> key(EVP_EC_gen("P-256"), KeyDeleter{});
    if (!key) die("EC key generation");
    std::shared_ptr<X509> cert(X509_new(), CertDeleter{});
    if (!cert) die("X509_new");
    X509* c = cert.get();
    X509_set_version(c, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(c), serial_++);
    X509_gmtime_adj(X509_getm_notBefore(c), not_before_days * 86400L);
    X509_gmtime_adj(X509_getm_notAfter(c), not_after_days * 86400L);
    X509_set_pubkey(c, key.get());

    std::unique_ptr<X509_NAME, NameDeleter> name(X509_NAME_new());
    X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>("porthole tests"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_subject_name(c, name.get());
    X509* signer_cert = issuer != nullptr ? issuer->cert.get() : c;
    EVP_PKEY* signer_key = issuer != nullptr ? issuer->key.get() : key.get();
    X509_set_issuer_name(c, X509_get_subject_name(signer_cert));

    add_ext(c, signer_cert, NID_subject_key_identifier, "hash");
    add_ext(c, signer_cert, NID_authority_key_identifier, "keyid:always");
    if (is_ca) {
        add_ext(c, signer_cert, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(c, signer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(c, signer_cert, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(c, signer_cert, NID_key_usage, "critical,digitalSignature");
        add_ext(c, signer_cert, NID_ext_key_usage, "serverAuth,clientAuth");
        if (!sans.empty()) {
            std::string list;
            for (const auto& s : sans)
                list += (list.empty() ? "" : ",") + s;
            add_ext(c, signer_cert, NID_subject_alt_name, list);
        }
    }
    if (X509_sign(c, signer_key, EVP_sha256()) == 0) die("X509_sign " + cn);

    Cert out;
    out.name = cn;
    std::string base = dir_ + "/" + std::to_string(serial_ - 1) + "-" + slug(cn);
    out.cert_file = base + ".crt";
    out.key_file = base + ".key";
    {
        std::unique_ptr<FILE, FileCloser> f(std::fopen(out.cert_file.c_str(), "w"));
        if (!f || PEM_write_X509(f.get(), c) != 1) die("write " + out.cert_file);
    }
    {
        std::unique_ptr<FILE, FileCloser> f(std::fopen(out.key_file.c_str(), "w"));
        if (!f ||
            PEM_write_PrivateKey(f.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
            die("write " + out.key_file);
    }
    out.key = std::move(key);
    out.cert = std::move(cert);
    return out;
}

std::string Pki::bundle(const std::string& file_name, const std::vector<const Cert*>& certs) {
    std::string text;
    for (const Cert* c : certs) {
        std::ifstream in(c->cert_file);
        std::stringstream ss;
        ss << in.rdbuf();
        text += ss.str();
    }
    return write_file(file_name, text);
}

std::string Pki::write_file(const std::string& file_name, const std::string& text) {
    std::string path = dir_ + "/" + file_name;
    std::ofstream out(path, std::ios::binary);
    out << text;
    if (!out) {
        std::fprintf(stderr, "test_pki: cannot write %s\n", path.c_str());
        std::abort();
    }
    return path;
}

std::string Pki::make_crl(const Cert& ca, const std::vector<const Cert*>& revoked,
                          const std::string& file_name, int next_update_days,
                          const CrlExtension& extension) {
    std::unique_ptr<X509_CRL, decltype(&X509_CRL_free)> crl(X509_CRL_new(), X509_CRL_free);
    if (!crl || X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
        X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca.cert.get())) != 1)
        die("CRL " + file_name);
    std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> last(X509_gmtime_adj(nullptr, -86400L),
                                                               ASN1_TIME_free);
    std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> next(
        X509_gmtime_adj(nullptr,
                        long(next_update_days) * 86400L - (next_update_days <= 0 ? 3600 : 0)),
        ASN1_TIME_free);
    if (!last || !next || X509_CRL_set1_lastUpdate(crl.get(), last.get()) != 1 ||
        X509_CRL_set1_nextUpdate(crl.get(), next.get()) != 1)
        die("CRL dates " + file_name);
    for (const Cert* c : revoked) {
        X509_REVOKED* r = X509_REVOKED_new();
        if (r == nullptr ||
            X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(c->cert.get())) != 1 ||
            X509_REVOKED_set_revocationDate(r, last.get()) != 1 ||
            X509_CRL_add0_revoked(crl.get(), r) != 1)
            die("CRL entry " + c->name);
    }
    if (extension.nid != 0) {
        X509_EXTENSION* ext =
            X509V3_EXT_conf_nid(nullptr, nullptr, extension.nid, extension.value.c_str());
        if (ext == nullptr || X509_CRL_add_ext(crl.get(), ext, -1) != 1)
            die("CRL extension " + file_name);
        X509_EXTENSION_free(ext);
    }
    X509_CRL_sort(crl.get());
    if (X509_CRL_sign(crl.get(), ca.key.get(), EVP_sha256()) == 0) die("CRL sign " + file_name);
    std::string path = dir_ + "/" + file_name;
    std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "w"));
    if (!f || PEM_write_X509_CRL(f.get(), crl.get()) != 1) die("write " + path);
    return path;
}

}  // namespace test_pki
