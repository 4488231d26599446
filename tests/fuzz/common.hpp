// What every harness shares: a fatal property check (a finding libFuzzer
// saves as a crash-* input) and splitting one input into named parts.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace vaultwall::fuzz {

// A broken property is a finding like a crash: libFuzzer keeps the input.
#define FUZZ_CHECK(cond, ...)                                                   \
    do {                                                                        \
        if (!(cond)) {                                                          \
            std::fprintf(stderr, "property failed: %s (%s:%d)\n  ", #cond,      \
                         __FILE__, __LINE__);                                   \
            std::fprintf(stderr, __VA_ARGS__);                                  \
            std::fprintf(stderr, "\n");                                         \
            std::abort();                                                       \
        }                                                                       \
    } while (0)

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// Splits `in` at every `sep`: the seeds and dictionaries use the same
// separator, so the mutator keeps the parts apart (or merges them, which is
// a fine input too).
inline std::vector<std::string_view> split(std::string_view in, std::string_view sep) {
    std::vector<std::string_view> parts;
    for (;;) {
        auto at = in.find(sep);
        if (at == std::string_view::npos) break;
        parts.push_back(in.substr(0, at));
        in.remove_prefix(at + sep.size());
    }
    parts.push_back(in);
    return parts;
}

}  // namespace vaultwall::fuzz
