#include "rules/source.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vaultwall::rules {

namespace {

const char* file_kind(mode_t m) {
    if (S_ISDIR(m)) return "is a directory";
    if (S_ISFIFO(m)) return "is a FIFO";
    if (S_ISCHR(m)) return "is a character device";
    if (S_ISBLK(m)) return "is a block device";
    if (S_ISSOCK(m)) return "is a socket";
    return "is not a regular file";
}

std::string size_text(std::size_t bytes) {
    if (bytes % (1u << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
    return std::to_string(bytes) + "-byte";
}

struct Fd {
    int fd;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

std::optional<std::string> FilesystemSource::read(const std::string& path) const {
    // O_NONBLOCK: opening a FIFO with no writer must not wait for one; the
    // fstat below then refuses it before any read.
    Fd f{::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)};
    if (f.fd < 0) {
        if (errno == ENOENT) return std::nullopt;
        throw SourceError(std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) throw SourceError(std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        throw SourceError(std::string(file_kind(st.st_mode)) + ", not a regular file");
    auto too_big = [&] {
        return SourceError("is larger than the " + size_text(max_) + " limit for a rule file");
    };
    if (static_cast<std::uint64_t>(st.st_size) > max_) throw too_big();
    std::string out;
    out.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    for (;;) {
        if (got == out.size()) {
            if (out.size() >= max_ + 1) break;
            // The file grew since fstat: keep reading, up to one byte past the limit.
            out.resize(std::min(max_ + 1, std::max<std::size_t>(out.size() * 2, 4096)));
        }
        ssize_t n = ::read(f.fd, out.data() + got, out.size() - got);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw SourceError(std::strerror(errno));
        }
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    if (got > max_) throw too_big();
    out.resize(got);
    return out;
}

std::optional<std::string> MemorySource::read(const std::string& path) const {
    auto it = files_.find(path);
    if (it == files_.end()) return std::nullopt;
    return it->second;
}

std::optional<std::string> LayeredSource::read(const std::string& path) const {
    for (const FileSource* s : layers_)
        if (auto bytes = s->read(path)) return bytes;
    return std::nullopt;
}

const FileSource& filesystem_source() {
    static const FilesystemSource fs;
    return fs;
}

}  // namespace vaultwall::rules
