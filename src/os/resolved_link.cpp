#include "os/resolved_link.hpp"

#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <cstring>
#include <memory>

namespace porthole::os {
namespace {

constexpr const char* kService = "org.freedesktop.resolve1";
constexpr const char* kPath = "/org/freedesktop/resolve1";
constexpr const char* kManager = "org.freedesktop.resolve1.Manager";
constexpr uint64_t kTimeoutUs = 5'000'000;

struct BusDeleter {
    void operator()(sd_bus* b) const { sd_bus_flush_close_unref(b); }
};
struct MessageDeleter {
    void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
using Bus = std::unique_ptr<sd_bus, BusDeleter>;
using Message = std::unique_ptr<sd_bus_message, MessageDeleter>;

// sd_bus_error with RAII.
struct BusError {
    sd_bus_error e = SD_BUS_ERROR_NULL;
    ~BusError() { sd_bus_error_free(&e); }
};

Result<Bus> open_bus() {
    sd_bus* b = nullptr;
    if (int r = sd_bus_open_system(&b); r < 0)
        return make_error("systemd-resolved: cannot connect to the system bus: {}",
                          std::strerror(-r));
    return Bus(b);
}

Result<Message> new_call(sd_bus* bus, const char* method) {
    sd_bus_message* m = nullptr;
    if (int r = sd_bus_message_new_method_call(bus, &m, kService, kPath, kManager, method); r < 0)
        return make_error("systemd-resolved {}: {}", method, std::strerror(-r));
    return Message(m);
}

Result<void> call(sd_bus* bus, sd_bus_message* m, const char* method) {
    BusError err;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call(bus, m, kTimeoutUs, &err.e, &reply);
    sd_bus_message_unref(reply);
    if (r < 0)
        return make_error("systemd-resolved {}: {}", method,
                          err.e.message ? err.e.message : std::strerror(-r));
    return ok();
}

Result<void> check(int r, const char* method) {
    if (r < 0)
        return make_error("systemd-resolved {}: building the call: {}", method, std::strerror(-r));
    return ok();
}

}  // namespace

bool resolved_running() {
    if (::access("/run/systemd/resolve", F_OK) != 0) return false;
    auto bus = open_bus();
    if (!bus) return false;
    BusError err;
    sd_bus_message* reply = nullptr;
    int r =
        sd_bus_call_method(bus->get(), "org.freedesktop.DBus", "/org/freedesktop/DBus",
                           "org.freedesktop.DBus", "NameHasOwner", &err.e, &reply, "s", kService);
    if (r < 0) return false;
    int has = 0;
    r = sd_bus_message_read(reply, "b", &has);
    sd_bus_message_unref(reply);
    return r >= 0 && has;
}

Result<void> resolved_apply(int ifindex, const DnsSettings& s) {
    auto bus = open_bus();
    if (!bus) return bus.error();

    if (!s.servers.empty()) {
        auto m = new_call(bus->get(), "SetLinkDNS");
        if (!m) return m.error();
        int r = sd_bus_message_append(m->get(), "i", ifindex);
        if (r >= 0) r = sd_bus_message_open_container(m->get(), 'a', "(iay)");
        for (const auto& a : s.servers) {
            if (r >= 0) r = sd_bus_message_open_container(m->get(), 'r', "iay");
            if (r >= 0) r = sd_bus_message_append(m->get(), "i", a.is_v4() ? AF_INET : AF_INET6);
            auto bytes = a.bytes();
            if (r >= 0) r = sd_bus_message_append_array(m->get(), 'y', bytes.data(), bytes.size());
            if (r >= 0) r = sd_bus_message_close_container(m->get());
        }
        if (r >= 0) r = sd_bus_message_close_container(m->get());
        if (auto c = check(r, "SetLinkDNS"); !c) return c;
        if (auto c = call(bus->get(), m->get(), "SetLinkDNS"); !c) return c;
    }

    auto m = new_call(bus->get(), "SetLinkDomains");
    if (!m) return m.error();
    int r = sd_bus_message_append(m->get(), "i", ifindex);
    if (r >= 0) r = sd_bus_message_open_container(m->get(), 'a', "(sb)");
    if (s.full_tunnel && !s.servers.empty() && r >= 0)
        r = sd_bus_message_append(m->get(), "(sb)", ".", 1);  // "~.": every name, routing only
    for (const auto& d : s.search)
        if (r >= 0) r = sd_bus_message_append(m->get(), "(sb)", d.c_str(), 0);
    if (r >= 0) r = sd_bus_message_close_container(m->get());
    if (auto c = check(r, "SetLinkDomains"); !c) return c;
    if (auto c = call(bus->get(), m->get(), "SetLinkDomains"); !c) return c;

    auto d = new_call(bus->get(), "SetLinkDefaultRoute");
    if (!d) return d.error();
    r = sd_bus_message_append(d->get(), "ib", ifindex, int(s.full_tunnel && !s.servers.empty()));
    if (auto c = check(r, "SetLinkDefaultRoute"); !c) return c;
    return call(bus->get(), d->get(), "SetLinkDefaultRoute");
}

Result<void> resolved_revert(int ifindex) {
    auto bus = open_bus();
    if (!bus) return bus.error();
    auto m = new_call(bus->get(), "RevertLink");
    if (!m) return m.error();
    if (auto c = check(sd_bus_message_append(m->get(), "i", ifindex), "RevertLink"); !c) return c;
    BusError err;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call(bus->get(), m->get(), kTimeoutUs, &err.e, &reply);
    sd_bus_message_unref(reply);
    if (r < 0 && !sd_bus_error_has_name(&err.e, "org.freedesktop.resolve1.NoSuchLink"))
        return make_error("systemd-resolved RevertLink: {}",
                          err.e.message ? err.e.message : std::strerror(-r));
    return ok();
}

}  // namespace porthole::os
