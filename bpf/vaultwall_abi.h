/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one ABI shared by the XDP program (bpf/) and user space (userspace/):
 * map keys and values, verdict reasons, limits. Nothing else defines these.
 *
 * Atomic reloads: every rule-set table is keyed by a *set* number (0 or 1).
 * A packet reads `vw_state.active_set` once and uses only that set's entries,
 * so it is classified wholly by one rule set. User space writes the inactive
 * set, flips `active_set`, then waits for an RCU grace period (every XDP run
 * is an RCU read-side section) before it touches the old set again.
 *
 * Identities that must survive reloads (vault ids, rule ids) index the
 * counters and are *not* per set, so counters carry across reloads.
 */
#ifndef VAULTWALL_ABI_H
#define VAULTWALL_ABI_H

#include <linux/types.h>

#define VW_SETS 2                     /* double-buffered rule sets */
#define VW_MAX_VAULTS 4096            /* vault ids 1..VW_MAX_VAULTS-1; 0 = none */
#define VW_DEFAULT_MAX_RULES (1u << 20) /* rule ids 1..max-1, per host; configurable */
#define VW_MAX_ENDPOINTS 65536        /* per set */
#define VW_MAX_VTEP_PREFIXES 4096     /* per set */
#define VW_ADMISSIONS 262144          /* LRU of SYN admission records */
#define VW_VAULT_NAME_LEN 64

/* Bits of the rule LPM key before the source address: set, vault, vni. */
#define VW_RULE_KEY_FIXED_BITS 96
/* Bits of the VTEP LPM key before the source address: set. */
#define VW_VTEP_KEY_FIXED_BITS 32

/* IPv6 (SPEC §11). Tables of their own beside the IPv4 ones, so the IPv4
 * keys stay 32-bit and the IPv4 path does not pay for IPv6. */
#define VW_IPV6_ADDR_LEN 16
#define VW_MAX_ENDPOINTS6 65536       /* per set */
#define VW_MAX_VTEP_PREFIXES6 4096    /* per set */
#define VW_ADMISSIONS6 262144         /* LRU of IPv6 SYN admission records */
/* Extension headers the datapath walks before it gives up on a chain
 * (docs/datapath.md, "IPv6"): a longer chain is drop.malformed. */
#define VW_IPV6_MAX_EXT_HEADERS 8

/*
 * Verdict reasons. The first group is counted globally, the second per
 * vault. Names (SPEC §4) are in userspace/common/reasons.hpp.
 *
 * The two VW_AUDIT_ reasons are what a vault in audit mode
 * (network_acls.enforcement: audit, SPEC §9) gets instead of the drop reason
 * of the same name: the packet passes, counted under the vault's `audit`
 * group, and is reported like a drop.
 */
enum vw_reason {
	VW_PASS_NOT_IP = 0,      /* neither IPv4 nor IPv6 (was not_ipv4) */
	VW_PASS_UNPROTECTED,
	VW_DROP_MALFORMED,
	VW_DROP_UNTRUSTED_VTEP,
	VW_DROP_FRAGMENT,
	VW_DROP_NOT_PRIVATE_LINK,
	VW_GLOBAL_REASONS, /* count of global reasons; not a reason */

	VW_PASS_PRIVATE_ENDPOINT = VW_GLOBAL_REASONS,
	VW_PASS_IP_RULE,
	VW_PASS_VNET_RULE,
	VW_PASS_DEFAULT_ALLOW,
	VW_PASS_TRUSTED_CANDIDATE,
	VW_DROP_NO_RULE,
	VW_DROP_PUBLIC_ACCESS_DISABLED,
	VW_AUDIT_NO_RULE,               /* VW_DROP_NO_RULE, audited */
	VW_AUDIT_PUBLIC_ACCESS_DISABLED, /* VW_DROP_PUBLIC_ACCESS_DISABLED, audited */
	VW_REASONS, /* count of all reasons; not a reason */
};
#define VW_VAULT_REASONS (VW_REASONS - VW_GLOBAL_REASONS)

