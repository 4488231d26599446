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

/* The flow being classified: the outer one, or the inner one after VXLAN.
 * Addresses in network order: IPv4 in word 0 (the rest zero), IPv6 in all
 * four. */
struct flow {
	__be32 saddr[4];
	__be32 daddr[4];
	struct l4_info l4;
	__u8 protocol;
	__u8 is_vxlan;
	__u8 family; /* VW_FAMILY_IPV4/IPV6 once addresses are known, else 0 */
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

static __always_inline int vtep6_trusted(__u32 set, const __be32 *saddr)
{
	struct vw_vtep6_key key = {
		.prefixlen = VW_VTEP_KEY_FIXED_BITS + 128,
		.set = set,
	};

	__builtin_memcpy(key.addr, saddr, VW_IPV6_ADDR_LEN);
	return bpf_map_lookup_elem(&vw_vteps6, &key) != NULL;
}

static __always_inline int addr6_protected(__u32 set, const __be32 *daddr)
{
	struct vw_addr6_key key = { .set = set };

	__builtin_memcpy(key.addr, daddr, VW_IPV6_ADDR_LEN);
	return bpf_map_lookup_elem(&vw_protected_addrs6, &key) != NULL;
}

/* The source is a trusted VTEP / the destination carries an endpoint, in
 * the flow's family. */
static __always_inline int flow_from_vtep(__u32 set, const struct flow *f)
{
	if (f->family == VW_FAMILY_IPV6)
		return vtep6_trusted(set, f->saddr);
	return vtep_trusted(set, f->saddr[0]);
}

static __always_inline int flow_to_protected(__u32 set, const struct flow *f)
{
	if (f->family == VW_FAMILY_IPV6)
		return addr6_protected(set, f->daddr);
	return addr_protected(set, f->daddr[0]);
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

/* IPv6 at the cursor (after Ethernet): the fixed header and the walk of its
 * extension headers; the flow gets its addresses and upper-layer protocol.
 * On VW_CHAIN_OK the cursor is at the upper-layer header. Returns enum
 * vw_chain, or -1 when the fixed header itself is malformed. */
static __always_inline int parse_ipv6_flow(struct xdp_md *ctx, struct cursor *c,
					   struct flow *f, struct vw_ipv6_chain *ch)
{
	void *data = (void *)(long)ctx->data;
	struct ipv6hdr *ip6;
	int r;

	if (parse_ipv6(c, &ip6) < 0)
		return -1;
	f->family = VW_FAMILY_IPV6;
	__builtin_memcpy(f->saddr, &ip6->saddr, VW_IPV6_ADDR_LEN);
	__builtin_memcpy(f->daddr, &ip6->daddr, VW_IPV6_ADDR_LEN);
	r = vw_ipv6_walk_chain(ctx, c->pos - data, c->end - data, ip6->nexthdr, ch);
	f->protocol = ch->protocol;
	if (r != VW_CHAIN_OK)
		return r;
	if (ch->l4_off > VW_MAX_FRAME_OFF)
		return VW_CHAIN_TRUNCATED;
	c->pos = data + ch->l4_off;
	return VW_CHAIN_OK;
}

/* Steps 2-3 for IPv6 (docs/datapath.md, "IPv6"): what a chain that cannot
 * be classified as a whole gets, or VW_REASONS to go on to layer 4. The
 * outer datagram also drops fragments from VTEPs and of UDP to the VXLAN
 * port, as IPv4's step 3 does. */
static __always_inline __u32 ipv6_chain_reason(__u32 set, __u16 vxlan_port, int walk,
					       const struct vw_ipv6_chain *ch,
					       struct cursor *c, const struct flow *f,
					       int outer)
{
	if (walk < 0 || walk == VW_CHAIN_TOO_LONG)
		return VW_DROP_MALFORMED;
	if (walk == VW_CHAIN_TRUNCATED)
		return ch->fragment == VW_FRAG6_FIRST ? VW_DROP_FRAGMENT : VW_DROP_MALFORMED;
	if (walk == VW_CHAIN_SECOND_FRAGMENT)
		return VW_DROP_FRAGMENT;
	if (ch->fragment == VW_FRAG6_NONE)
		return VW_REASONS;
	if (ch->fragment == VW_FRAG6_FIRST && !l4_header_whole(c, ch->protocol))
		return VW_DROP_FRAGMENT; /* RFC 7112: the upper-layer header is split */
	if (outer) {
		if (vtep6_trusted(set, f->saddr))
			return VW_DROP_FRAGMENT;
		if (ch->fragment == VW_FRAG6_FIRST && ch->protocol == IPPROTO_UDP) {
			__be16 dport;

			if (peek_udp_dport(c, &dport) < 0)
				return VW_DROP_MALFORMED; /* not reached: the header is whole */
			if (vxlan_port && dport == bpf_htons(vxlan_port))
				return VW_DROP_FRAGMENT;
		}
	}
	return addr6_protected(set, f->daddr) ? VW_DROP_FRAGMENT : VW_PASS_UNPROTECTED;
}

/* Step 5.3 for an inner IPv4 frame. */
static __always_inline __u32 inner_ipv4(__u32 set, struct cursor *c, struct flow *f)
{
	struct iphdr *inner;

	if (parse_ipv4(c, &inner) < 0)
		return VW_DROP_MALFORMED;
	f->family = VW_FAMILY_IPV4;
	__builtin_memset(f->saddr, 0, sizeof(f->saddr));
	__builtin_memset(f->daddr, 0, sizeof(f->daddr));
	f->saddr[0] = inner->saddr;
	f->daddr[0] = inner->daddr;
	f->protocol = inner->protocol;
	if (ipv4_is_fragment(inner))
		return addr_protected(set, inner->daddr) ? VW_DROP_FRAGMENT
							 : VW_PASS_UNPROTECTED;
	return VW_REASONS;
}

/* Step 5.3 for an inner IPv6 frame. */
static __always_inline __u32 inner_ipv6(struct xdp_md *ctx, __u32 set, struct cursor *c,
					struct flow *f)
{
	struct vw_ipv6_chain ch = {};
	int walk = parse_ipv6_flow(ctx, c, f, &ch);

	return ipv6_chain_reason(set, 0, walk, &ch, c, f, 0);
}

/* Step 5: VXLAN from a trusted VTEP (of the outer family); on success the
 * flow is the inner one, IPv4 or IPv6. Returns VW_REASONS to continue with
 * the inner flow, else a final reason. */
static __always_inline __u32 decapsulate_vxlan(struct xdp_md *ctx, __u32 set,
					       struct cursor *c, struct flow *f)
{
	__be16 proto;
	__u32 vni, r;

	if (!flow_from_vtep(set, f))
		return VW_DROP_UNTRUSTED_VTEP;
	if (parse_vxlan(c, &vni) < 0)
		return VW_DROP_MALFORMED;
	if (parse_ethernet(c, &proto) < 0)
		return VW_DROP_MALFORMED;
	if (proto == bpf_htons(ETH_P_IP))
		r = inner_ipv4(set, c, f);
	else if (proto == bpf_htons(ETH_P_IPV6))
		r = inner_ipv6(ctx, set, c, f);
	else
		return VW_PASS_NOT_IP;
	f->is_vxlan = 1;
	f->vni = vni;
	__builtin_memset(&f->l4, 0, sizeof(f->l4));
	if (r != VW_REASONS)
		return r;
	if (parse_l4(c, f->protocol, &f->l4) < 0)
		return VW_DROP_MALFORMED;
	return VW_REASONS;
}

static __always_inline struct vw_endpoint *
lookup_endpoint(__u32 set, const struct flow *f, __u32 vni)
{
	if (f->family == VW_FAMILY_IPV6) {
		struct vw_endpoint6_key key6 = {
			.set = set,
			.proto = f->protocol,
			.port = f->l4.dport,
			.vni = vni,
		};

		__builtin_memcpy(key6.addr, f->daddr, VW_IPV6_ADDR_LEN);
		return bpf_map_lookup_elem(&vw_endpoints6, &key6);
	}
	struct vw_endpoint_key key = {
		.set = set,
		.proto = f->protocol,
		.port = f->l4.dport,
		.vni = vni,
		.addr = f->daddr[0],
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
		.addr = f->saddr[0],
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

/* `addr` with every bit after the first `len` cleared (network order).
 * Branch-free per word: a 64-bit shift by 0..32 gives the word's mask. */
static __always_inline void ipv6_masked(__u32 *out, const __be32 *addr, __u32 len)
{
#pragma unroll
	for (int w = 0; w < 4; w++) {
		__u32 bits = len > 32 * w ? len - 32 * w : 0;

		bits = bits > 32 ? 32 : bits;
		out[w] = addr[w] & bpf_htonl((__u32)(0xffffffff00000000ull >> bits));
	}
}

/* Step 7.3 for IPv6 (docs/datapath.md, "IPv6 rule lookup"): one hash probe
 * per prefix length the scope uses, longest first; the first hit is the
 * longest match. A scope with too many lengths walks the trie instead.
 * Global (not inlined), so the verifier checks its loop once, not once per
 * path that reaches a vault decision. */
__attribute__((noinline)) __u32 vw_lookup_rule6(__u32 set, __u32 vault_id,
						 const struct flow *f)
{
	struct vw_scope_key skey = {
		.set = set,
		.vault_id = vault_id,
	};
	struct vw_rule6_key key = {
		.set = set,
		.vault_id = vault_id,
	};
	struct vw_scope6 *scope;
	__u32 *rule_id;

	if (!f)
		return 0;
	skey.vni = f->vni;
	key.vni = f->vni;
	scope = bpf_map_lookup_elem(&vw_scopes6, &skey);
	if (!scope)
		return 0; /* the vault has no IPv6 rules for this VNI */
	if (scope->flags & VW_SCOPE_TRIE) {
		key.prefixlen = VW_RULE_KEY_FIXED_BITS + 128;
		__builtin_memcpy(key.addr, f->saddr, VW_IPV6_ADDR_LEN);
		rule_id = bpf_map_lookup_elem(&vw_rules6, &key);
		return rule_id ? *rule_id : 0;
	}
	for (int i = 0; i < VW_SCOPE6_MAX_LENS; i++) {
		__u32 len;

		if (i >= scope->nlens)
			break;
		len = scope->lens[i];
		key.prefixlen = VW_RULE_KEY_FIXED_BITS + len;
		ipv6_masked((__u32 *)key.addr, f->saddr, len);
		rule_id = bpf_map_lookup_elem(&vw_rules6_hash, &key);
		if (rule_id)
			return *rule_id;
	}
	return 0;
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
	if (f->family == VW_FAMILY_IPV6)
		return vw_lookup_rule6(set, vault_id, f);
	scope = bpf_map_lookup_elem(&vw_scopes, &key);
	if (!scope)
		return 0; /* the vault has no rules for this VNI */
	if (scope->flags & VW_SCOPE_TRIE)
		return trie_lookup(set, vault_id, f);
	return stride_lookup(scope->root, f->saddr[0]);
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

/* Steps 2-4 for an outer IPv4 datagram: VW_REASONS to go on with the flow
 * (its layer 4 parsed), else the final reason. */
static __always_inline __u32 classify_ipv4(__u32 set, __u16 vxlan_port,
					   struct cursor *c, struct flow *f)
{
	struct iphdr *ip;

	if (parse_ipv4(c, &ip) < 0)
		return VW_DROP_MALFORMED;
	f->family = VW_FAMILY_IPV4;
	f->saddr[0] = ip->saddr;
	f->daddr[0] = ip->daddr;
	f->protocol = ip->protocol;
	if (ipv4_is_fragment(ip))
		return outer_fragment_reason(set, vxlan_port, c, ip);
	if (parse_l4(c, ip->protocol, &f->l4) < 0)
		return VW_DROP_MALFORMED;
	return VW_REASONS;
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
	if (proto == bpf_htons(ETH_P_IP)) {
		r = classify_ipv4(set, vxlan_port, &c, f);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct vw_ipv6_chain ch = {};
		int walk = parse_ipv6_flow(ctx, &c, f, &ch);

		r = ipv6_chain_reason(set, vxlan_port, walk, &ch, &c, f, 1);
		if (r == VW_REASONS && parse_l4(&c, f->protocol, &f->l4) < 0)
			r = VW_DROP_MALFORMED;
	} else {
		r = VW_PASS_NOT_IP;
	}
	if (r != VW_REASONS) {
		v->reason = r;
		return;
	}
	if (f->protocol == IPPROTO_UDP && vxlan_port &&
	    f->l4.dport == bpf_htons(vxlan_port)) {
		r = decapsulate_vxlan(ctx, set, &c, f);
		if (r != VW_REASONS) {
			v->reason = r;
			return;
		}
	}
	endpoint_decision(set, f, v);
}

#endif /* VAULTWALL_CLASSIFY_H */
