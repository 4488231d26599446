/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The verdict, one function per step of docs/datapath.md. Nothing here writes
 * to a map: counting and admission records are the caller's (so the explain
 * program can run the very same steps without side effects).
 */
#ifndef VAULTWALL_CLASSIFY_H
#define VAULTWALL_CLASSIFY_H

#include "maps.h"
#include "parsing.h"

/* The flow being classified: the outer one, or the inner one after VXLAN. */
struct flow {
	__be32 saddr;
	__be32 daddr;
	struct l4_info l4;
	__u8 protocol;
	__u8 is_vxlan;
	__u8 family; /* VW_FAMILY_IPV4 once addresses are known, else 0 */
	__u32 vni;
};

struct verdict {
	__u32 reason;   /* enum vw_reason */
	__u32 vault_id; /* 0 for global reasons */
	__u32 rule_id;  /* 0 when no rule decided */
	__u32 drop_events_per_second; /* the live set's event rate (per CPU) */
	__u64 generation;
};

static __always_inline int vtep_trusted(__u32 set, __be32 saddr)
{
	struct vw_vtep_key key = {
		.prefixlen = VW_VTEP_KEY_FIXED_BITS + 32,
		.set = set,
		.addr = saddr,
	};

	return bpf_map_lookup_elem(&vw_vteps, &key) != NULL;
}

static __always_inline int addr_protected(__u32 set, __be32 daddr)
{
	struct vw_addr_key key = { .set = set, .addr = daddr };

	return bpf_map_lookup_elem(&vw_protected_addrs, &key) != NULL;
}

/* Step 3: a fragment of the outer datagram. */
static __always_inline __u32 outer_fragment_reason(__u32 set, __u16 vxlan_port,
						   struct cursor *c,
						   const struct iphdr *ip)
{
	if (vtep_trusted(set, ip->saddr))
		return VW_DROP_FRAGMENT;
	if (ip->protocol == IPPROTO_UDP && ipv4_is_first_fragment(ip)) {
		__be16 dport;

		if (peek_udp_dport(c, &dport) < 0)
			return VW_DROP_MALFORMED;
		if (vxlan_port && dport == bpf_htons(vxlan_port))
			return VW_DROP_FRAGMENT;
	}
	return addr_protected(set, ip->daddr) ? VW_DROP_FRAGMENT
					      : VW_PASS_UNPROTECTED;
}

/* Step 5: VXLAN from a trusted VTEP; on success the flow is the inner one.
 * Returns VW_REASONS to continue with the inner flow, else a final reason. */
static __always_inline __u32 decapsulate_vxlan(__u32 set, struct cursor *c,
					       struct flow *f)
{
	struct iphdr *inner;
	__be16 proto;
	__u32 vni;

	if (!vtep_trusted(set, f->saddr))
		return VW_DROP_UNTRUSTED_VTEP;
	if (parse_vxlan(c, &vni) < 0)
		return VW_DROP_MALFORMED;
	if (parse_ethernet(c, &proto) < 0)
		return VW_DROP_MALFORMED;
	if (proto != bpf_htons(ETH_P_IP))
		return VW_PASS_NOT_IP;
	if (parse_ipv4(c, &inner) < 0)
		return VW_DROP_MALFORMED;

	f->is_vxlan = 1;
	f->vni = vni;
	f->saddr = inner->saddr;
	f->daddr = inner->daddr;
	f->protocol = inner->protocol;
	__builtin_memset(&f->l4, 0, sizeof(f->l4));

	if (ipv4_is_fragment(inner))
		return addr_protected(set, inner->daddr) ? VW_DROP_FRAGMENT
							 : VW_PASS_UNPROTECTED;
	if (parse_l4(c, inner->protocol, &f->l4) < 0)
		return VW_DROP_MALFORMED;
	return VW_REASONS;
}

static __always_inline struct vw_endpoint *
lookup_endpoint(__u32 set, const struct flow *f, __u32 vni)
{
	struct vw_endpoint_key key = {
		.set = set,
		.proto = f->protocol,
		.port = f->l4.dport,
		.vni = vni,
		.addr = f->daddr,
	};

	return bpf_map_lookup_elem(&vw_endpoints, &key);
}

/* Step 7.3, slow path: the rules trie (scopes that did not fit the blocks). */
static __always_inline __u32 trie_lookup(__u32 set, __u32 vault_id,
					 const struct flow *f)
{
	struct vw_rule_key key = {
		.prefixlen = VW_RULE_KEY_FIXED_BITS + 32,
		.set = set,
		.vault_id = vault_id,
		.vni = f->vni,
		.addr = f->saddr,
	};
	__u32 *rule_id = bpf_map_lookup_elem(&vw_rules, &key);

	return rule_id ? *rule_id : 0;
}

/* Step 7.3, fast path: walk the scope's stride blocks, one source byte per
 * level, until an entry holds a rule id (or 0) instead of a child block. */
static __always_inline __u32 stride_lookup(__u32 root, __be32 saddr)
{
	__u32 addr = bpf_ntohl(saddr);
	__u32 block = root, entry;
	struct vw_stride_block *b;

#pragma unroll
	for (int level = 0; level < VW_STRIDE_LEVELS; level++) {
		b = bpf_map_lookup_elem(&vw_stride_blocks, &block);
		if (!b)
			return 0;
		entry = b->entry[(addr >> (32 - VW_STRIDE_BITS * (level + 1))) &
				 (VW_STRIDE_FANOUT - 1)];
		if (!(entry & VW_STRIDE_CHILD))
			return entry;
		block = entry & ~VW_STRIDE_CHILD;
	}
	return 0; /* a child below the last level: never written */
}

