// Log line formatting: fields, escaping, journal priorities and the plain timestamp style.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "base/log.hpp"

using namespace porthole;

TEST_CASE("log: fields follow the message as key=value, empty ones left out") {
    log::Fields f{{"sid", 7}, {"identity", std::string("ue1")}, {"peer", std::string()}};
    CHECK(f.text() == " sid=7 identity=ue1");
    f.add({"bytes", 1500u});
    CHECK(f.text() == " sid=7 identity=ue1 bytes=1500");
    CHECK(log::Fields{}.text().empty());
}

TEST_CASE("log: values with spaces, quotes, '=' or control characters are quoted") {
    CHECK(log::Fields{{"identity", std::string("Jane Doe")}}.text() == " identity=\"Jane Doe\"");
    CHECK(log::Fields{{"identity", std::string("a\"b")}}.text() == " identity=\"a\\\"b\"");
    CHECK(log::Fields{{"identity", std::string("a=b")}}.text() == " identity=\"a=b\"");
    CHECK(log::Fields{{"identity", std::string("x\ny")}}.text() == " identity=\"x\\ny\"");
    CHECK(log::Fields{{"identity", std::string("\x01")}}.text() == " identity=\"\\x01\"");
}

TEST_CASE("log: journal style is the sd-daemon priority and the line, no timestamp") {
    auto t = std::chrono::system_clock::time_point{};
    CHECK(log::format_line(log::Level::error, "boom", log::Style::journal, t) == "<3>boom\n");
    CHECK(log::format_line(log::Level::warn, "hm", log::Style::journal, t) == "<4>hm\n");
    CHECK(log::format_line(log::Level::info, "up sid=1", log::Style::journal, t) ==
          "<6>up sid=1\n");
    CHECK(log::format_line(log::Level::debug, "x", log::Style::journal, t) == "<7>x\n");
}

TEST_CASE("log: plain style has a UTC timestamp with milliseconds and the level") {
    // 2024-03-05 06:07:08.009 UTC
    auto t = std::chrono::system_clock::time_point{std::chrono::seconds(1709618828)} +
             std::chrono::milliseconds(9);
    CHECK(log::format_line(log::Level::info, "listening", log::Style::plain, t) ==
          "2024-03-05T06:07:08.009Z info: listening\n");
    CHECK(log::format_line(log::Level::warn, "w", log::Style::plain, t) ==
          "2024-03-05T06:07:08.009Z warn: w\n");
}

TEST_CASE("log: one event is one line whatever the message holds") {
    auto t = std::chrono::system_clock::time_point{};
    CHECK(log::format_line(log::Level::info, "a\nb\rc", log::Style::journal, t) ==
          "<6>a\\nb\\rc\n");
}

TEST_CASE("log: level names round-trip") {
    for (auto l : {log::Level::debug, log::Level::info, log::Level::warn, log::Level::error}) {
        log::Level back{};
        REQUIRE(log::parse_level(log::level_name(l), back));
        CHECK(back == l);
    }
    log::Level out{};
    CHECK_FALSE(log::parse_level("verbose", out));
}
