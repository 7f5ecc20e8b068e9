// test_pki: throw-away CAs and leaf certificates generated at test run time (ECDSA P-256), written
// as PEM files into a private temporary directory that is removed with the Pki object.
//
//   test_pki::Pki pki;
//   auto ca = pki.make_ca("Lab CA");
//   auto srv = pki.make_leaf(ca, "concentrator.lab", {"DNS:concentrator.lab", "IP:198.18.2.2"});
//   auto old = pki.make_leaf(ca, "ue-1", {}, -1);  // expired yesterday
//   ... srv.cert_file, srv.key_file, ca.cert_file
//
// Failures abort the test run (std::abort) with a message: this is test scaffolding.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

namespace test_pki {

struct KeyDeleter {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertDeleter {
    void operator()(X509* c) const { X509_free(c); }
};

struct Cert {
    std::string name;       // the subject CN
    std::string cert_file;  // PEM certificate
    std::string key_file;   // PEM private key (unencrypted)
    std::shared_ptr<EVP_PKEY> key;
    std::shared_ptr<X509> cert;
};

// One extension in OpenSSL's config syntax, e.g. {NID_issuer_alt_name, "critical,DNS:ca.lab"}; nid
// 0 (NID_undef): none.
struct CrlExtension {
    int nid;
    std::string value;
};

class Pki {
public:
    Pki();   // creates the directory (mkdtemp under $TMPDIR or /tmp)
    ~Pki();  // removes it and everything in it
    Pki(const Pki&) = delete;
    Pki& operator=(const Pki&) = delete;

    [[nodiscard]] const std::string& dir() const { return dir_; }

    // Self-signed CA valid from yesterday for days_valid days.
    Cert make_ca(const std::string& cn, int days_valid = 3650);

    // Intermediate CA signed by ca (for chains: leaf -> intermediate -> root).
    Cert make_intermediate(const Cert& ca, const std::string& cn);

    // Leaf signed by ca, for TLS server and client use. sans: "DNS:name" / "IP:addr" entries.
    // days_valid > 0: valid from yesterday until days_valid days from now.
    // days_valid <= 0: already expired: valid from 30 days ago until days_valid days from now
    // (so -1 expired yesterday). starts_in_days > 0 makes it not yet valid.
    Cert make_leaf(const Cert& ca, const std::string& cn, const std::vector<std::string>& sans,
                   int days_valid = 365, int starts_in_days = 0);

    // A file holding the concatenation of the given certificates' PEM (a chain or a CA bundle).
    std::string bundle(const std::string& file_name, const std::vector<const Cert*>& certs);

    // A CRL signed by ca revoking the given certificates, valid from yesterday until
    // next_update_days from now (<= 0: already past its next update). Returns its PEM file.
    // extension: one more CRL extension (none by default).
    std::string make_crl(const Cert& ca, const std::vector<const Cert*>& revoked,
                         const std::string& file_name, int next_update_days = 30,
                         const CrlExtension& extension = {0, ""});

    // Writes text to a file in the directory and returns its path.
    std::string write_file(const std::string& file_name, const std::string& text);

private:
    Cert issue(const Cert* issuer, const std::string& cn, const std::vector<std::string>& sans,
               bool is_ca, long not_before_days, long not_after_days);
    std::string dir_;
    int serial_ = 1;
};

}  // namespace test_pki
