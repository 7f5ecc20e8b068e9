// RevocationList: the CRLs of the client CAs, checked once when loaded, then only looked up.
//
// OpenSSL's own revocation check (X509_V_FLAG_CRL_CHECK) verifies the CRL's signature again in
// every certificate verification: one more ECDSA verification per full handshake, ~60 µs, about
// a tenth of what a first contact costs the concentrator. The CRLs cannot change while a context
// lives (a reload makes a new context), so their signatures are verified here once, when loaded,
// and a handshake only looks the UE's certificate up (a binary search by serial number).
//
// Semantics (those of CRL_CHECK for the leaf, which is what portholed asked of OpenSSL before):
// a verified leaf certificate is revoked when a CRL of its issuer lists it; a leaf whose issuer
// has no CRL loaded is refused ("unable to get certificate CRL"); only the leaf is checked (the
// client CA is the operator's own). Deliberately stricter or simpler than RFC 5280's full
// algorithm, and said so at load: the CRLs' dates do not matter (an expired CRL still lists what
// it revoked; a warning is logged), several CRLs of one issuer all apply (a certificate is
// revoked if any lists it; an entry with reason removeFromCRL does not revoke), and a CRL with a
// critical extension other than the issuing distribution point or delta-CRL indicator is
// refused at load rather than ignored.
#pragma once

#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace porthole::tls {

class RevocationList {
public:
    enum class Status { good, revoked, no_crl };

    // Reads every CRL in `crl_file` (PEM, one or more). Each must be signed by a CA certificate
    // in `trusted` (the client CA store); errors name the file and what is wrong.
    static Result<std::unique_ptr<RevocationList>> load(const std::string& crl_file,
                                                        X509_STORE* trusted);

    // `cert` as issued by `issuer` (the next certificate of its verified chain). Thread-safe:
    // the CRLs are only read (OpenSSL sorts a CRL's entries once, under its own lock).
    [[nodiscard]] Status check(X509* cert, X509* issuer) const;

    [[nodiscard]] size_t crl_count() const { return crls_.size(); }

private:
    struct X509Deleter {
        void operator()(X509* x) const { X509_free(x); }
    };
    struct CrlDeleter {
        void operator()(X509_CRL* c) const { X509_CRL_free(c); }
    };
    struct Crl {
        std::unique_ptr<X509_CRL, CrlDeleter> crl;
        std::unique_ptr<X509, X509Deleter> issuer;  // the client CA whose key signed it
    };
    std::vector<Crl> crls_;
};

}  // namespace porthole::tls
