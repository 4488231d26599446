// vaultwall-fleet-bench: the publishing and measuring half of
// tools/bench/fleet.sh (which starts etcd, the namespaces and one vaultwalld
// per host). Publishes rule-set revisions the way `vaultwallctl publish`
// does and measures, per host, publish-to-applied latency: from just before
// the Txn to the applied_unix_ms the host writes into its key (one clock:
// every host runs on this machine).
//
//   vaultwall-fleet-bench seed --etcd URL --ruleset NAME --dir DIR
//   vaultwall-fleet-bench run  --etcd URL --ruleset NAME --dir DIR --hosts N
//                              [--rounds 20] [--big 100000] [--timeout 60]
//   vaultwall-fleet-bench fanout --etcd URL --ruleset NAME --dir DIR --hosts N
//                              [--big 100000] [--timeout 60]
//
// seed writes DIR/rules.yaml (one vault, 16 ip_rules, an ip_rules_file) and
// publishes it. run waits for N hosts at the latest revision, then publishes
// --rounds one-rule changes (one at a time, each once every host applied the
// previous) and one revision whose ip_rules_file holds --big rules, and
// prints one JSON object with the latencies. fanout measures etcd alone:
// N watchers, each on its own connection as each host's is, watch the rule
// set; it publishes one --big revision and reports when each watcher had all
// of it (no daemon applies anything: run it with the hosts stopped).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "fleet/etcd.hpp"
#include "fleet/ruleset.hpp"
#include "rules/model.hpp"

using namespace vaultwall;
using namespace std::chrono_literals;
using Json = nlohmann::ordered_json;

namespace {

std::int64_t unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void write_file(const std::string& path, const std::string& text) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f || std::fwrite(text.data(), 1, text.size(), f) != text.size())
        throw std::runtime_error("cannot write " + path);
    std::fclose(f);
}

// The rule file: one vault at 203.0.113.10:443; `round` changes one ip_rule.
std::string rule_text(int round) {
    std::string s =
        "version: 1\n"
        "trusted_services: trusted-services.yaml\n"
        "vaults:\n"
        "  - name: bench-vault\n"
        "    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10\n"
        "    endpoints: [203.0.113.10:443]\n"
        "    upstream: http://127.0.0.1:8200\n"
        "    network_acls:\n"
        "      default_action: deny\n"
        "      bypass: none\n"
        "      ip_rules_file: feeds/bench.txt\n"
        "      ip_rules: [";
    for (int i = 0; i < 16; ++i) s += (i ? ", " : "") + std::string("192.0.2.") + std::to_string(i == 0 ? 100 + round % 100 : i);
    return s + "]\n";
}

// `n` distinct /32s in 198.18.0.0/15 (SPEC §6), one a line.
std::string feed_text(int n) {
    std::string s;
    s.reserve(std::size_t(n) * 14);
    for (int i = 0; i < n; ++i) {
        int a = 18 + (i >> 16), b = (i >> 8) & 255, c = i & 255;
        s += "198." + std::to_string(a) + "." + std::to_string(b) + "." + std::to_string(c) + "\n";
    }
    return s;
}

struct Args {
    std::string etcd, ruleset, dir;
    int hosts = 0, rounds = 20, big = 100000, timeout_s = 60;
};

std::int64_t publish_dir(fleet::EtcdClient& etcd, const Args& a) {
    rules::RuleFile loaded;
    fleet::Bundle b = fleet::load_bundle(a.dir + "/rules.yaml", loaded);
    return fleet::publish(etcd, a.ruleset, b, std::nullopt).revision;
}

// Waits until `hosts` host keys report `rev` (applied) and returns each host's
// applied_unix_ms. Throws when a host fails it or time runs out.
std::map<std::string, std::int64_t> wait_applied(fleet::EtcdClient& etcd, const Args& a, std::int64_t rev) {
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(a.timeout_s);
    std::string prefix = fleet::hosts_prefix(a.ruleset);
    for (;;) {
        std::map<std::string, std::int64_t> done;
        std::string failure;
        for (const auto& kv : etcd.get_prefix(prefix).kvs) {
            auto h = fleet::decode_host(kv.key.substr(prefix.size()), kv.value);
            if (h.revision == rev) done[h.host_id] = h.applied_unix_ms;
            else if (h.failed_revision == rev) failure = h.host_id + ": " + h.error;
        }
        if (!failure.empty()) throw std::runtime_error("revision " + std::to_string(rev) + " failed on " + failure);
        if (int(done.size()) >= a.hosts) return done;
        if (std::chrono::steady_clock::now() > end)
            throw std::runtime_error("only " + std::to_string(done.size()) + " of " + std::to_string(a.hosts) +
                                     " hosts applied revision " + std::to_string(rev) + " in " +
                                     std::to_string(a.timeout_s) + " s");
        std::this_thread::sleep_for(20ms);
    }
}

double pct(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    std::size_t i = std::min(v.size() - 1, std::size_t(p / 100.0 * double(v.size() - 1) + 0.5));
    return v[i];
}

Json summary(const std::vector<double>& ms) {
    return {{"samples", ms.size()},
            {"p50_ms", pct(ms, 50)},
            {"p99_ms", pct(ms, 99)},
            {"max_ms", ms.empty() ? 0 : *std::max_element(ms.begin(), ms.end())}};
}

