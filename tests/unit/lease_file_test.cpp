#include <doctest/doctest.h>

#include <algorithm>

#include "session/lease_file.hpp"
#include "test_wire.hpp"

using namespace porthole;
using porthole::test::A;
using session::Lease;

TEST_CASE("lease file: leases survive a format/parse round trip, awkward identities included") {
    std::vector<Lease> leases = {
        {"ue1", A("100.64.0.2"), {std::byte{0xde}, std::byte{0xad}, std::byte{0x01}}},
        {"CN with spaces", A("fd00:64::9"), {}},
        {"tab\there\nnewline\\back\rcr", A("100.64.3.250"), {std::byte{0}}},
    };
    auto text = session::format_leases(leases);
    CHECK(text.rfind("# porthole leases v1\n", 0) == 0);
    // One line per lease plus the header: escaping kept every identity on its own line.
    CHECK(std::count(text.begin(), text.end(), '\n') == 4);
    auto back = session::parse_leases(text);
    REQUIRE(back.has_value());
    CHECK(*back == leases);
}

TEST_CASE("lease file: an empty list is just the header") {
    auto back = session::parse_leases(session::format_leases({}));
    REQUIRE(back.has_value());
    CHECK(back->empty());
}

TEST_CASE("lease file: damaged files are refused with the line named") {
    CHECK_FALSE(session::parse_leases("").has_value());
    CHECK_FALSE(session::parse_leases("not a lease file\n").has_value());
    const char* bad[] = {
        "# porthole leases v1\n100.64.0.2 -\n",         // no identity
        "# porthole leases v1\nnot-an-ip - ue1\n",      // bad address
        "# porthole leases v1\n100.64.0.2 abc ue1\n",   // odd-length token
        "# porthole leases v1\n100.64.0.2 zz ue1\n",    // not hex
        "# porthole leases v1\n100.64.0.2 - ue\\q1\n",  // unknown escape
        "# porthole leases v1\n100.64.0.2 - ue1\\\n",   // dangling backslash
    };
    for (const char* text : bad) {
        auto r = session::parse_leases(text);
        CHECK_MESSAGE(!r.has_value(), text);
        if (!r) CHECK(r.error().message.find("line 2") != std::string::npos);
    }
}
