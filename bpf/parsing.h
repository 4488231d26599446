/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Header parsers for the datapath. Each one reads at the cursor, bounds every
 * access against both the end of the frame (what the verifier needs) and the
 * semantic end of the enclosing datagram (what the protocol says), and moves
 * the cursor past what it parsed. They return 0 on success and -1 when the
 * header is truncated or invalid; callers turn -1 into drop.malformed.
 */
#ifndef VAULTWALL_PARSING_H
#define VAULTWALL_PARSING_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "vaultwall_abi.h"

#define VW_VLAN_MAX_DEPTH 2
#define VW_ETH_P_8021Q 0x8100
#define VW_ETH_P_8021AD 0x88a8
#define VW_IP_MF 0x2000
#define VW_IP_OFFSET 0x1fff
#define VW_VXLAN_FLAG_I 0x08

/* IPv6 extension headers the walk steps over (RFC 8200 §4). */
#define VW_NEXTHDR_HOP 0
#define VW_NEXTHDR_ROUTING 43
#define VW_NEXTHDR_FRAGMENT 44
#define VW_NEXTHDR_DEST 60
#define VW_IP6_MF 0x0001      /* fragment header: more fragments */
#define VW_IP6_OFFSET 0xfff8  /* fragment header: offset, in 8-byte units << 3 */
/* Highest offset of an IPv6 upper-layer header the datapath reads. The
 * verifier only trusts a bounds check on a packet pointer whose variable
 * offset stays below 64 KiB with everything added after it; XDP frames
 * (one page without multi-buffer) end long before this. */
#define VW_MAX_FRAME_OFF 0x3fff

struct cursor {
	void *pos;      /* next byte to parse */
	void *end;      /* semantic end: the frame, then the datagram */
	void *data_end; /* end of the frame, for the verifier */
};

struct vw_vlan_hdr {
	__be16 tci;
	__be16 encapsulated_proto;
};

struct vw_vxlan_hdr {
	__u8 flags;
	__u8 reserved1[3];
	__u8 vni[3];
	__u8 reserved2;
};

/* True when `len` bytes at the cursor lie inside the frame and the datagram. */
static __always_inline int cursor_has(struct cursor *c, __u32 len)
{
	if (c->pos + len > c->data_end)
		return 0;
	if (c->pos + len > c->end)
		return 0;
	return 1;
}

static __always_inline int is_vlan_proto(__be16 proto)
{
	return proto == bpf_htons(VW_ETH_P_8021Q) ||
	       proto == bpf_htons(VW_ETH_P_8021AD);
}

/* Ethernet plus at most two VLAN tags; *proto gets the EtherType after them
 * (a VLAN EtherType when there was a third tag: "not IPv4" to the caller). */
static __always_inline int parse_ethernet(struct cursor *c, __be16 *proto)
{
	struct ethhdr *eth = c->pos;
	__be16 type;
	int i;

	if (!cursor_has(c, sizeof(*eth)))
		return -1;
	type = eth->h_proto;
	c->pos = eth + 1;

#pragma unroll
	for (i = 0; i < VW_VLAN_MAX_DEPTH; i++) {
		struct vw_vlan_hdr *vlan = c->pos;

		if (!is_vlan_proto(type))
			break;
		if (!cursor_has(c, sizeof(*vlan)))
			return -1;
		type = vlan->encapsulated_proto;
		c->pos = vlan + 1;
	}
	*proto = type;
	return 0;
}

/* IPv4 header with options. On success the cursor's semantic end becomes the
 * end of the datagram (tot_len), so later layers cannot read padding. */
static __always_inline int parse_ipv4(struct cursor *c, struct iphdr **iph)
{
	struct iphdr *ip = c->pos;
	__u32 hdr_len, tot_len;

	if (!cursor_has(c, sizeof(*ip)))
		return -1;
	if (ip->version != 4 || ip->ihl < 5)
		return -1;
	hdr_len = ip->ihl * 4;
	tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len < hdr_len)
		return -1;
	if (!cursor_has(c, hdr_len) || !cursor_has(c, tot_len))
		return -1;
	c->end = c->pos + tot_len;
	c->pos += hdr_len;
	*iph = ip;
	return 0;
}

