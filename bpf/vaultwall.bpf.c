/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * vaultwall's XDP programs.
 *
 *  xdp_vaultwall  - attached to the NIC: classify, count, record admissions,
 *                   report denied flows, pass or drop.
 *  xdp_vw_explain - never attached: `vaultwallctl explain` runs it with
 *                   BPF_PROG_TEST_RUN on a synthesized frame. It shares the
 *                   maps and the classify() steps, but moves no counter and
 *                   writes no admission; it prepends its verdict to the frame.
 */
#include <xdp/xdp_helpers.h>

#include "classify.h"

/* libxdp: run this program first in a dispatcher chain, pass on XDP_PASS. */
struct {
	__uint(priority, 10);
	__uint(XDP_PASS, 1);
} XDP_RUN_CONFIG(xdp_vaultwall);

static __always_inline void count(const struct verdict *v, __u64 bytes)
{
	struct vw_counter *counter;
	__u32 idx = v->reason;

	if (v->reason < VW_GLOBAL_REASONS) {
		counter = bpf_map_lookup_elem(&vw_global_counters, &idx);
	} else {
		idx = VW_VAULT_COUNTER_INDEX(v->vault_id, v->reason);
		counter = bpf_map_lookup_elem(&vw_vault_counters, &idx);
	}
	if (counter) {
		counter->packets++;
		counter->bytes += bytes;
	}
	if (v->rule_id) {
		__u64 *hits = bpf_map_lookup_elem(&vw_rule_hits, &v->rule_id);

		if (hits)
			__sync_fetch_and_add(hits, 1);
	}
}

/* SPEC §3.8: a passing SYN to a protected endpoint leaves a record the gate
 * finds by the 4-tuple it sees after accept(), in the map of its family. */
static __always_inline void record_admission(const struct flow *f,
					     const struct verdict *v)
{
	struct vw_admission adm = {
		.timestamp_ns = bpf_ktime_get_ns(),
		.generation = v->generation,
		.vault_id = v->vault_id,
		.reason = v->reason,
		.vni = f->vni,
		.rule_id = v->rule_id,
	};

	if (f->family == VW_FAMILY_IPV6) {
		struct vw_flow6_key key6 = {
			.sport = f->l4.sport,
			.dport = f->l4.dport,
		};

		__builtin_memcpy(key6.saddr, f->saddr, VW_IPV6_ADDR_LEN);
		__builtin_memcpy(key6.daddr, f->daddr, VW_IPV6_ADDR_LEN);
		bpf_map_update_elem(&vw_admissions6, &key6, &adm, BPF_ANY);
		return;
	}
	struct vw_flow_key key = {
		.saddr = f->saddr[0],
		.daddr = f->daddr[0],
		.sport = f->l4.sport,
		.dport = f->l4.dport,
	};

	bpf_map_update_elem(&vw_admissions, &key, &adm, BPF_ANY);
}

static __always_inline int admits_syn(const struct flow *f,
				      const struct verdict *v)
{
	return v->vault_id && vw_reason_passes(v->reason) &&
	       f->protocol == IPPROTO_TCP && f->l4.syn && !f->l4.ack;
}

/* The CPU's token bucket (vaultwall_abi.h): one token per event, refilled
 * at `rate` a second, holding at most one second's worth. Per CPU, so no
 * atomics; a flood costs this check and a counter per packet past the limit.
 * The coarse clock (one tick's resolution) is plenty for refilling and far
 * cheaper than reading the precise one on every dropped packet of a flood. */
static __always_inline int take_event_token(struct vw_event_budget *b, __u32 rate)
{
	__u64 now = bpf_ktime_get_coarse_ns();
	__u64 cap = (__u64)rate * VW_NSEC_PER_SEC;
	__u64 elapsed = now - b->last_ns;

	if (elapsed > VW_NSEC_PER_SEC)
		elapsed = VW_NSEC_PER_SEC; /* a full bucket anyway; no overflow */
	b->last_ns = now;
	b->tokens += elapsed * rate;
	if (b->tokens > cap)
		b->tokens = cap;
	if (b->tokens < VW_NSEC_PER_SEC)
		return 0;
	b->tokens -= VW_NSEC_PER_SEC;
	return 1;
}

/* SPEC §9: a dropped or audited packet becomes an event for the daemon, as
 * far as the rate limit allows. */
static __always_inline void report_flow(struct xdp_md *ctx, const struct flow *f,
					const struct verdict *v, __u32 bytes)
{
	struct vw_event_budget *b;
	struct vw_drop_event *e;
	__u32 zero = 0;

	if (!v->drop_events_per_second || !vw_reason_reported(v->reason))
		return;
	b = bpf_map_lookup_elem(&vw_event_budget, &zero);
	if (!b)
		return;
	if (!take_event_token(b, v->drop_events_per_second)) {
		b->suppressed++;
		return;
	}
	e = bpf_ringbuf_reserve(&vw_drop_events, sizeof(*e), 0);
	if (!e) {
		b->lost++;
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->timestamp_ns = bpf_ktime_get_ns(); /* precise, for the few sent */
	e->generation = v->generation;
	e->ifindex = ctx->ingress_ifindex;
	e->reason = v->reason;
	e->vault_id = v->vault_id;
	e->vni = f->vni;
	e->family = f->family;
	__builtin_memcpy(e->saddr, f->saddr, sizeof(e->saddr));
	__builtin_memcpy(e->daddr, f->daddr, sizeof(e->daddr));
	e->protocol = f->protocol;
	e->sport = f->l4.sport;
	e->dport = f->l4.dport;
	e->bytes = bytes;
	/* Batched: see VW_DROP_EVENTS_WAKEUP_BYTES. */
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&vw_drop_events, BPF_RB_AVAIL_DATA) >= VW_DROP_EVENTS_WAKEUP_BYTES ?
				      BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
	b->sent++;
}

SEC("xdp")
int xdp_vaultwall(struct xdp_md *ctx)
{
	__u32 bytes = ctx->data_end - ctx->data;
	struct flow f = {};
	struct verdict v = {};

	classify(ctx, &f, &v);
	count(&v, bytes);
	if (admits_syn(&f, &v))
		record_admission(&f, &v);
	report_flow(ctx, &f, &v, bytes);
	return vw_reason_passes(v.reason) ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int xdp_vw_explain(struct xdp_md *ctx)
{
	struct flow f = {};
	struct verdict v = {};
	struct vw_explain_result *out;
	int action;

	classify(ctx, &f, &v);
	action = vw_reason_passes(v.reason) ? XDP_PASS : XDP_DROP;

	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(*out)))
		return XDP_ABORTED;
	out = (void *)(long)ctx->data;
	if ((void *)(out + 1) > (void *)(long)ctx->data_end)
		return XDP_ABORTED;
	out->magic = VW_EXPLAIN_MAGIC;
	out->action = action;
	out->reason = v.reason;
	out->vault_id = v.vault_id;
	out->rule_id = v.rule_id;
	out->vni = f.vni;
	out->generation = v.generation;
	return action;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
