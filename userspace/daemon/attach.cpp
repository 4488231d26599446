#include "daemon/attach.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>
#include <xdp/libxdp.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "bpfmaps/counters.hpp"
#include "bpfmaps/datapath.hpp"
#include "bpfmaps/error.hpp"
#include "daemon/stats.hpp"

namespace vaultwall::daemon {

namespace fs = std::filesystem;

namespace {

// libxdp explains its dispatcher fallback at length on stderr; keep only
// warnings that are not about the fallback this kernel always takes.
int libxdp_print(enum libxdp_print_level level, const char* fmt, va_list args) {
    if (level != LIBXDP_WARN) return 0;
    static const char* const quiet[] = {"dispatcher", "Compatibility check", "freplace",
                                        "multiprog", "Falling back", "load dispatcher"};
    for (const char* q : quiet)
        if (std::strstr(fmt, q)) return 0;
    return vfprintf(stderr, fmt, args);
}

// libbpf's messages while libxdp tries (and, on kernels without freplace,
// fails) to load its dispatcher: kept, and shown only when attaching fails
// for a reason we cannot explain ourselves.
thread_local std::string* g_libbpf_log = nullptr;
int libbpf_capture(enum libbpf_print_level level, const char* fmt, va_list args) {
    if (level == LIBBPF_DEBUG || !g_libbpf_log) return 0;
    char buf[1024];
    int n = vsnprintf(buf, sizeof(buf), fmt, args);
    g_libbpf_log->append(buf);
    return n;
}

struct CaptureLibbpf {
    std::string log;
    libbpf_print_fn_t old;
    CaptureLibbpf() {
        g_libbpf_log = &log;
        old = libbpf_set_print(libbpf_capture);
    }
    ~CaptureLibbpf() {
        libbpf_set_print(old);
        g_libbpf_log = nullptr;
    }
};

void quiet_libxdp() {
    static const bool done = (libxdp_set_print(libxdp_print), true);
    (void)done;
}

std::string xdp_errstr(int err) {
    char buf[256];
    if (libxdp_strerror(err, buf, sizeof(buf)) != 0)
        std::snprintf(buf, sizeof(buf), "%s", std::strerror(err < 0 ? -err : err));
    return buf;
}

const char* attach_mode_name(enum xdp_attach_mode m) {
    switch (m) {
        case XDP_MODE_NATIVE: return "native";
        case XDP_MODE_SKB: return "skb";
        case XDP_MODE_HW: return "hw";
        default: return "";
    }
}

enum xdp_attach_mode to_libxdp(XdpMode m) {
    return m == XdpMode::skb ? XDP_MODE_SKB : XDP_MODE_NATIVE;
}

std::string prog_name_of_id(std::uint32_t id) {
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0) return {};
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    std::string name;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) name = info.name;
    close(fd);
    return name;
}

std::string describe(const XdpHolder& h) {
    std::string s = "prog id " + std::to_string(h.prog_id) + " '" + h.prog_name + "'";
    if (!h.mode.empty()) s += ", " + h.mode + " mode";
    return s;
}

bool holds(const XdpHolder& h, std::uint32_t id) {
    if (!id) return false;
    if (h.prog_id == id) return true;
    return std::any_of(h.components.begin(), h.components.end(),
                       [&](const auto& c) { return c.first == id; });
}

// Our program among what runs on the interface when the pins are gone.
std::uint32_t find_by_name(const XdpHolder& h) {
    if (h.prog_name == "xdp_vaultwall") return h.prog_id;
    for (const auto& [id, name] : h.components)
        if (name == "xdp_vaultwall") return id;
    return 0;
}

}  // namespace

const char* mode_name(XdpMode m) { return m == XdpMode::skb ? "skb" : "native"; }

std::optional<XdpMode> parse_mode(const std::string& s) {
    if (s == "native" || s == "drv") return XdpMode::native;
    if (s == "skb" || s == "generic") return XdpMode::skb;
    return std::nullopt;
}

std::uint32_t prog_id_of_fd(int fd) {
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return 0;
    return info.id;
}

std::uint32_t pinned_prog_id(const std::string& path) {
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) return 0;
    auto id = prog_id_of_fd(fd);
    close(fd);
    return id;
}

