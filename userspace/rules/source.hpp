// Where the rule loader reads bytes from: the rule file and every file it names
// (the trusted-services catalog, each vault's `ip_rules_file`). The daemon reads
// the filesystem; the fleet reads a rule set from etcd (a MemorySource, layered
// over the filesystem for host-local files); fuzzers feed bytes from memory.
//
// Paths handed to a source are absolute and lexically normal (the loader
// resolves relative names against the directory of the file naming them).
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace vaultwall::rules {

// The largest file a FilesystemSource reads: far above a 1,000,000-rule file
// (~25 MiB), far below what would hurt the host.
inline constexpr std::size_t kMaxRuleFileBytes = 256u << 20;

// A file the source has but cannot hand over (not a regular file, too large,
// unreadable). The message is one line without the path, e.g. "is a FIFO, not
// a regular file"; the loader prefixes the path and the position naming it.
class SourceError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class FileSource {
public:
    virtual ~FileSource() = default;
    // The bytes of `path`; nullopt when this source has no such file;
    // throws SourceError when it has it but cannot read it.
    virtual std::optional<std::string> read(const std::string& path) const = 0;
};

// The local filesystem. Reads regular files only (a FIFO, a device such as
// /dev/zero, a directory are refused without reading a byte), at most
// `max_bytes` each.
class FilesystemSource : public FileSource {
public:
    explicit FilesystemSource(std::size_t max_bytes = kMaxRuleFileBytes) : max_(max_bytes) {}
    std::optional<std::string> read(const std::string& path) const override;

private:
    std::size_t max_;
};

// Files held in memory, by absolute path: a rule set from etcd, a fuzzer's input.
class MemorySource : public FileSource {
public:
    MemorySource() = default;
    explicit MemorySource(std::map<std::string, std::string> files) : files_(std::move(files)) {}
    void add(const std::string& path, std::string bytes) { files_[path] = std::move(bytes); }
    std::optional<std::string> read(const std::string& path) const override;
    const std::map<std::string, std::string>& files() const { return files_; }

private:
    std::map<std::string, std::string> files_;
};

// Sources tried in order; the first that has the file answers (an error from
// it is final: a later layer never hides a file the earlier one refused).
// E.g. {&etcd_rule_set, &filesystem}. The layers must outlive this object.
class LayeredSource : public FileSource {
public:
    explicit LayeredSource(std::vector<const FileSource*> layers) : layers_(std::move(layers)) {}
    std::optional<std::string> read(const std::string& path) const override;

private:
    std::vector<const FileSource*> layers_;
};

// The process-wide filesystem source (kMaxRuleFileBytes).
const FileSource& filesystem_source();

}  // namespace vaultwall::rules