/* Whether a reason lets the packet through (XDP_PASS) or drops it. */
static inline int vw_reason_passes(__u32 reason)
{
	switch (reason) {
	case VW_PASS_NOT_IP:
	case VW_PASS_UNPROTECTED:
	case VW_PASS_PRIVATE_ENDPOINT:
	case VW_PASS_IP_RULE:
	case VW_PASS_VNET_RULE:
	case VW_PASS_DEFAULT_ALLOW:
	case VW_PASS_TRUSTED_CANDIDATE:
	case VW_AUDIT_NO_RULE:
	case VW_AUDIT_PUBLIC_ACCESS_DISABLED:
		return 1;
	default:
		return 0;
	}
}

/* Passed only because the vault is in audit mode. */
static inline int vw_reason_is_audit(__u32 reason)
{
	return reason == VW_AUDIT_NO_RULE ||
	       reason == VW_AUDIT_PUBLIC_ACCESS_DISABLED;
}

/* What a vault in audit mode makes of `reason`: its two drop reasons become
 * their audit twins; everything else stays. */
static inline __u32 vw_reason_audited(__u32 reason)
{
	switch (reason) {
	case VW_DROP_NO_RULE:
		return VW_AUDIT_NO_RULE;
	case VW_DROP_PUBLIC_ACCESS_DISABLED:
		return VW_AUDIT_PUBLIC_ACCESS_DISABLED;
	default:
		return reason;
	}
}

/* Reported as a denied-flow event: every drop, and every audited pass. */
static inline int vw_reason_reported(__u32 reason)
{
	return !vw_reason_passes(reason) || vw_reason_is_audit(reason);
}

/* Index into vw_vault_counters for (vault id, per-vault reason). */
#define VW_VAULT_COUNTER_INDEX(vault_id, reason) \
	((vault_id) * VW_VAULT_REASONS + ((reason) - VW_GLOBAL_REASONS))

/* Value of the per-CPU counter maps. */
struct vw_counter {
	__u64 packets;
	__u64 bytes;
};

/* vw_state[0]: which set is live. Written only by user space. */
struct vw_state {
	__u32 active_set;   /* 0 or 1 */
	__u32 pad;
	__u64 generation;   /* rule-set generation now live; 0 = none installed */
};

/* vw_config[set]: host settings of that set. */
struct vw_config {
	__u16 vxlan_port;   /* host byte order */
	__u8 installed;     /* 0: set empty, every packet passes unclassified */
	__u8 pad;
	__u32 drop_events_per_second; /* per CPU; 0: no denied-flow events */
};

/* vw_vaults[set * VW_MAX_VAULTS + vault_id] */
#define VW_VAULT_PRESENT (1u << 0)
#define VW_VAULT_PUBLIC_DISABLED (1u << 1)
#define VW_VAULT_DEFAULT_ALLOW (1u << 2)
#define VW_VAULT_BYPASS (1u << 3)
#define VW_VAULT_AUDIT (1u << 4)  /* enforcement: audit */
struct vw_vault {
	__u32 flags;
};

/* Endpoint lookup key. vni 0: public endpoint; vni N: private endpoint of the
 * VNet with VNI N; vni VW_VNI_ANY_PRIVATE: "some private endpoint lives at this
 * address:port" (drives drop.not_private_link). */
#define VW_VNI_ANY_PRIVATE 0xffffffffu
#define VW_VNI_MAX 0xffffffu
struct vw_endpoint_key {
	__u8 set;
	__u8 proto;         /* IPPROTO_TCP / IPPROTO_UDP */
	__u16 port;         /* network byte order */
	__u32 vni;
	__u32 addr;         /* network byte order */
};

#define VW_EP_PRIVATE (1u << 0)
struct vw_endpoint {
	__u32 vault_id;
	__u32 flags;
};

/* Addresses that carry any protected endpoint (fragment rule, SPEC §3.4). */
struct vw_addr_key {
	__u32 set;
	__u32 addr;         /* network byte order */
};

/* Source rules: LPM key (set, vault, vni, source). prefixlen counts all bits:
 * VW_RULE_KEY_FIXED_BITS + the source prefix length. */
struct vw_rule_key {
	__u32 prefixlen;
	__u32 set;
	__u32 vault_id;
	__u32 vni;          /* 0: ip rule; else virtual-network rule */
	__u32 addr;         /* network byte order */
};

