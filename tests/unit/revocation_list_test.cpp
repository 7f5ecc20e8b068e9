#include "tls/revocation_list.hpp"

#include <doctest/doctest.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "test_pki.hpp"

using porthole::tls::RevocationList;
using Status = porthole::tls::RevocationList::Status;

namespace {

struct StoreDeleter {
    void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
using StorePtr = std::unique_ptr<X509_STORE, StoreDeleter>;

StorePtr trusting(std::initializer_list<const test_pki::Cert*> cas) {
    StorePtr store(X509_STORE_new());
    REQUIRE(store);
    for (const auto* ca : cas)
        REQUIRE(X509_STORE_add_cert(store.get(), ca->cert.get()) == 1);
    return store;
}

std::unique_ptr<RevocationList> must_load(const std::string& file, X509_STORE* store) {
    auto r = RevocationList::load(file, store);
    if (!r) FAIL("load: " << r.error().message);
    return std::move(r).value();
}

// The same CA (name and key) in a new certificate, as when a CA certificate is renewed.
std::shared_ptr<X509> reissued(const test_pki::Cert& ca) {
    std::shared_ptr<X509> copy(X509_dup(ca.cert.get()), X509_free);
    REQUIRE(copy);
    REQUIRE(ASN1_INTEGER_set(X509_get_serialNumber(copy.get()), 999999) == 1);
    REQUIRE(X509_sign(copy.get(), ca.key.get(), EVP_sha256()) > 0);
    return copy;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    REQUIRE(in);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

TEST_CASE("revocation list: the leaf is looked up in its issuer's CRLs") {
    test_pki::Pki pki;
    auto ca = pki.make_ca("Lab CA");
    auto other = pki.make_ca("Other CA");
    auto alice = pki.make_leaf(ca, "alice", {});
    auto bob = pki.make_leaf(ca, "bob", {});
    auto carol = pki.make_leaf(other, "carol", {});
    auto store = trusting({&ca, &other});

    auto list = must_load(pki.make_crl(ca, {&alice}, "crl.pem"), store.get());
    CHECK(list->crl_count() == 1);
    CHECK(list->check(alice.cert.get(), ca.cert.get()) == Status::revoked);
    CHECK(list->check(bob.cert.get(), ca.cert.get()) == Status::good);
    // Another trusted CA without a CRL: refused, as OpenSSL's CRL_CHECK would.
    CHECK(list->check(carol.cert.get(), other.cert.get()) == Status::no_crl);
    CHECK(list->check(alice.cert.get(), nullptr) == Status::no_crl);

    SUBCASE("a renewed certificate of the same CA (same name and key) is the same issuer") {
        auto renewed = reissued(ca);
        CHECK(list->check(alice.cert.get(), renewed.get()) == Status::revoked);
        CHECK(list->check(bob.cert.get(), renewed.get()) == Status::good);
    }
    SUBCASE("a CA of the same name with another key is not") {
        auto impostor = pki.make_ca("Lab CA");
        CHECK(list->check(alice.cert.get(), impostor.cert.get()) == Status::no_crl);
    }
    SUBCASE("several CRLs of one issuer all apply; each CA's list applies to its own") {
        const std::string first = pki.make_crl(ca, {}, "empty.pem");
        const std::string second = pki.make_crl(ca, {&bob}, "bob.pem");
        const std::string third = pki.make_crl(other, {&carol}, "carol.pem");
        const std::string text = slurp(first) + slurp(second) + slurp(third);
        auto three = must_load(pki.write_file("three.pem", text), store.get());
        CHECK(three->crl_count() == 3);
        CHECK(three->check(bob.cert.get(), ca.cert.get()) == Status::revoked);
        CHECK(three->check(alice.cert.get(), ca.cert.get()) == Status::good);
        CHECK(three->check(carol.cert.get(), other.cert.get()) == Status::revoked);
    }
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("revocation list: what is refused at load") {
    test_pki::Pki pki;
    auto ca = pki.make_ca("Lab CA");
    auto alice = pki.make_leaf(ca, "alice", {});
    auto store = trusting({&ca});

    SUBCASE("a critical extension it would not honour") {
        const std::string file = pki.make_crl(ca, {&alice}, "critical.pem", 30,
                                              {NID_issuer_alt_name, "critical,DNS:ca.lab"});
        auto r = RevocationList::load(file, store.get());
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message.find("critical extension") != std::string::npos);
        CHECK(r.error().message.find(file) != std::string::npos);
        MESSAGE(r.error().message);
    }
    SUBCASE("the same extension, not critical, is fine") {
        auto list = must_load(
            pki.make_crl(ca, {&alice}, "numbered.pem", 30, {NID_issuer_alt_name, "DNS:ca.lab"}),
            store.get());
        CHECK(list->check(alice.cert.get(), ca.cert.get()) == Status::revoked);
    }
    SUBCASE("a CRL in the CA's name, signed with another key") {
        auto impostor = pki.make_ca("Lab CA");
        auto r = RevocationList::load(pki.make_crl(impostor, {}, "forged.pem"), store.get());
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().message.find(
                  "not issued by the client CA (CRL issuer: /O=porthole tests/CN=Lab CA)") !=
              std::string::npos);
    }
    SUBCASE("a missing file, an empty one, a truncated second CRL") {
        auto missing = RevocationList::load(pki.dir() + "/none.pem", store.get());
        REQUIRE_FALSE(missing.has_value());
        CHECK(missing.error().message.find("No such file") != std::string::npos);
        auto empty = RevocationList::load(pki.write_file("empty.pem", ""), store.get());
        REQUIRE_FALSE(empty.has_value());
        CHECK(empty.error().message.find("no CRL in it") != std::string::npos);
        const std::string good = slurp(pki.make_crl(ca, {&alice}, "good.pem"));
        auto broken = RevocationList::load(
            pki.write_file("broken.pem",
                           good + "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"),
            store.get());
        REQUIRE_FALSE(broken.has_value());
        CHECK(broken.error().message.find("broken.pem") != std::string::npos);
        MESSAGE(broken.error().message);
    }
    CHECK(ERR_peek_error() == 0);
}