/* Step 7.3: the longest source rule of the vault for this flow. */
static __always_inline __u32 lookup_rule(__u32 set, __u32 vault_id,
					 const struct flow *f)
{
	struct vw_scope_key key = {
		.set = set,
		.vault_id = vault_id,
		.vni = f->vni,
	};
	struct vw_scope *scope;

	/* VXLAN with VNI 0 would look like plain traffic: it matches no rule. */
	if (f->is_vxlan && f->vni == 0)
		return 0;
	scope = bpf_map_lookup_elem(&vw_scopes, &key);
	if (!scope)
		return 0; /* the vault has no rules for this VNI */
	if (scope->flags & VW_SCOPE_TRIE)
		return trie_lookup(set, vault_id, f);
	return stride_lookup(scope->root, f->saddr);
}

/* Step 7, without audit mode. */
static __always_inline void enforced_decision(__u32 set, const struct flow *f,
					      const struct vw_endpoint *ep,
					      __u32 flags, struct verdict *v)
{
	v->vault_id = ep->vault_id;
	if (ep->flags & VW_EP_PRIVATE) {
		v->reason = VW_PASS_PRIVATE_ENDPOINT;
		return;
	}
	if (flags & VW_VAULT_PUBLIC_DISABLED) {
		v->reason = (flags & VW_VAULT_BYPASS) ? VW_PASS_TRUSTED_CANDIDATE
						      : VW_DROP_PUBLIC_ACCESS_DISABLED;
		return;
	}
	v->rule_id = lookup_rule(set, ep->vault_id, f);
	if (v->rule_id) {
		v->reason = f->is_vxlan ? VW_PASS_VNET_RULE : VW_PASS_IP_RULE;
		return;
	}
	if (flags & VW_VAULT_DEFAULT_ALLOW)
		v->reason = VW_PASS_DEFAULT_ALLOW;
	else if (flags & VW_VAULT_BYPASS)
		v->reason = VW_PASS_TRUSTED_CANDIDATE;
	else
		v->reason = VW_DROP_NO_RULE;
}

/* Step 7: the decision of the vault that owns the endpoint; a vault in
 * audit mode passes what it would drop, under the audit reason. */
static __always_inline void vault_decision(__u32 set, const struct flow *f,
					   const struct vw_endpoint *ep,
					   struct verdict *v)
{
	__u32 idx = set * VW_MAX_VAULTS + ep->vault_id;
	struct vw_vault *vault = bpf_map_lookup_elem(&vw_vaults, &idx);
	__u32 flags = vault ? vault->flags : 0;

	enforced_decision(set, f, ep, flags, v);
	if (flags & VW_VAULT_AUDIT)
		v->reason = vw_reason_audited(v->reason);
}

/* Step 6: which endpoint (and so which vault) the flow is for. */
static __always_inline void endpoint_decision(__u32 set, const struct flow *f,
					      struct verdict *v)
{
	struct vw_endpoint *ep = NULL;

	if (f->protocol != IPPROTO_TCP && f->protocol != IPPROTO_UDP) {
		v->reason = VW_PASS_UNPROTECTED;
		return;
	}
	if (f->is_vxlan && f->vni != 0)
		ep = lookup_endpoint(set, f, f->vni);
	if (!ep)
		ep = lookup_endpoint(set, f, 0);
	if (ep) {
		vault_decision(set, f, ep, v);
		return;
	}
	v->reason = lookup_endpoint(set, f, VW_VNI_ANY_PRIVATE)
			    ? VW_DROP_NOT_PRIVATE_LINK
			    : VW_PASS_UNPROTECTED;
}

/* The whole verdict for the frame in ctx, as docs/datapath.md lays it out. */
static __always_inline void classify(struct xdp_md *ctx, struct flow *f,
				     struct verdict *v)
{
	struct cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
		.data_end = (void *)(long)ctx->data_end,
	};
	struct vw_state *state;
	struct vw_config *cfg;
	struct iphdr *ip;
	__u16 vxlan_port = 0;
	__u32 zero = 0, set = 0;
	__be16 proto;
	__u32 r;

	/* Read the live set once: this packet sees that rule set only. */
	state = bpf_map_lookup_elem(&vw_state, &zero);
	if (state) {
		set = state->active_set & 1;
		v->generation = state->generation;
	}
	cfg = bpf_map_lookup_elem(&vw_config, &set);
	if (cfg) {
		vxlan_port = cfg->vxlan_port;
		v->drop_events_per_second = cfg->drop_events_per_second;
	}

	if (parse_ethernet(&c, &proto) < 0) {
		v->reason = VW_DROP_MALFORMED;
		return;
	}
	if (proto != bpf_htons(ETH_P_IP)) {
		v->reason = VW_PASS_NOT_IP;
		return;
	}
	if (parse_ipv4(&c, &ip) < 0) {
		v->reason = VW_DROP_MALFORMED;
		return;
	}
	f->family = VW_FAMILY_IPV4;
	f->saddr = ip->saddr;
	f->daddr = ip->daddr;
	f->protocol = ip->protocol;
	if (ipv4_is_fragment(ip)) {
		v->reason = outer_fragment_reason(set, vxlan_port, &c, ip);
		return;
	}
	if (parse_l4(&c, ip->protocol, &f->l4) < 0) {
		v->reason = VW_DROP_MALFORMED;
		return;
	}
	if (f->protocol == IPPROTO_UDP && vxlan_port &&
	    f->l4.dport == bpf_htons(vxlan_port)) {
		r = decapsulate_vxlan(set, &c, f);
		if (r != VW_REASONS) {
			v->reason = r;
			return;
		}
	}
	endpoint_decision(set, f, v);
}

#endif /* VAULTWALL_CLASSIFY_H */
