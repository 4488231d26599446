#include "bpfmaps/drop_events.hpp"

#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "bpfmaps/error.hpp"
#include "bpfmaps/map_io.hpp"

namespace vaultwall::bpfmaps {

EventBudget read_event_budget(const Datapath& dp) {
    std::vector<vw_event_budget> per_cpu(possible_cpus());
    std::uint32_t zero = 0;
    EventBudget b;
    if (bpf_map_lookup_elem(dp.map_fd(Map::event_budget), &zero, per_cpu.data()) != 0)
        throw_errno("reading vw_event_budget");
    for (const auto& c : per_cpu) {
        b.sent += c.sent;
        b.suppressed += c.suppressed;
        b.lost += c.lost;
    }
    return b;
}

DropEventReader::DropEventReader(Handler handler) : handler_(std::move(handler)) {}

DropEventReader::~DropEventReader() {
    if (rb_) ring_buffer__free(rb_);
    for (int fd : fds_) ::close(fd);
}

int DropEventReader::on_sample(void* ctx, void* data, std::size_t size) {
    auto* src = static_cast<Source*>(ctx);
    vw_drop_event e{};
    // A shorter record would come from another build of the program: take
    // what it has, zero the rest.
    std::memcpy(&e, data, std::min(size, sizeof(e)));
    src->self->handler_(src->index, e);
    return 0;
}

void DropEventReader::add(const Datapath& dp, std::size_t source) {
    int fd = ::fcntl(dp.map_fd(Map::drop_events), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) throw_errno("duplicating the vw_drop_events fd");
    fds_.push_back(fd);
    sources_.push_back(std::make_unique<Source>(Source{this, source}));
    void* ctx = sources_.back().get();
    if (!rb_) {
        rb_ = ring_buffer__new(fd, on_sample, ctx, nullptr);
        if (!rb_) throw_errno("opening the vw_drop_events ring buffer");
    } else if (int err = ring_buffer__add(rb_, fd, on_sample, ctx); err) {
        errno = -err;
        throw_errno("adding a vw_drop_events ring buffer");
    }
}

int DropEventReader::poll(int timeout_ms) {
    if (!rb_) {
        if (timeout_ms > 0) ::usleep(static_cast<useconds_t>(timeout_ms) * 1000);
        return 0;
    }
    int n = ring_buffer__poll(rb_, timeout_ms);
    if (n < 0 && n != -EINTR) {
        errno = -n;
        throw_errno("polling vw_drop_events");
    }
    // A timeout reads nothing in libbpf; the events sent without a wakeup
    // are read here.
    return (n < 0 ? 0 : n) + consume();
}

int DropEventReader::consume() {
    if (!rb_) return 0;
    int n = ring_buffer__consume(rb_);
    if (n < 0) {
        errno = -n;
        throw_errno("reading vw_drop_events");
    }
    return n;
}

}  // namespace vaultwall::bpfmaps