/*
 * Stride tables: the fast rule lookup (docs/datapath.md, "Rule lookup").
 * The rules of one scope (set, vault, vni) are expanded into a multibit trie
 * of four levels with an 8-bit stride: blocks of 256 entries, one level per
 * byte of the source address. A lookup is one probe of the small vw_scopes
 * hash and at most four loads from the vw_stride_blocks ARRAY (which the
 * verifier inlines), however many rules there are. A scope whose expansion
 * does not fit the blocks left is flagged VW_SCOPE_TRIE and looked up in
 * vw_rules, which always holds every rule.
 */
#define VW_STRIDE_BITS 8             /* one level per byte of the source */
#define VW_STRIDE_FANOUT (1u << VW_STRIDE_BITS)
#define VW_STRIDE_LEVELS 4
#define VW_STRIDE_CHILD (1u << 31)  /* entry: the next block is (entry & ~CHILD) */
				     /* else entry: rule id, 0 = no rule */
#define VW_DEFAULT_STRIDE_BLOCKS 16384u /* per set (1 KiB each); configurable */
#define VW_MAX_SCOPES 65536          /* (vault, vni) pairs with rules, per set */

struct vw_scope_key {
	__u32 set;
	__u32 vault_id;
	__u32 vni;          /* 0: ip rules; else virtual-network rules */
};

#define VW_SCOPE_TRIE (1u << 0)
struct vw_scope {
	__u32 root;         /* block index of level 0 (unless VW_SCOPE_TRIE) */
	__u32 flags;
};

/* vw_stride_blocks[i]; set s owns blocks [s * N, (s + 1) * N). */
struct vw_stride_block {
	__u32 entry[VW_STRIDE_FANOUT];
};

/* VTEP underlay sources: LPM key (set, source). */
struct vw_vtep_key {
	__u32 prefixlen;    /* VW_VTEP_KEY_FIXED_BITS + source prefix length */
	__u32 set;
	__u32 addr;         /* network byte order */
};

/*
 * IPv6 tables (docs/datapath.md, "IPv6 rule lookup"). Addresses are 16 bytes
 * in network order. Endpoints, protected addresses and VTEPs mirror their
 * IPv4 twins.
 */
struct vw_endpoint6_key {
	__u8 set;
	__u8 proto;         /* IPPROTO_TCP / IPPROTO_UDP */
	__u16 port;         /* network byte order */
	__u32 vni;          /* 0, a VNI, or VW_VNI_ANY_PRIVATE, as vw_endpoint_key */
	__u8 addr[VW_IPV6_ADDR_LEN];
};
/* value: struct vw_endpoint */

struct vw_addr6_key {
	__u32 set;
	__u8 addr[VW_IPV6_ADDR_LEN];
};

struct vw_vtep6_key {
	__u32 prefixlen;    /* VW_VTEP_KEY_FIXED_BITS + source prefix length */
	__u32 set;
	__u8 addr[VW_IPV6_ADDR_LEN];
};

/*
 * IPv6 source rules. One key layout serves two maps:
 *  - vw_rules6, an LPM trie holding every IPv6 rule (the record user space
 *    adopts, and the lookup of scopes with too many prefix lengths);
 *  - vw_rules6_hash, a hash holding the same rules with the host bits of
 *    addr clear: the packet path masks the source to each prefix length the
 *    scope uses, longest first, and the first hit is the longest match.
 * prefixlen counts all bits in both: VW_RULE_KEY_FIXED_BITS + the length.
 */
struct vw_rule6_key {
	__u32 prefixlen;
	__u32 set;
	__u32 vault_id;
	__u32 vni;          /* 0: ip rule; else virtual-network rule */
	__u8 addr[VW_IPV6_ADDR_LEN];
};
/* value: __u32 rule id (the same id space and vw_rule_hits as IPv4) */

/* vw_scopes6[(set, vault, vni)] (key: struct vw_scope_key): the distinct
 * prefix lengths of the scope's IPv6 rules, longest first. A scope with more
 * than VW_SCOPE6_MAX_LENS lengths is flagged VW_SCOPE_TRIE and looked up in
 * vw_rules6 instead (one trie walk beats that many hash probes). */
#define VW_SCOPE6_MAX_LENS 16
struct vw_scope6 {
	__u32 flags;        /* VW_SCOPE_TRIE */
	__u32 nlens;        /* 0..VW_SCOPE6_MAX_LENS */
	__u8 lens[VW_SCOPE6_MAX_LENS]; /* 0..128, descending */
};

