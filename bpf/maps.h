/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The datapath's maps. Rule-set tables are keyed by set (0/1, see
 * vaultwall_abi.h); counters, names and admissions are not. Sizes marked
 * "resized at load" are set by user space (bpf_map__set_max_entries) from the
 * host's configured rule capacity.
 */
#ifndef VAULTWALL_MAPS_H
#define VAULTWALL_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "vaultwall_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vw_state);
} vw_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VW_SETS);
	__type(key, __u32);
	__type(value, struct vw_config);
} vw_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VW_SETS * VW_MAX_VAULTS);
	__type(key, __u32);
	__type(value, struct vw_vault);
} vw_vaults SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	/* a private endpoint takes two entries (its VNI and VW_VNI_ANY_PRIVATE) */
	__uint(max_entries, VW_SETS * VW_MAX_ENDPOINTS * 2);
	__type(key, struct vw_endpoint_key);
	__type(value, struct vw_endpoint);
} vw_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VW_SETS * VW_MAX_ENDPOINTS);
	__type(key, struct vw_addr_key);
	__type(value, __u32);
} vw_protected_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, VW_SETS * VW_DEFAULT_MAX_RULES); /* resized at load */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vw_rule_key);
	__type(value, __u32); /* rule id */
} vw_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VW_SETS * VW_MAX_SCOPES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vw_scope_key);
	__type(value, struct vw_scope);
} vw_scopes SEC(".maps");

/* Mmapable: user space writes the idle set's blocks in place. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VW_SETS * VW_DEFAULT_STRIDE_BLOCKS); /* resized at load */
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct vw_stride_block);
} vw_stride_blocks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, VW_SETS * VW_MAX_VTEP_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vw_vtep_key);
	__type(value, __u32);
} vw_vteps SEC(".maps");

/* IPv6 (vaultwall_abi.h, "IPv6 tables"): the twins of the maps above. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VW_SETS * VW_MAX_ENDPOINTS6 * 2);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vw_endpoint6_key);
	__type(value, struct vw_endpoint);
} vw_endpoints6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VW_SETS * VW_MAX_ENDPOINTS6);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vw_addr6_key);
	__type(value, __u32);
} vw_protected_addrs6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, VW_SETS * VW_MAX_VTEP_PREFIXES6);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vw_vtep6_key);
	__type(value, __u32);
} vw_vteps6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, VW_SETS * VW_DEFAULT_MAX_RULES); /* resized at load */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vw_rule6_key);
	__type(value, __u32); /* rule id */
} vw_rules6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VW_SETS * VW_DEFAULT_MAX_RULES); /* resized at load */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vw_rule6_key);
	__type(value, __u32); /* rule id */
} vw_rules6_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VW_SETS * VW_MAX_SCOPES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vw_scope_key);
	__type(value, struct vw_scope6);
} vw_scopes6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, VW_ADMISSIONS6);
	__type(key, struct vw_flow6_key);
	__type(value, struct vw_admission);
} vw_admissions6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VW_GLOBAL_REASONS);
	__type(key, __u32);
	__type(value, struct vw_counter);
} vw_global_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VW_MAX_VAULTS * VW_VAULT_REASONS);
	__type(key, __u32);
	__type(value, struct vw_counter);
} vw_vault_counters SEC(".maps");

/* Shared, not per CPU, on purpose: at a million rules a per-CPU lookup costs
 * two cache misses (the per-CPU pointer table, then the value) against one
 * here, and two CPUs rarely hit the same rule at the same instant. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VW_DEFAULT_MAX_RULES); /* resized at load */
	__type(key, __u32);
	__type(value, __u64);
} vw_rule_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VW_MAX_VAULTS);
	__type(key, __u32);
	__type(value, struct vw_vault_name);
} vw_vault_names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, VW_ADMISSIONS);
	__type(key, struct vw_flow_key);
	__type(value, struct vw_admission);
} vw_admissions SEC(".maps");

/* Denied-flow events for the daemon (vaultwall_abi.h, "Denied-flow events"). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, VW_DROP_EVENTS_RING_BYTES);
} vw_drop_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vw_event_budget);
} vw_event_budget SEC(".maps");

#endif /* VAULTWALL_MAPS_H */