/* IPv6 fixed header. On success the cursor's semantic end becomes the end of
 * the datagram (40 + payload_len), as for IPv4; the extension headers are
 * walked by ipv6_walk_chain(). */
static __always_inline int parse_ipv6(struct cursor *c, struct ipv6hdr **ip6h)
{
	struct ipv6hdr *ip = c->pos;
	__u32 len;

	if (!cursor_has(c, sizeof(*ip)))
		return -1;
	if (ip->version != 6)
		return -1;
	len = sizeof(*ip) + bpf_ntohs(ip->payload_len);
	if (!cursor_has(c, len))
		return -1;
	c->end = c->pos + len;
	c->pos = ip + 1;
	*ip6h = ip;
	return 0;
}

/* What the walk of an IPv6 extension-header chain found. */
enum vw_frag6 {
	VW_FRAG6_NONE = 0, /* no fragment header, or an atomic one (offset 0, M clear) */
	VW_FRAG6_FIRST,    /* offset 0, M set: the chain goes on after it */
	VW_FRAG6_LATER,    /* offset > 0: no upper-layer header in this packet */
};
enum vw_chain {
	VW_CHAIN_OK = 0,
	VW_CHAIN_TRUNCATED,       /* a header not whole inside the datagram */
	VW_CHAIN_TOO_LONG,        /* still an extension header after the bound */
	VW_CHAIN_SECOND_FRAGMENT, /* a second fragment header */
};
struct vw_ipv6_chain {
	__u32 l4_off;   /* offset of the upper-layer header from ctx->data */
	__u8 protocol;  /* the upper-layer protocol (next header after the chain) */
	__u8 fragment;  /* enum vw_frag6 */
	__u16 pad;
};

static __always_inline int ipv6_is_ext_header(__u8 nexthdr)
{
	return nexthdr == VW_NEXTHDR_HOP || nexthdr == VW_NEXTHDR_ROUTING ||
	       nexthdr == VW_NEXTHDR_DEST || nexthdr == VW_NEXTHDR_FRAGMENT;
}

/*
 * The bounded walk of an IPv6 extension-header chain (docs/datapath.md,
 * "IPv6"): from offset `off` (just past the fixed header) with `nexthdr`,
 * bounded by the datagram's end offset `end`, at most
 * VW_IPV6_MAX_EXT_HEADERS headers. Hop-by-hop, routing and destination
 * options are (hdr_ext_len + 1) * 8 bytes, a fragment header 8. Returns
 * enum vw_chain; `ch` says where the upper layer starts and what it is.
 *
 * A global (not inlined) function on purpose: the verifier checks it once,
 * on its own. Inlined, every path through the chain (each header of any
 * kind) would multiply the paths of everything after it, twice for VXLAN.
 */
