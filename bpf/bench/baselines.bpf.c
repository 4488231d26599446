/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The datapath benchmark's programs (tools/bench), never attached to a NIC:
 *  xdp_bench_driver - run by BPF_PROG_TEST_RUN with a large `repeat`: each
 *                  run writes the next flow of a working set into the frame
 *                  (so the kernel loop cycles distinct packets without a
 *                  syscall each), then tail-calls the program under test;
 *  xdp_drop_only - the floor: drop everything, touch nothing;
 *  xdp_lpm_one   - the reference: parse Ethernet + IPv4 like vaultwall, then
 *                  exactly one kernel LPM-trie lookup of (vault, source) of
 *                  the (inner, for VXLAN) flow, the
 *                  vault being the destination's last octet (the benchmark
 *                  puts vault N's endpoint at x.x.x.N).
 *  xdp_bench_driver6, xdp_lpm6_one - the same for IPv6 (the classified
 *                  header is an IPv6 one; the reference looks up 128-bit
 *                  keys, vault N's endpoint being 2001:db8::N).
 */
#include "../parsing.h"

struct lpm_key {
	__u32 prefixlen; /* 32 + source prefix length */
	__u32 vault_id;
	__u32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1 << 21); /* resized by the benchmark */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_key);
	__type(value, __u32);
} bench_lpm SEC(".maps");

struct lpm6_key {
	__u32 prefixlen; /* 32 + source prefix length */
	__u32 vault_id;
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1 << 21); /* resized by the benchmark */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm6_key);
	__type(value, __u32);
} bench_lpm6 SEC(".maps");

struct bench_flow6 {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* resized to the working set */
	__type(key, __u32);
	__type(value, struct bench_flow6);
} bench_flows6 SEC(".maps");

/* One packet of the working set: the fields that vary. The driver writes
 * them into the template frame (checksums go stale; nothing here checks them). */
struct bench_flow {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* resized to the working set */
	__type(key, __u32);
	__type(value, struct bench_flow);
} bench_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_cursor SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_target SEC(".maps");

const volatile __u32 bench_nflows = 1;
const volatile __u32 bench_ip_offset = 14; /* where the classified IPv4 header starts */

/* The index of this run's flow in the working set (the CPU's cursor). */
static __always_inline int next_flow(__u32 *idx)
{
	__u32 zero = 0, *cursor = bpf_map_lookup_elem(&bench_cursor, &zero);

	if (!cursor)
		return -1;
	*idx = (*cursor)++;
	if (*idx >= bench_nflows) {
		*idx = 0;
		*cursor = 1;
	}
	return 0;
}

SEC("xdp")
int xdp_bench_driver(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bench_flow *flow;
	__u32 idx, off = bench_ip_offset;
	struct iphdr *ip;
	__be16 *ports;

	if (next_flow(&idx) < 0)
		return XDP_ABORTED;
	flow = bpf_map_lookup_elem(&bench_flows, &idx);
	if (!flow || off > 128)
		return XDP_ABORTED;
	ip = data + off;
	ports = data + off + sizeof(*ip);
	if ((void *)(ports + 2) > data_end)
		return XDP_ABORTED;
	ip->saddr = flow->saddr;
	ip->daddr = flow->daddr;
	ports[0] = flow->sport;
	ports[1] = flow->dport;
	bpf_tail_call(ctx, &bench_target, 0);
	return XDP_ABORTED;
}

/* The next flow of the IPv6 working set into the frame (addresses at +8 and
 * +24 of the IPv6 header, ports right after a chain-less header). */
SEC("xdp")
int xdp_bench_driver6(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bench_flow6 *flow;
	__u32 idx, off = bench_ip_offset;
	struct ipv6hdr *ip6;
	__be16 *ports;

	if (next_flow(&idx) < 0)
		return XDP_ABORTED;
	flow = bpf_map_lookup_elem(&bench_flows6, &idx);
	if (!flow || off > 128)
		return XDP_ABORTED;
	ip6 = data + off;
	ports = data + off + sizeof(*ip6);
	if ((void *)(ports + 2) > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(&ip6->saddr, flow->saddr, 16);
	__builtin_memcpy(&ip6->daddr, flow->daddr, 16);
	ports[0] = flow->sport;
	ports[1] = flow->dport;
	bpf_tail_call(ctx, &bench_target, 0);
	return XDP_ABORTED;
}

SEC("xdp")
int xdp_drop_only(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("xdp")
int xdp_lpm_one(struct xdp_md *ctx)
{
	struct cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
		.data_end = (void *)(long)ctx->data_end,
	};
	struct lpm_key key = { .prefixlen = 64 };
	struct iphdr *ip;
	__be16 proto;

	if (parse_ethernet(&c, &proto) < 0 || proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_ipv4(&c, &ip) < 0)
		return XDP_DROP;
	if (ip->protocol == IPPROTO_UDP) { /* VXLAN: classify the inner flow */
		struct l4_info l4 = {};
		__u32 vni;

		if (parse_l4(&c, ip->protocol, &l4) < 0 || l4.dport != bpf_htons(4789))
			return XDP_PASS;
		if (parse_vxlan(&c, &vni) < 0 || parse_ethernet(&c, &proto) < 0 ||
		    proto != bpf_htons(ETH_P_IP) || parse_ipv4(&c, &ip) < 0)
			return XDP_DROP;
	}
	key.vault_id = bpf_ntohl(ip->daddr) & 0xff;
	key.addr = ip->saddr;
	return bpf_map_lookup_elem(&bench_lpm, &key) ? XDP_PASS : XDP_DROP;
}

/* Ethernet + IPv6 (no extension headers), then one 128-bit LPM lookup of
 * (vault, source), the vault being the destination's last byte. */
SEC("xdp")
int xdp_lpm6_one(struct xdp_md *ctx)
{
	struct cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
		.data_end = (void *)(long)ctx->data_end,
	};
	struct lpm6_key key = { .prefixlen = 32 + 128 };
	struct ipv6hdr *ip6;
	__be16 proto;

	if (parse_ethernet(&c, &proto) < 0 || proto != bpf_htons(ETH_P_IPV6))
		return XDP_PASS;
	if (parse_ipv6(&c, &ip6) < 0)
		return XDP_DROP;
	key.vault_id = ip6->daddr.in6_u.u6_addr8[15];
	__builtin_memcpy(key.addr, &ip6->saddr, 16);
	return bpf_map_lookup_elem(&bench_lpm6, &key) ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
