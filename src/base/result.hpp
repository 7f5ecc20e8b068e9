// Result<T>: the value of an operation that can fail, or the Error saying why.
// A small stand-in for std::expected (C++23), which clang 14 cannot compile from libstdc++.
#pragma once

#include <fmt/format.h>

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace porthole {

// One clear line for a human, with the context that produced it ("connect 198.18.2.2:443: ...").
struct Error {
    std::string message;
    int code = 0;  // errno or a library code when there is one; 0 otherwise

    [[nodiscard]] Error context(std::string_view what) const {
        return Error{fmt::format("{}: {}", what, message), code};
    }
};

template <class... Args>
[[nodiscard]] Error make_error(fmt::format_string<Args...> f, Args&&... args) {
    return Error{fmt::format(f, std::forward<Args>(args)...), 0};
}

// Error built from errno (captured by the caller right after the failing call).
[[nodiscard]] Error sys_error(std::string_view what, int err);

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
    Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

    [[nodiscard]] bool has_value() const { return v_.index() == 0; }
    explicit operator bool() const { return has_value(); }

    T& value() & {
        assert(has_value());
        return std::get<0>(v_);
    }
    const T& value() const& {
        assert(has_value());
        return std::get<0>(v_);
    }
    T&& value() && {
        assert(has_value());
        return std::get<0>(std::move(v_));
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const {
        assert(!has_value());
        return std::get<1>(v_);
    }

private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT

    [[nodiscard]] bool has_value() const { return !failed_; }
    explicit operator bool() const { return !failed_; }
    const Error& error() const {
        assert(failed_);
        return error_;
    }

private:
    Error error_;
    bool failed_ = false;
};

inline Result<void> ok() {
    return {};
}

}  // namespace porthole