XdpHolder xdp_holder(int ifindex) {
    quiet_libxdp();
    XdpHolder h;
    xdp_multiprog* mp = xdp_multiprog__get_from_ifindex(ifindex);
    if (!mp || libxdp_get_error(mp)) {
        // libxdp could not make sense of it: ask the kernel directly.
        LIBBPF_OPTS(bpf_xdp_query_opts, q);
        if (bpf_xdp_query(ifindex, 0, &q) == 0 && q.prog_id) {
            h.prog_id = q.prog_id;
            h.prog_name = prog_name_of_id(q.prog_id);
            h.mode = q.attach_mode == XDP_ATTACHED_SKB   ? "skb"
                     : q.attach_mode == XDP_ATTACHED_HW  ? "hw"
                     : q.attach_mode == XDP_ATTACHED_DRV ? "native"
                                                         : "multi";
        }
        return h;
    }
    if (xdp_program* main = xdp_multiprog__main_prog(mp)) {
        h.prog_id = xdp_program__id(main);
        h.prog_name = xdp_program__name(main) ? xdp_program__name(main) : "";
        h.mode = attach_mode_name(xdp_multiprog__attach_mode(mp));
        h.dispatcher = !xdp_multiprog__is_legacy(mp);
        if (h.dispatcher) {
            for (xdp_program* p = xdp_multiprog__next_prog(nullptr, mp); p;
                 p = xdp_multiprog__next_prog(p, mp))
                h.components.emplace_back(xdp_program__id(p),
                                          xdp_program__name(p) ? xdp_program__name(p) : "");
        }
    }
    xdp_multiprog__close(mp);
    return h;
}

AttachResult attach(const AttachOptions& o) {
    quiet_libxdp();
    if (o.dev.empty()) throw AttachError("no interface given (--dev IFACE)");
    if (o.dev.find('/') != std::string::npos || o.dev.size() >= IF_NAMESIZE)
        throw AttachError("not an interface name: " + o.dev);
    int ifindex = static_cast<int>(if_nametoindex(o.dev.c_str()));
    if (!ifindex) throw AttachError("no such interface: " + o.dev);
    try {
        bpfmaps::ensure_bpffs(o.pin_root);
    } catch (const std::exception& e) {
        throw AttachError(std::string("cannot mount bpffs: ") + e.what());
    }
    const std::string pin_dir = o.pin_root + "/" + o.dev;
    const std::uint32_t pinned = pinned_prog_id(pin_dir + "/" + bpfmaps::kMainProgPin);

    XdpHolder h = xdp_holder(ifindex);
    if (holds(h, pinned))
        throw AttachError("vaultwall is already attached to " + o.dev + " (" + describe(h) +
                          "); detach it first to re-attach");
    if (pinned || fs::exists(pin_dir + "/" + bpfmaps::kMainProgPin))
        throw AttachError("stale pins for " + o.dev + " in " + pin_dir +
                          " (its program is no longer attached); run `vaultwall-loader detach "
                          "--dev " + o.dev + "` to remove them first");
    if (h.prog_id && !h.dispatcher)
        throw AttachError("another XDP program holds " + o.dev + ": " + describe(h) +
                          "; it is not a libxdp dispatcher, so vaultwall cannot run beside it: "
                          "detach it first");

    std::unique_ptr<bpfmaps::Datapath> dp;
    try {
        dp = bpfmaps::Datapath::open({.max_rules = o.max_rules, .lookup_blocks = o.lookup_blocks});
    } catch (const std::exception& e) {
        throw AttachError(std::string("cannot open the XDP object: ") + e.what());
    }
    DECLARE_LIBXDP_OPTS(xdp_program_opts, xopts, .obj = dp->object(),
                        .prog_name = "xdp_vaultwall");
    xdp_program* prog = xdp_program__create(&xopts);
    if (long err = libxdp_get_error(prog); err || !prog)
        throw AttachError("cannot prepare the XDP program: " + xdp_errstr(int(err ? err : -EINVAL)));
    struct Closer {
        xdp_program* p;
        ~Closer() { xdp_program__close(p); }
    } closer{prog};

    std::optional<CaptureLibbpf> capture(std::in_place);
    int err = xdp_program__attach(prog, ifindex, to_libxdp(o.mode), 0);
    std::string libbpf_log = std::move(capture->log);
    capture.reset();
    if (err) {
        int e = -err;
        if (e == EOPNOTSUPP || e == ENOTSUP)
            throw AttachError(o.dev + " does not support " + mode_name(o.mode) + " XDP" +
                              (o.mode == XdpMode::native ? " (try --mode skb)" : ""));
        if (e == EBUSY || e == EEXIST) {
            XdpHolder now = xdp_holder(ifindex);
            if (now.prog_id)
                throw AttachError("another XDP program holds " + o.dev + ": " + describe(now) +
                                  "; detach it first");
        }
        if (!libbpf_log.empty()) std::fputs(libbpf_log.c_str(), stderr);
        throw AttachError("cannot attach to " + o.dev + " in " + mode_name(o.mode) +
                          " mode: " + xdp_errstr(err));
    }

    AttachResult r;
    r.dev = o.dev;
    r.ifindex = ifindex;
    r.mode = mode_name(o.mode);
    r.prog_id = xdp_program__id(prog);
    r.pin_dir = pin_dir;
    r.dispatcher = xdp_holder(ifindex).dispatcher;
    try {
        dp->adopt_loaded();
        dp->pin(pin_dir);
    } catch (const std::exception& e) {
        xdp_program__detach(prog, ifindex, to_libxdp(o.mode), 0);
        bpfmaps::Datapath::unpin(pin_dir);
        throw AttachError(std::string("attached, but pinning failed, so detached again: ") +
                          e.what());
    }
    return r;
}