__attribute__((noinline)) int vw_ipv6_walk_chain(struct xdp_md *ctx, __u64 off, __u64 end,
						  __u32 nexthdr, struct vw_ipv6_chain *ch)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 fragment_headers = 0;
	int i;

	/* 64-bit offsets: a 32-bit one is zero-extended again after its bounds
	 * check, and the verifier loses the bounds on the copy it uses. */
	if (!ch)
		return VW_CHAIN_TRUNCATED;
	ch->fragment = VW_FRAG6_NONE;
	ch->protocol = nexthdr;
	ch->l4_off = off;
	for (i = 0; i < VW_IPV6_MAX_EXT_HEADERS; i++) {
		__u8 *h;

		if (!ipv6_is_ext_header(nexthdr))
			break;
		/* Every extension header is at least 8 bytes. */
		if (off > VW_MAX_FRAME_OFF || off + 8 > end)
			return VW_CHAIN_TRUNCATED;
		h = data + off;
		if ((void *)(h + 8) > data_end)
			return VW_CHAIN_TRUNCATED;
		if (nexthdr == VW_NEXTHDR_FRAGMENT) {
			__u16 frag = ((__u16)h[2] << 8) | h[3];

			if (++fragment_headers > 1)
				return VW_CHAIN_SECOND_FRAGMENT;
			nexthdr = h[0];
			off += 8;
			if (frag & VW_IP6_OFFSET) {
				/* The rest is a slice of the fragmentable part:
				 * nothing after this header can be read. */
				ch->fragment = VW_FRAG6_LATER;
				ch->protocol = nexthdr;
				ch->l4_off = off;
				return VW_CHAIN_OK;
			}
			if (frag & VW_IP6_MF)
				ch->fragment = VW_FRAG6_FIRST;
			continue;
		}
		nexthdr = h[0];
		off += ((__u32)h[1] + 1) * 8;
		if (off > end)
			return VW_CHAIN_TRUNCATED;
	}
	if (ipv6_is_ext_header(nexthdr))
		return VW_CHAIN_TOO_LONG;
	ch->protocol = nexthdr;
	ch->l4_off = off;
	return VW_CHAIN_OK;
}

/* Whether the upper-layer header of a first fragment is whole (RFC 7112):
 * TCP's 20 bytes, UDP's 8; other protocols have nothing the datapath reads. */
static __always_inline int l4_header_whole(struct cursor *c, __u8 protocol)
{
	if (protocol == IPPROTO_TCP)
		return cursor_has(c, sizeof(struct tcphdr));
	if (protocol == IPPROTO_UDP)
		return cursor_has(c, sizeof(struct udphdr));
	return 1;
}

static __always_inline int ipv4_is_fragment(const struct iphdr *ip)
{
	return (ip->frag_off & bpf_htons(VW_IP_MF | VW_IP_OFFSET)) != 0;
}

static __always_inline int ipv4_is_first_fragment(const struct iphdr *ip)
{
	return (ip->frag_off & bpf_htons(VW_IP_OFFSET)) == 0;
}

/* Ports (and TCP flags) of the transport header at the cursor. Only TCP and
 * UDP have ports; for anything else ports stay 0 and nothing is read. */
struct l4_info {
	__be16 sport;
	__be16 dport;
	__u8 syn;
	__u8 ack;
};

static __always_inline int parse_l4(struct cursor *c, __u8 protocol,
				    struct l4_info *l4)
{
	if (protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = c->pos;

		if (!cursor_has(c, sizeof(*tcp)))
			return -1;
		l4->sport = tcp->source;
		l4->dport = tcp->dest;
		l4->syn = tcp->syn;
		l4->ack = tcp->ack;
		c->pos = tcp + 1;
	} else if (protocol == IPPROTO_UDP) {
		struct udphdr *udp = c->pos;

		if (!cursor_has(c, sizeof(*udp)))
			return -1;
		l4->sport = udp->source;
		l4->dport = udp->dest;
		c->pos = udp + 1;
	}
	return 0;
}

/* Destination port of a first UDP fragment (only 4 bytes are needed). */
static __always_inline int peek_udp_dport(struct cursor *c, __be16 *dport)
{
	struct udphdr *udp = c->pos;

	if (!cursor_has(c, 4))
		return -1;
	if ((void *)udp + 4 > c->data_end)
		return -1;
	*dport = udp->dest;
	return 0;
}

/* VXLAN header with the I flag, and room for the inner Ethernet header. */
static __always_inline int parse_vxlan(struct cursor *c, __u32 *vni)
{
	struct vw_vxlan_hdr *vx = c->pos;

	if (!cursor_has(c, sizeof(*vx) + sizeof(struct ethhdr)))
		return -1;
	if (!(vx->flags & VW_VXLAN_FLAG_I))
		return -1;
	*vni = ((__u32)vx->vni[0] << 16) | ((__u32)vx->vni[1] << 8) | vx->vni[2];
	c->pos = vx + 1;
	return 0;
}

#endif /* VAULTWALL_PARSING_H */
