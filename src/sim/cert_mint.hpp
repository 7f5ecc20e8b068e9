// CertMinter: issues throw-away client certificates in memory for simulated UEs, signed by a CA
// whose certificate and key are given as PEM files (e.g. the lab CA of scripts/pki.sh). Each leaf
// has a fresh ECDSA P-256 key, CN = the identity, clientAuth, valid from an hour ago for a day.
// Nothing is written to disk. For load tests only.
#pragma once

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "base/result.hpp"

namespace porthole::sim {

struct X509Deleter {
    void operator()(X509* x) const { X509_free(x); }
};
struct PkeyDeleter {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

// A client certificate and its key; shared by the sessions that use it.
struct ClientIdentity {
    std::string name;  // the certificate's CN
    X509Ptr cert;
    PkeyPtr key;

    // Makes ssl present this certificate instead of its context's one, and checks that it does.
    Result<void> apply(SSL* ssl) const;
};

class CertMinter {
public:
    static Result<CertMinter> load(const std::string& ca_cert_file, const std::string& ca_key_file);
    Result<ClientIdentity> mint(const std::string& common_name);

private:
    CertMinter(X509Ptr ca, PkeyPtr key) : ca_(std::move(ca)), key_(std::move(key)) {}
    X509Ptr ca_;
    PkeyPtr key_;
};

// Loads a certificate and key pair from PEM files (the --cert/--key mode).
Result<ClientIdentity> load_identity(const std::string& cert_file, const std::string& key_file);

}  // namespace porthole::sim
