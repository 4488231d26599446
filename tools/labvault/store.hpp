// The lab vault's state: secrets and RSA keys with versions, persisted as one
// JSON document under the data directory (written atomically on each change).
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace labvault {

using nlohmann::json;

struct Reply {
    unsigned status = 200;
    json body;
};

class Store {
public:
    explicit Store(std::string dir);  // loads DIR/state.json if present; throws std::runtime_error

    // `base` is "https://<Host>" for the id URLs. `segs` are the path
    // segments, `query` ignored except api-version (accepted, any value).
    Reply handle(const std::string& method, const std::vector<std::string>& segs, const std::string& body,
                 const std::string& base);

private:
    Reply secrets(const std::string& method, const std::vector<std::string>& segs, const json& in,
                  const std::string& base);
    Reply keys(const std::string& method, const std::vector<std::string>& segs, const json& in,
               const std::string& base);
    void save();

    std::string dir_;
    std::mutex mu_;
    json state_;  // {"secrets": {name: {"versions": [...]}}, "keys": {...}}
};

}  // namespace labvault
