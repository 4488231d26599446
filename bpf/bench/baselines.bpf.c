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

SEC("xdp")
int xdp_bench_driver(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bench_flow *flow;
	__u32 zero = 0, idx, off = bench_ip_offset;
	struct iphdr *ip;
	__be16 *ports;
	__u32 *cursor;

	cursor = bpf_map_lookup_elem(&bench_cursor, &zero);
	if (!cursor)
		return XDP_ABORTED;
	idx = (*cursor)++;
	if (idx >= bench_nflows) {
		idx = 0;
		*cursor = 1;
	}
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

char LICENSE[] SEC("license") = "Dual BSD/GPL";
