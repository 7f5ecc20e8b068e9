// Helpers for the command-line tests: run a parser over PROGRAM ARGS... and require that it
// succeeds (the result) or fails (its one-line message).
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace porthole::test {

template <class Parse>
auto parsed_ok(Parse parse, const char* program, std::vector<std::string> args) {
    args.insert(args.begin(), program);
    auto r = parse(args);
    REQUIRE_MESSAGE(r.has_value(), r.error().message);
    return *r;
}

template <class Parse>
std::string parse_error(Parse parse, const char* program, std::vector<std::string> args) {
    args.insert(args.begin(), program);
    auto r = parse(args);
    REQUIRE(!r.has_value());
    return r.error().message;
}

}  // namespace porthole::test