// Publish-to-received per watcher for one big revision (see the header).
Json fanout(const Args& a, const fleet::EtcdOptions& eo) {
    const std::string prefix = fleet::ruleset_prefix(a.ruleset);
    std::vector<std::unique_ptr<fleet::EtcdClient>> clients;
    std::vector<std::unique_ptr<fleet::WatchStream>> streams;
    for (int i = 0; i < a.hosts; ++i) {
        clients.push_back(std::make_unique<fleet::EtcdClient>(eo));
        streams.push_back(std::make_unique<fleet::WatchStream>(*clients.back()));
        streams.back()->watch_prefix(prefix, 0, false);
    }
    fleet::EtcdClient etcd(eo);
    write_file(a.dir + "/feeds/bench.txt", feed_text(a.big));
    std::vector<std::int64_t> got(a.hosts, 0);
    std::int64_t rev = 0;
    std::vector<std::thread> readers;
    for (int i = 0; i < a.hosts; ++i)
        readers.emplace_back([&, i] {
            auto end = std::chrono::steady_clock::now() + std::chrono::seconds(a.timeout_s);
            while (std::chrono::steady_clock::now() < end) {
                auto r = streams[i]->next(200ms);
                if (!r || r->events.empty()) continue;
                got[i] = unix_ms();  // a revision is never split across responses
                return;
            }
        });
    const std::int64_t t0 = unix_ms();
    rev = publish_dir(etcd, a);
    for (auto& t : readers) t.join();
    std::vector<double> ms;
    for (auto g : got)
        if (g) ms.push_back(double(g - t0));
    Json out = summary(ms);
    out["watchers"] = a.hosts;
    out["revision"] = rev;
    out["rules"] = a.big + 16;
    if (int(ms.size()) < a.hosts) out["missing"] = a.hosts - int(ms.size());
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    CLI::App app{"vaultwall-fleet-bench: publish rule-set revisions and measure publish-to-applied latency per host"};
    app.require_subcommand(1);
    auto* seed = app.add_subcommand("seed", "write DIR/rules.yaml and publish it");
    auto* run = app.add_subcommand("run", "publish one-rule changes and a big set; print latencies as JSON");
    auto* fan = app.add_subcommand("fanout", "N watchers, one big revision: when each had it (etcd alone)");
    for (auto* c : {seed, run, fan}) {
        c->add_option("--etcd", a.etcd, "etcd endpoint(s)")->required();
        c->add_option("--ruleset", a.ruleset, "rule set")->required();
        c->add_option("--dir", a.dir, "directory of the rule files (with trusted-services.yaml)")->required();
    }
    run->add_option("--hosts", a.hosts, "hosts that must apply each revision")->required()->check(CLI::PositiveNumber);
    run->add_option("--rounds", a.rounds, "one-rule changes")->check(CLI::NonNegativeNumber);
    run->add_option("--big", a.big, "rules in the big revision (0: none)")->check(CLI::Range(0, 131072));
    run->add_option("--timeout", a.timeout_s, "seconds to wait for every host per revision")->check(CLI::PositiveNumber);
    fan->add_option("--hosts", a.hosts, "watchers")->required()->check(CLI::PositiveNumber);
    fan->add_option("--big", a.big, "rules in the revision")->check(CLI::Range(1, 131072));
    fan->add_option("--timeout", a.timeout_s, "seconds to wait for every watcher")->check(CLI::PositiveNumber);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "vaultwall-fleet-bench: " << e.what() << " (see --help)\n";
        return 2;
    }
    try {
        fleet::EtcdOptions eo;
        eo.endpoints = fleet::split_endpoints(a.etcd);
        eo.timeout = 30s;
        fleet::EtcdClient etcd(eo);
        std::string feed = a.dir + "/feeds/bench.txt";
        if (seed->parsed()) {
            std::system(("mkdir -p " + a.dir + "/feeds").c_str());
            write_file(a.dir + "/rules.yaml", rule_text(0));
            write_file(feed, feed_text(16));
            std::cout << publish_dir(etcd, a) << "\n";
            return 0;
        }
        if (fan->parsed()) {
            std::cout << fanout(a, eo).dump(2) << "\n";
            return 0;
        }
        auto latest = etcd.get(fleet::manifest_key(a.ruleset));
        if (!latest) throw std::runtime_error("rule set " + a.ruleset + " was never published (run seed first)");
        wait_applied(etcd, a, latest->mod_revision);

        std::vector<double> small;
        for (int r = 1; r <= a.rounds; ++r) {
            write_file(a.dir + "/rules.yaml", rule_text(r));
            std::int64_t t0 = unix_ms();
            std::int64_t rev = publish_dir(etcd, a);
            for (const auto& [host, at] : wait_applied(etcd, a, rev)) small.push_back(double(at - t0));
        }
        Json out = {{"hosts", a.hosts}, {"one_rule_change", summary(small)}};
        if (a.big > 0) {
            write_file(feed, feed_text(a.big));
            std::int64_t t0 = unix_ms();
            std::int64_t rev = publish_dir(etcd, a);
            double publish_ms = double(unix_ms() - t0);
            std::vector<double> big;
            for (const auto& [host, at] : wait_applied(etcd, a, rev)) big.push_back(double(at - t0));
            out["big_set"] = summary(big);
            out["big_set"]["rules"] = a.big + 16;
            out["big_set"]["publish_ms"] = publish_ms;
            out["big_set"]["bytes"] = feed_text(a.big).size();
        }
        std::cout << out.dump(2) << "\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "vaultwall-fleet-bench: " << e.what() << "\n";
        return 1;
    }
}
