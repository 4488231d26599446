#pragma once

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace vaultwall::bpfmaps {

// A failed bpf(2) call or file operation, with the errno text.
class BpfError : public std::runtime_error {
public:
    BpfError(const std::string& what, int err)
        : std::runtime_error(what + ": " + std::strerror(err)), err_(err) {}
    int error_code() const { return err_; }

private:
    int err_;
};

[[noreturn]] inline void throw_errno(const std::string& what) { throw BpfError(what, errno); }

}  // namespace vaultwall::bpfmaps
