#include "pcap.hpp"

#include <pcap/pcap.h>

#include <memory>
#include <stdexcept>

namespace vaultwall::ctl {

namespace {

// Linux cooked headers carry the EtherType and the link-layer source; the
// Ethernet header made from them has a zero destination.
std::vector<std::uint8_t> ethernet_from(const std::uint8_t* p, std::size_t len, int dlt) {
    std::size_t hdr, proto_at, addr_at, addr_len_at;
    if (dlt == DLT_LINUX_SLL) {  // type(2) hatype(2) addr_len(2) addr(8) protocol(2)
        hdr = 16, proto_at = 14, addr_at = 6, addr_len_at = 4;
    } else {                     // SLL2: protocol(2) rsv(2) ifindex(4) hatype(2) type(1) addr_len(1) addr(8)
        hdr = 20, proto_at = 0, addr_at = 12, addr_len_at = 11;
    }
    if (len < hdr) return {};
    std::vector<std::uint8_t> out(14, 0);
    const std::size_t alen = dlt == DLT_LINUX_SLL ? std::size_t(p[addr_len_at] << 8 | p[addr_len_at + 1])
                                                  : std::size_t(p[addr_len_at]);
    for (std::size_t i = 0; i < 6 && i < alen; ++i) out[6 + i] = p[addr_at + i];
    out[12] = p[proto_at];
    out[13] = p[proto_at + 1];
    out.insert(out.end(), p + hdr, p + len);
    return out;
}

}  // namespace

std::vector<CapturedFrame> read_capture(const std::string& path) {
    char err[PCAP_ERRBUF_SIZE] = {};
    std::unique_ptr<pcap_t, void (*)(pcap_t*)> pc(
        pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err), pcap_close);
    if (!pc) throw std::runtime_error(path + ": " + err);
    const int dlt = pcap_datalink(pc.get());
    if (dlt != DLT_EN10MB && dlt != DLT_LINUX_SLL && dlt != DLT_LINUX_SLL2)
        throw std::runtime_error(path + ": link type " + std::string(pcap_datalink_val_to_name(dlt) ?: "?") +
                                 " is not Ethernet: capture on the interface vaultwall is attached to");
    std::vector<CapturedFrame> out;
    pcap_pkthdr* h = nullptr;
    const u_char* data = nullptr;
    int rc;
    while ((rc = pcap_next_ex(pc.get(), &h, &data)) == 1) {
        CapturedFrame f;
        f.unix_ns = std::int64_t(h->ts.tv_sec) * 1'000'000'000 + h->ts.tv_usec;  // nanosecond precision asked
        f.data = dlt == DLT_EN10MB ? std::vector<std::uint8_t>(data, data + h->caplen)
                                   : ethernet_from(data, h->caplen, dlt);
        const std::size_t link_extra = dlt == DLT_EN10MB ? 0 : (dlt == DLT_LINUX_SLL ? 2 : 6);  // 16/20 -> 14
        f.wire_len = h->len >= link_extra ? h->len - static_cast<std::uint32_t>(link_extra) : h->len;
        out.push_back(std::move(f));
    }
    if (rc == PCAP_ERROR) throw std::runtime_error(path + ": " + pcap_geterr(pc.get()));
    return out;
}

}  // namespace vaultwall::ctl
