#include "tls/revocation_list.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <initializer_list>

#include "base/log.hpp"
#include "tls/openssl_error.hpp"

namespace porthole::tls {
namespace {

struct BioDeleter {
    void operator()(BIO* b) const { BIO_free(b); }
};

// "CN=Lab CA" for error messages.
std::string one_line(const X509_NAME* name) {
    char buf[256];
    if (name == nullptr || X509_NAME_oneline(name, buf, sizeof buf) == nullptr) return "?";
    return buf;
}

// The CA certificate in the store that issued `crl` (same name, signature verifies), if any.
X509* crl_issuer(X509_STORE* store, X509_CRL* crl) {
    STACK_OF(X509_OBJECT)* objects = X509_STORE_get0_objects(store);
    for (int i = 0; i < sk_X509_OBJECT_num(objects); ++i) {
        X509* ca = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objects, i));
        if (ca == nullptr || X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)))
            continue;
        EVP_PKEY* key = X509_get0_pubkey(ca);
        if (key != nullptr && X509_CRL_verify(crl, key) == 1) return ca;
    }
    ERR_clear_error();
    return nullptr;
}

// A critical extension this check would not honour, as its OID text; empty when there is none.
// The issuing distribution point only narrows which certificates a CRL covers and a delta CRL
// only adds entries: applying every listed serial as revoked stays on the safe side for both.
std::string unhandled_critical_extension(const X509_CRL* crl) {
    auto unknown = [](const X509_EXTENSION* ext, std::initializer_list<int> known) {
        if (X509_EXTENSION_get_critical(ext) == 0) return false;
        const int nid = OBJ_obj2nid(X509_EXTENSION_get_object(const_cast<X509_EXTENSION*>(ext)));
        for (int k : known)
            if (nid == k) return false;
        return true;
    };
    auto oid_text = [](const X509_EXTENSION* ext) {
        char buf[128];
        OBJ_obj2txt(buf, sizeof buf, X509_EXTENSION_get_object(const_cast<X509_EXTENSION*>(ext)),
                    0);
        return std::string(buf);
    };
    for (int i = 0; i < X509_CRL_get_ext_count(crl); ++i) {
        const X509_EXTENSION* ext = X509_CRL_get_ext(crl, i);
        if (unknown(ext,
                    {NID_issuing_distribution_point, NID_delta_crl, NID_authority_key_identifier}))
            return oid_text(ext);
    }
    STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(const_cast<X509_CRL*>(crl));
    for (int i = 0; i < sk_X509_REVOKED_num(entries); ++i) {
        const X509_REVOKED* entry = sk_X509_REVOKED_value(entries, i);
        for (int j = 0; j < X509_REVOKED_get_ext_count(entry); ++j) {
            const X509_EXTENSION* ext = X509_REVOKED_get_ext(entry, j);
            if (unknown(ext, {NID_crl_reason, NID_invalidity_date, NID_certificate_issuer}))
                return oid_text(ext);
        }
    }
    return {};
}

}  // namespace

Result<std::unique_ptr<RevocationList>> RevocationList::load(const std::string& crl_file,
                                                             X509_STORE* trusted) {
    if (::access(crl_file.c_str(), R_OK) != 0) {
        const int err = errno;
        return Error{fmt::format("crl file '{}': {}", crl_file, std::strerror(err)), err};
    }
    ERR_clear_error();
    std::unique_ptr<BIO, BioDeleter> bio(BIO_new_file(crl_file.c_str(), "r"));
    if (!bio) return make_error("crl file '{}': cannot open: {}", crl_file, openssl_reason());
    auto list = std::make_unique<RevocationList>();
    for (;;) {
        std::unique_ptr<X509_CRL, CrlDeleter> crl(
            PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
        if (!crl) {
            const unsigned long e = ERR_peek_last_error();
            if (!list->crls_.empty() && ERR_GET_LIB(e) == ERR_LIB_PEM &&
                ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
                ERR_clear_error();
                break;  // end of file
            }
            return make_error("crl file '{}': {}", crl_file,
                              list->crls_.empty() ? "no CRL in it (PEM 'X509 CRL' expected)"
                                                  : openssl_reason().c_str());
        }
        X509* issuer = crl_issuer(trusted, crl.get());
        if (issuer == nullptr)
            return make_error("crl file '{}': not issued by the client CA (CRL issuer: {})",
                              crl_file, one_line(X509_CRL_get_issuer(crl.get())));
        if (std::string oid = unhandled_critical_extension(crl.get()); !oid.empty())
            return make_error(
                "crl file '{}': the CRL of {} has a critical extension portholed does not "
                "handle ({})",
                crl_file, one_line(X509_CRL_get_issuer(crl.get())), oid);
        if (const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
            next != nullptr && X509_cmp_current_time(next) < 0)
            log::warn(
                "crl file '{}': past its next-update date; its revocations still apply, but "
                "publish a new one (porthole-ca crl)",
                crl_file);
        if (const ASN1_TIME* last = X509_CRL_get0_lastUpdate(crl.get());
            last != nullptr && X509_cmp_current_time(last) > 0)
            log::warn(
                "crl file '{}': issued in the future (this machine's clock?); its revocations "
                "apply now",
                crl_file);
        X509_up_ref(issuer);
        list->crls_.push_back(Crl{std::move(crl), std::unique_ptr<X509, X509Deleter>(issuer)});
    }
    return list;
}

RevocationList::Status RevocationList::check(X509* cert, X509* issuer) const {
    if (cert == nullptr || issuer == nullptr) return Status::no_crl;
    bool covered = false;
    for (const Crl& c : crls_) {
        // The issuer of the verified chain, or the same CA name with the same key (a re-issued
        // CA certificate): the key that signed this CRL is the one that signed `cert`.
        const bool same_ca =
            X509_cmp(issuer, c.issuer.get()) == 0 ||
            (X509_NAME_cmp(X509_get_subject_name(issuer), X509_CRL_get_issuer(c.crl.get())) == 0 &&
             EVP_PKEY_eq(X509_get0_pubkey(issuer), X509_get0_pubkey(c.issuer.get())) == 1);
        if (!same_ca) continue;
        covered = true;
        X509_REVOKED* entry = nullptr;
        // 1: listed; 2: listed with reason removeFromCRL (taken off hold), i.e. not revoked.
        if (X509_CRL_get0_by_cert(c.crl.get(), &entry, cert) == 1) return Status::revoked;
    }
    ERR_clear_error();
    return covered ? Status::good : Status::no_crl;
}

}  // namespace porthole::tls