std::string detach(const std::string& dev, const std::string& pin_root) {
    quiet_libxdp();
    if (dev.empty()) throw AttachError("no interface given (--dev IFACE)");
    const std::string pin_dir = pin_root + "/" + dev;
    const bool have_pins = fs::exists(pin_dir);
    int ifindex = static_cast<int>(if_nametoindex(dev.c_str()));
    if (!ifindex) {
        if (have_pins) {
            bpfmaps::Datapath::unpin(pin_dir);
            return dev + " no longer exists; removed its pins in " + pin_dir;
        }
        throw AttachError("no such interface: " + dev);
    }
    std::uint32_t ours = pinned_prog_id(pin_dir + "/" + bpfmaps::kMainProgPin);
    XdpHolder h = xdp_holder(ifindex);
    if (!holds(h, ours)) ours = find_by_name(h);
    if (!ours) {
        if (have_pins) {
            bpfmaps::Datapath::unpin(pin_dir);
            if (h.prog_id)
                return "vaultwall was not attached to " + dev + " (another program, " +
                       describe(h) + ", left alone); removed stale pins in " + pin_dir;
            return "vaultwall was not attached to " + dev + "; removed stale pins in " + pin_dir;
        }
        if (h.prog_id)
            throw AttachError("vaultwall is not attached to " + dev + "; the XDP program there is " +
                              describe(h) + ", left alone");
        throw AttachError("vaultwall is not attached to " + dev);
    }

    xdp_program* prog = xdp_program__from_id(ours);
    if (long err = libxdp_get_error(prog); err || !prog)
        throw AttachError("cannot open program id " + std::to_string(ours) + ": " +
                          xdp_errstr(int(err ? err : -ENOENT)));
    xdp_multiprog* mp = xdp_multiprog__get_from_ifindex(ifindex);
    enum xdp_attach_mode mode = XDP_MODE_UNSPEC;
    if (mp && !libxdp_get_error(mp)) {
        mode = xdp_multiprog__attach_mode(mp);
        xdp_multiprog__close(mp);
    }
    int err = xdp_program__detach(prog, ifindex, mode, 0);
    xdp_program__close(prog);
    if (err) throw AttachError("cannot detach from " + dev + ": " + xdp_errstr(err));
    bpfmaps::Datapath::unpin(pin_dir);
    return "detached vaultwall (prog id " + std::to_string(ours) + ") from " + dev +
           " and removed its pins in " + pin_dir;
}

std::vector<std::string> pinned_interfaces(const std::string& pin_root) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(pin_root, ec)) {
        if (e.is_directory(ec) && fs::exists(e.path() / bpfmaps::kMainProgPin, ec))
            out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<InterfaceStatus> interface_status(const std::string& pin_root) {
    std::vector<InterfaceStatus> out;
    for (const auto& dev : pinned_interfaces(pin_root)) {
        InterfaceStatus s;
        s.dev = dev;
        s.pin_dir = pin_root + "/" + dev;
        s.ifindex = static_cast<int>(if_nametoindex(dev.c_str()));
        s.prog_id = pinned_prog_id(s.pin_dir + "/" + bpfmaps::kMainProgPin);
        if (s.ifindex) {
            XdpHolder h = xdp_holder(s.ifindex);
            s.attached = holds(h, s.prog_id);
            s.mode = h.mode;
            if (!s.attached) {
                s.attached_prog_id = h.prog_id;
                s.attached_prog_name = h.prog_name;
            }
        }
        try {
            auto dp = bpfmaps::Datapath::open_pinned(s.pin_dir);
            Counters c;
            collect_counters(*dp, read_vault_names(*dp), c);
            s.generation = c.generation;
            auto p = c.total(true), d = c.total(false);
            s.pass_packets = p.packets;
            s.pass_bytes = p.bytes;
            s.drop_packets = d.packets;
            s.drop_bytes = d.bytes;
        } catch (const std::exception& e) {
            s.error = e.what();
        }
        out.push_back(std::move(s));
    }
    return out;
}

Json to_json(const InterfaceStatus& s) {
    Json j = {
        {"dev", s.dev},
        {"ifindex", s.ifindex},
        {"attached", s.attached},
        {"mode", s.attached ? Json(s.mode) : Json(nullptr)},
        {"prog_id", s.prog_id},
        {"pin_dir", s.pin_dir},
        {"generation", s.generation},
        {"totals",
         {{"pass", {{"packets", s.pass_packets}, {"bytes", s.pass_bytes}}},
          {"drop", {{"packets", s.drop_packets}, {"bytes", s.drop_bytes}}}}},
    };
    if (!s.attached && s.attached_prog_id)
        j["other_program"] = {{"prog_id", s.attached_prog_id}, {"name", s.attached_prog_name}};
    if (!s.error.empty()) j["error"] = s.error;
    return j;
}

}  // namespace vaultwall::daemon