/* vw_vault_names[vault_id]: stable vault identities (not per set), so a
 * restarted daemon keeps the same ids and counters. Empty name: free id. */
struct vw_vault_name {
	char name[VW_VAULT_NAME_LEN];
};

/* vw_rule_hits[rule_id]: packets admitted by that rule (atomic adds). */

/* Flow 4-tuple of an admitted SYN (the inner flow for VXLAN). Network order. */
struct vw_flow_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u32 pad;          /* zero */
};

/* The same for IPv6 flows, in vw_admissions6. */
struct vw_flow6_key {
	__u8 saddr[VW_IPV6_ADDR_LEN];
	__u8 daddr[VW_IPV6_ADDR_LEN];
	__u16 sport;
	__u16 dport;
	__u32 pad;          /* zero */
};

/* Value of both vw_admissions and vw_admissions6. */
struct vw_admission {
	__u64 timestamp_ns; /* bpf_ktime_get_ns() */
	__u64 generation;
	__u32 vault_id;
	__u32 reason;       /* enum vw_reason (a pass reason) */
	__u32 vni;
	__u32 rule_id;      /* 0 when no rule admitted it */
};

/*
 * Denied-flow events (SPEC §9): the attached program reports every packet
 * with a reported reason (vw_reason_reported) into the vw_drop_events ring
 * buffer, as far as its CPU's token bucket allows: drop_events_per_second
 * tokens a second, at most one second's worth saved up. The rest are counted
 * in vw_event_budget, not sent.
 */
#define VW_DROP_EVENTS_RING_BYTES (512u * 1024) /* ring buffer size */
/*
 * The program wakes the reader only once this much is waiting in the ring;
 * the reader also reads it every VW_DROP_EVENTS_READ_MS without being woken.
 * A wakeup per event would cost the host a reader context switch and a
 * write for every event sent (up to drop_events_per_second per CPU) during a
 * flood, the CPU the legitimate callers need. At the default rate a reading
 * interval holds 8 KiB per CPU, so the wakeup is for configured rates far
 * above it, well before the ring fills.
 */
#define VW_DROP_EVENTS_WAKEUP_BYTES (64u * 1024)
#define VW_DROP_EVENTS_READ_MS 100
#define VW_NSEC_PER_SEC 1000000000ull

/* Addresses of an event: IPv4 in saddr[0]/daddr[0], IPv6 in all four words. */
#define VW_FAMILY_NONE 0 /* not parsed far enough to have addresses */
#define VW_FAMILY_IPV4 4
#define VW_FAMILY_IPV6 6
struct vw_drop_event {
	__u64 timestamp_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 generation;   /* rule set that decided */
	__u32 ifindex;      /* ingress interface */
	__u32 reason;       /* enum vw_reason: a drop or an audit reason */
	__u32 vault_id;     /* 0 for global reasons */
	__u32 vni;          /* 0: plain traffic */
	__u32 saddr[4];     /* network order (the inner flow for VXLAN) */
	__u32 daddr[4];
	__u16 sport;        /* network order; 0 without TCP/UDP */
	__u16 dport;
	__u8 family;        /* VW_FAMILY_ */
	__u8 protocol;      /* IPPROTO_ */
	__u16 pad;
	__u32 bytes;        /* frame length */
};

/* vw_event_budget[0], per CPU: the token bucket and what it let through. */
struct vw_event_budget {
	__u64 tokens;     /* in 1/VW_NSEC_PER_SEC of an event */
	__u64 last_ns;    /* last refill */
	__u64 sent;       /* events written to the ring */
	__u64 suppressed; /* over the rate limit: counted, not sent */
	__u64 lost;       /* within the limit, but the ring was full */
};

/* What the explain program writes in front of the packet it was given. */
#define VW_EXPLAIN_MAGIC 0x76776578u /* "vwex" */
struct vw_explain_result {
	__u32 magic;
	__u32 action;       /* XDP_PASS / XDP_DROP */
	__u32 reason;
	__u32 vault_id;
	__u32 rule_id;
	__u32 vni;
	__u64 generation;
};

#endif /* VAULTWALL_ABI_H */
