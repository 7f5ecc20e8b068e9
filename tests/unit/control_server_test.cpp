// src/control/control_server: a real unix socket in a temporary directory, the loop run here,
// the client (control_request) in a thread.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "control/control_client.hpp"
#include "control/control_server.hpp"
#include "test_temp_dir.hpp"

using namespace porthole;
using namespace std::chrono_literals;
using test::TempDir;

namespace {

// Runs the loop until `done` (bounded by 5 s).
void run_until(net::EventLoop& loop, const std::atomic<bool>& done) {
    auto until = std::chrono::steady_clock::now() + 5s;
    while (!done && std::chrono::steady_clock::now() < until)
        (void)loop.run_once(10ms);
}

Result<std::string> ask(net::EventLoop& loop, const std::string& path, std::string request) {
    std::atomic<bool> done = false;
    Result<std::string> reply = make_error("no reply");
    std::thread client([&] {
        reply = control::control_request(path, request, 3s);
        done = true;
    });
    run_until(loop, done);
    client.join();
    return reply;
}

Fd raw_connect(const std::string& path) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strncpy(sun.sun_path, path.c_str(), sizeof sun.sun_path - 1);
    Fd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
    REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0);
    return fd;
}

}  // namespace

TEST_CASE("control server: request, reply, limits, stale and live sockets") {
    TempDir dir;
    auto loop = net::EventLoop::create();
    REQUIRE(loop);
    control::ControlServerOptions o;
    o.path = dir.path.string() + "/run/ctl.sock";  // the parent is created
    o.max_request = 64;
    o.timeout = 300ms;
    std::string last;
    auto server = control::ControlServer::create(*loop, o, [&](std::string_view req) {
        last = std::string(req);
        return "{\"echo\":\"" + last + "\"}\n";
    });
    REQUIRE_MESSAGE(server.has_value(), (server ? std::string() : server.error().message));

    struct stat st {};
    REQUIRE(::stat(o.path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 0777) == 0660);
    REQUIRE(::stat((dir.path.string() + "/run").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0750);

    auto reply = ask(*loop, o.path, "status");
    REQUIRE_MESSAGE(reply.has_value(), (reply ? std::string() : reply.error().message));
    CHECK(*reply == "{\"echo\":\"status\"}\n");
    CHECK(last == "status");

    SUBCASE("an over-long request is refused without reaching the handler") {
        last.clear();
        auto r = ask(*loop, o.path, std::string(200, 'a'));
        REQUIRE(r);
        CHECK(r->find("request too long") != std::string::npos);
        CHECK(last.empty());
    }
    SUBCASE("a client that never sends is closed after the timeout") {
        Fd idle = raw_connect(o.path);
        std::atomic<bool> never = false;
        auto t0 = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() - t0 < 700ms)
            (void)loop->run_once(10ms);
        CHECK((*server)->connections() == 0);
        char c;
        CHECK(::recv(idle.get(), &c, 1, MSG_DONTWAIT) == 0);  // closed by the server
        (void)never;
    }
    SUBCASE("more clients than slots: the extra ones are closed, the server keeps serving") {
        std::vector<Fd> idle;
        for (int i = 0; i < 20; ++i) {
            idle.push_back(raw_connect(o.path));
            (void)loop->run_once(1ms);  // a unix socket's connect blocks while the backlog is full
        }
        CHECK((*server)->connections() == o.max_clients);
        idle.clear();
        auto t0 = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() - t0 < 100ms)
            (void)loop->run_once(10ms);
        CHECK((*server)->connections() == 0);
        CHECK(ask(*loop, o.path, "again").has_value());
    }
    SUBCASE("a second server on a live socket is refused") {
        auto second = control::ControlServer::create(*loop, o, [](std::string_view) { return ""; });
        REQUIRE_FALSE(second);
        CHECK(second.error().message ==
              "control socket " + o.path + " is in use by another portholed");
    }
    SUBCASE("the file goes with the server; a stale file is replaced") {
        server->reset();
        CHECK(::access(o.path.c_str(), F_OK) != 0);
        {  // a socket file nobody listens on (as after a crash)
            sockaddr_un sun{};
            sun.sun_family = AF_UNIX;
            std::strncpy(sun.sun_path, o.path.c_str(), sizeof sun.sun_path - 1);
            Fd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
            REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0);
        }
        REQUIRE(::access(o.path.c_str(), F_OK) == 0);
        auto again = control::ControlServer::create(
            *loop, o, [](std::string_view) { return std::string("{}\n"); });
        REQUIRE_MESSAGE(again.has_value(), (again ? std::string() : again.error().message));
        CHECK(*ask(*loop, o.path, "x") == "{}\n");
    }
}

TEST_CASE("control client: one-line errors") {
    TempDir dir;
    auto r = control::control_request(dir.path.string() + "/none.sock", "status", 1s);
    REQUIRE_FALSE(r);
    CHECK(r.error().message == "cannot reach portholed at " + dir.path.string() +
                                   "/none.sock: no such file (is portholed running?)");
    std::string file = dir.path.string() + "/plain";
    { Fd f(::open(file.c_str(), O_CREAT | O_WRONLY, 0600)); }
    auto r2 = control::control_request(file, "status", 1s);
    REQUIRE_FALSE(r2);
    CHECK(r2.error().message.find("cannot reach portholed at " + file + ": connection refused") ==
          0);
}
