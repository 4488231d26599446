// Every map of bpf/maps.h, written once: the enumerator user space names it
// by, its name in the BPF object (which is also its pinned file under
// PIN_DIR/IFACE/), its key and value types (vaultwall_abi.h; KernelMaps
// checks them against the loaded object), and what it is for. Datapath
// (skeleton fds, pinning, reopening pins), the map backends, the Installer,
// the tools and the tests all iterate this list; a new map is one line here
// plus its definition in bpf/maps.h.
#pragma once

#include "vaultwall_abi.h"

// X(enumerator, object/pin name, key type, value type, role)
#define VW_MAP_LIST(X)                                                                                     \
    X(state, vw_state, __u32, struct vw_state, "which rule set is live, and its generation")               \
    X(config, vw_config, __u32, struct vw_config, "per set: host settings (VXLAN port, installed)")        \
    X(vaults, vw_vaults, __u32, struct vw_vault, "per set: vault flags by vault id")                       \
    X(endpoints, vw_endpoints, struct vw_endpoint_key, struct vw_endpoint,                                 \
      "per set: protected endpoints (public and private)")                                                 \
    X(protected_addrs, vw_protected_addrs, struct vw_addr_key, __u32,                                      \
      "per set: addresses carrying an endpoint")                                                           \
    X(rules, vw_rules, struct vw_rule_key, __u32, "per set: source rules -> rule id, LPM trie (fallback)") \
    X(vteps, vw_vteps, struct vw_vtep_key, __u32, "per set: trusted VXLAN tunnel endpoints")               \
    X(global_counters, vw_global_counters, __u32, struct vw_counter, "per-CPU counters of global reasons")  \
    X(vault_counters, vw_vault_counters, __u32, struct vw_counter, "per-CPU counters by vault and reason")  \
    X(rule_hits, vw_rule_hits, __u32, __u64, "hit count by rule id")                                       \
    X(vault_names, vw_vault_names, __u32, struct vw_vault_name, "vault id -> name (stable across reloads)") \
    X(admissions, vw_admissions, struct vw_flow_key, struct vw_admission, "SYN admission records (gate)")    \
    X(scopes, vw_scopes, struct vw_scope_key, struct vw_scope, "per set: rule scope -> stride root or trie") \
    X(stride_blocks, vw_stride_blocks, __u32, struct vw_stride_block, "per set: stride-table blocks")      \
    X(drop_events, vw_drop_events, __u32, __u32, "ring buffer of denied-flow events (struct vw_drop_event)")  \
    X(event_budget, vw_event_budget, __u32, struct vw_event_budget, "per-CPU token bucket of the events")   \
    X(endpoints6, vw_endpoints6, struct vw_endpoint6_key, struct vw_endpoint,                              \
      "per set: protected IPv6 endpoints (public and private)")                                            \
    X(protected_addrs6, vw_protected_addrs6, struct vw_addr6_key, __u32,                                   \
      "per set: IPv6 addresses carrying an endpoint")                                                      \
    X(vteps6, vw_vteps6, struct vw_vtep6_key, __u32, "per set: trusted VXLAN tunnel endpoints on IPv6")    \
    X(rules6, vw_rules6, struct vw_rule6_key, __u32, "per set: IPv6 source rules -> rule id, LPM trie")    \
    X(rules6_hash, vw_rules6_hash, struct vw_rule6_key, __u32,                                             \
      "per set: IPv6 source rules -> rule id, hashed by prefix length")                                    \
    X(scopes6, vw_scopes6, struct vw_scope_key, struct vw_scope6,                                          \
      "per set: IPv6 rule scope -> its prefix lengths, or trie")                                           \
    X(admissions6, vw_admissions6, struct vw_flow6_key, struct vw_admission, "IPv6 SYN admission records (gate)")
