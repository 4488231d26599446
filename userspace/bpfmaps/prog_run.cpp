#include "bpfmaps/prog_run.hpp"

#include <bpf/bpf.h>

#include <cstring>
#include <stdexcept>

#include "bpfmaps/error.hpp"

namespace vaultwall::bpfmaps {

namespace {
// Room for the frame plus what the explain program prepends.
constexpr std::size_t kOutSlack = 256;

std::uint32_t run(int fd, std::span<const std::uint8_t> frame, std::vector<std::uint8_t>* out,
                  std::uint32_t repeat = 1, std::uint32_t* duration = nullptr) {
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.data_in = frame.data();
    opts.data_size_in = static_cast<__u32>(frame.size());
    opts.repeat = repeat;
    if (out) {
        out->assign(frame.size() + kOutSlack, 0);
        opts.data_out = out->data();
        opts.data_size_out = static_cast<__u32>(out->size());
    }
    if (bpf_prog_test_run_opts(fd, &opts) != 0) throw_errno("BPF_PROG_TEST_RUN");
    if (out) out->resize(opts.data_size_out);
    if (duration) *duration = opts.duration;
    return opts.retval;
}
}  // namespace

std::uint32_t run_main(const Datapath& dp, std::span<const std::uint8_t> frame) {
    return run(dp.main_prog_fd(), frame, nullptr);
}

vw_explain_result run_explain(const Datapath& dp, std::span<const std::uint8_t> frame) {
    std::vector<std::uint8_t> out;
    run(dp.explain_prog_fd(), frame, &out);
    vw_explain_result res{};
    if (out.size() < sizeof(res)) throw std::runtime_error("explain program returned no verdict");
    std::memcpy(&res, out.data(), sizeof(res));
    if (res.magic != VW_EXPLAIN_MAGIC) throw std::runtime_error("explain program returned garbage");
    return res;
}

double run_repeat_ns(int prog_fd, const std::vector<std::vector<std::uint8_t>>& frames,
                     std::uint32_t repeat) {
    double total = 0;
    for (const auto& f : frames) {
        std::uint32_t d = 0;
        run(prog_fd, f, nullptr, repeat, &d);
        total += d;
    }
    return frames.empty() ? 0 : total / frames.size();
}

}  // namespace vaultwall::bpfmaps
