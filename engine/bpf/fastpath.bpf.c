// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ngmedia's kernel fast path: forwards the UDP datagrams of established plain RTP streams
 * (and SRTP passed through unchanged), over IPv4 and IPv6, in the kernel, without waking the
 * engine. Two entry points share one map and one set of counters: `ngm_xdp`, attached at XDP
 * (native, in the driver) on interfaces that support it and forward, which sends matched
 * frames straight out of the egress device (next hop's L2 address from the kernel's FIB, then
 * a redirect); and `ngm_tc`, at TC ingress, which every interface has (veth, loopback,
 * virtual and physical NICs) and which also takes what XDP passed up (no neighbour yet, an
 * egress device that cannot take XDP frames, a local destination). `ngm_xdp_pass` passes
 * everything: attached to the far end of a veth so that frames redirected into the veth are
 * accepted (a veth takes XDP frames only when its peer runs an XDP program).
 *
 * User space (engine/src/io/fastpath.rs) owns the policy: it installs one entry in `fwd` per
 * direction of a stream that needs no per-packet work in user space, and removes it before
 * anything changes that. This program only matches the 5-tuple, rewrites addresses and
 * ports (checksums), sends the packet on and counts it. Everything it is unsure about
 * (RTCP, STUN, DTLS, fragments, IP options, GSO, an engine that stopped refreshing its
 * heartbeat) goes up the stack unchanged, to the engine's socket: user space stays the
 * reference and the fallback.
 *
 * The layouts below are shared with Rust (`#[repr(C)]` twins in fastpath.rs); keep both in
 * step.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* What a packet must carry to be matched: the party's address and the engine's socket. All
 * in network byte order; IPv4 addresses as IPv4-mapped IPv6 (::ffff:a.b.c.d), so one map
 * holds both families and an entry never matches a packet of the other family. */
struct fp_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
};

/* Counters the program keeps per entry; user space merges them into the stream's own. */
struct fp_counters {
	__u64 packets;
	__u64 bytes; /* UDP payload bytes, as the engine counts them */
	__u64 last_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) of the last packet */
	__u32 ssrc; /* of the last RTP packet */
	__u32 ext_seq; /* highest RTP sequence number seen, with wrap cycles in the top half */
	__u32 seq_packets; /* RTP packets of `ssrc` counted (in order or not) */
	__u32 last_ts; /* RTP timestamp of the packet that set ext_seq */
};

/* Where a matched packet goes, as if the engine's sink socket had sent it. */
struct fp_target {
	__u8 saddr[16]; /* the sink socket's address, of the key's family (mapped as there) */
	__u8 daddr[16]; /* the sink's party */
	__u16 sport;
	__u16 dport;
	__u32 ifindex; /* egress interface; 0: the destination is local, up the stack */
	__u8 tos; /* the sink socket's TOS */
	__u8 flags;
	__u16 _pad;
	__u32 _pad2;
	struct fp_counters c;
};

/* fp_target.flags */
#define FP_RTP_ONLY 1 /* RTCP (PT 192-223, RFC 5761) is left to user space */

/* Index 0: the engine's heartbeat. Entries forward only while `alive_until_ns` is ahead of
 * the clock; the engine pushes it forward every second, so an engine that died leaves
 * nothing forwarding beyond one idle timeout. */
struct fp_control {
	__u64 alive_until_ns;
	__u64 passed; /* packets that matched an entry but went up the stack */
};

/* Sized for 10,000+ calls: each call uses two RTP entries (and two RTCP ones). */
#define FP_MAX_ENTRIES 65536

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FP_MAX_ENTRIES);
	__type(key, struct fp_key);
	__type(value, struct fp_target);
} ngm_fwd SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fp_control);
} ngm_ctl SEC(".maps");

/* Egress devices that take XDP frames (ndo_xdp_xmit): key ifindex. User space keeps it:
 * XDP redirects only there and passes everything else up, to TC. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} ngm_xmit SEC(".maps");

/* Packets forwarded, by which program (per CPU: no shared cache line per packet). */
struct fp_path {
	__u64 xdp;
	__u64 tc;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fp_path);
} ngm_path SEC(".maps");

#define AF_INET 2
#define AF_INET6 10

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __always_inline __u16 ip_checksum(struct iphdr *ip)
{
	__u32 sum = 0;
	__u16 *p = (__u16 *)ip;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += p[i];
	return csum_fold(sum);
}

/* `a` = the IPv4-mapped IPv6 form of `v4` (network order), as keys and targets hold it. */
static __always_inline void fp_map4(__u8 *a, __u32 v4)
{
	__builtin_memset(a, 0, 10);
	a[10] = 0xff;
	a[11] = 0xff;
	__builtin_memcpy(a + 12, &v4, 4);
}

/* Whether `a` is an IPv4-mapped address (the target of an IPv4 entry). */
static __always_inline int fp_is_mapped(const __u8 *a)
{
	__u64 lo;
	__u32 mid;
	__builtin_memcpy(&lo, a, 8);
	__builtin_memcpy(&mid, a + 8, 4);
	return lo == 0 && mid == bpf_htonl(0xffff);
}

/* Update the entry's counters for one matched packet (`payload`: its RTP/RTCP header). */
static __always_inline void fp_count(struct fp_target *t, const __u8 *payload, __u16 ulen,
				     int rtcp, __u64 now)
{
	__sync_fetch_and_add(&t->c.packets, 1);
	__sync_fetch_and_add(&t->c.bytes, ulen >= 8 ? ulen - 8 : 0);
	t->c.last_ns = now;
	if (rtcp)
		return;
	__u16 seq = ((__u16)payload[2] << 8) | payload[3];
	__u32 ssrc = ((__u32)payload[8] << 24) | ((__u32)payload[9] << 16) | ((__u32)payload[10] << 8) |
		     payload[11];
	__u32 ts = ((__u32)payload[4] << 24) | ((__u32)payload[5] << 16) | ((__u32)payload[6] << 8) |
		   payload[7];
	__u32 ext = t->c.ext_seq;
	if (t->c.seq_packets == 0 || t->c.ssrc != ssrc) {
		/* First packet of a source: restart from its sequence number. */
		t->c.ssrc = ssrc;
		t->c.ext_seq = seq;
		t->c.last_ts = ts;
		t->c.seq_packets = 1;
		return;
	}
	/* RFC 3550 A.1: in order (possibly after a gap) when ahead by less than MAX_DROPOUT;
	 * anything else is late or a jump user space sorts out. */
	__u16 delta = seq - (__u16)ext;
	if (delta != 0 && delta < 3000) {
		t->c.ext_seq = ext + delta;
		t->c.last_ts = ts;
	}
	t->c.seq_packets += 1;
}

/* One address of the pseudo header changed from `old` to `new` (16 bytes each, network
 * order): fold the difference into the UDP checksum at `off`, a 32-bit word at a time. The
 * words of an IPv4-mapped address that never change cost nothing. */
static __always_inline void fp_csum_addr(struct __sk_buff *skb, __u32 off, const __u8 *old,
					 const __u8 *new)
{
#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u32 from, to;
		__builtin_memcpy(&from, old + 4 * i, 4);
		__builtin_memcpy(&to, new + 4 * i, 4);
		if (from != to)
			bpf_l4_csum_replace(skb, off, from, to,
					    BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4);
	}
}

/* A frame the programs may forward: its 5-tuple and where its headers are. */
struct fp_pkt {
	struct fp_key k;
	struct iphdr *ip;
	struct ipv6hdr *ip6;
	struct udphdr *udp;
	__u8 *payload;
	int v6;
};

/* Parse UDP over IPv4 (no options, not fragmented) or over IPv6 (UDP the first next header:
 * extension headers, fragments among them, go up) carrying at least an RTP header. Zero when
 * the frame is not for us. The family is kept as a plain flag: the verifier follows a known
 * scalar down one branch, where it would try a NULL packet pointer on both. */
static __always_inline int fp_parse(void *data, void *data_end, struct fp_pkt *p)
{
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return 0;
	struct udphdr *udp;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end || ip->ihl != 5 || ip->version != 4 ||
		    ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
			return 0;
		fp_map4(p->k.saddr, ip->saddr);
		fp_map4(p->k.daddr, ip->daddr);
		udp = (void *)(ip + 1);
		p->ip = ip;
		p->v6 = 0;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end || ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP)
			return 0;
		__builtin_memcpy(p->k.saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->k.daddr, &ip6->daddr, 16);
		udp = (void *)(ip6 + 1);
		p->ip6 = ip6;
		p->v6 = 1;
	} else {
		return 0;
	}
	if ((void *)(udp + 1) > data_end)
		return 0;
	__u8 *payload = (void *)(udp + 1);
	/* RTP/RTCP version 2 and a full RTP header; STUN, DTLS and the rest go up. */
	if ((void *)(payload + 12) > data_end || (payload[0] & 0xc0) != 0x80)
		return 0;
	p->k.sport = udp->source;
	p->k.dport = udp->dest;
	p->udp = udp;
	p->payload = payload;
	return 1;
}

/* The entry for a parsed frame when it is to be forwarded now: the heartbeat is fresh, RTCP
 * only when the entry takes it, and the target of the frame's family. With `count_pass`, a
 * match that goes up is counted (TC's verdict is the last one a frame gets). */
static __always_inline struct fp_target *fp_entry(struct fp_pkt *p, __u64 now, int *rtcp,
						  int count_pass)
{
	struct fp_target *t = bpf_map_lookup_elem(&ngm_fwd, &p->k);
	if (!t)
		return 0;
	__u32 zero = 0;
	struct fp_control *ctl = bpf_map_lookup_elem(&ngm_ctl, &zero);
	if (!ctl)
		return 0;
	__u8 pt = p->payload[1];
	*rtcp = pt >= 192 && pt <= 223;
	/* A target of the other family cannot be reached by rewriting: user space installs none,
	 * and this keeps it so. */
	if (now > ctl->alive_until_ns || (*rtcp && (t->flags & FP_RTP_ONLY)) ||
	    fp_is_mapped(t->daddr) == p->v6) {
		if (count_pass)
			__sync_fetch_and_add(&ctl->passed, 1);
		return 0;
	}
	return t;
}

/* Rewrite the IP header as the sink socket would have sent it (IPv4's checksum recomputed;
 * IPv6 has none). */
static __always_inline void fp_rewrite_ip(struct fp_pkt *p, struct fp_target *t)
{
	if (!p->v6) {
		struct iphdr *ip = p->ip;
		__builtin_memcpy(&ip->saddr, t->saddr + 12, 4);
		__builtin_memcpy(&ip->daddr, t->daddr + 12, 4);
		ip->ttl = 64;
		ip->tos = t->tos;
		ip->check = 0;
		ip->check = ip_checksum(ip);
	} else {
		struct ipv6hdr *ip6 = p->ip6;
		__builtin_memcpy(&ip6->saddr, t->saddr, 16);
		__builtin_memcpy(&ip6->daddr, t->daddr, 16);
		ip6->hop_limit = 64;
		/* The traffic class straddles the first two bytes. */
		ip6->priority = t->tos >> 4;
		ip6->flow_lbl[0] = (ip6->flow_lbl[0] & 0x0f) | (__u8)(t->tos << 4);
	}
}

static __always_inline void fp_path_count(int xdp)
{
	__u32 zero = 0;
	struct fp_path *path = bpf_map_lookup_elem(&ngm_path, &zero);
	if (!path)
		return;
	if (xdp)
		path->xdp += 1;
	else
		path->tc += 1;
}

/* Match, count and rewrite one frame in place at TC ingress. The UDP checksum's pseudo
 * header and ports are updated with the skb-aware helper, which also handles
 * CHECKSUM_PARTIAL. */
SEC("classifier")
int ngm_tc(struct __sk_buff *skb)
{
	/* Segmented (GSO/GRO) datagrams are left to the stack. */
	if (skb->gso_segs > 1)
		return TC_ACT_OK;
	struct fp_pkt p = {};
	if (!fp_parse((void *)(long)skb->data, (void *)(long)skb->data_end, &p))
		return TC_ACT_OK;
	__u64 now = bpf_ktime_get_ns();
	int rtcp = 0;
	struct fp_target *t = fp_entry(&p, now, &rtcp, 1);
	if (!t)
		return TC_ACT_OK;
	fp_count(t, p.payload, bpf_ntohs(p.udp->len), rtcp, now);
	fp_path_count(0);
	fp_rewrite_ip(&p, t);
	struct udphdr *udp = p.udp;
	udp->source = t->sport;
	udp->dest = t->dport;

	/* The UDP checksum: addresses are in the pseudo header, ports in the datagram; the
	 * helper keeps a zero (no checksum, IPv4 only) checksum zero unless mangled. */
	__u32 ifindex = t->ifindex;
	__u32 l3len = p.v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	__u32 off = sizeof(struct ethhdr) + l3len + offsetof(struct udphdr, check);
	__u16 new_sport = t->sport, new_dport = t->dport;
	fp_csum_addr(skb, off, p.k.saddr, t->saddr);
	fp_csum_addr(skb, off, p.k.daddr, t->daddr);
	bpf_l4_csum_replace(skb, off, p.k.sport, new_sport, BPF_F_MARK_MANGLED_0 | 2);
	bpf_l4_csum_replace(skb, off, p.k.dport, new_dport, BPF_F_MARK_MANGLED_0 | 2);
	if (!ifindex)
		return TC_ACT_OK;
	return bpf_redirect_neigh(ifindex, 0, 0, 0);
}

/* One's complement sum of the 16-bit words that change from `old` to `new` (RFC 1624), the
 * first `words` of at most 8. */
static __always_inline __u32 fp_csum_words(__u32 sum, const __u8 *old, const __u8 *new,
					   int words)
{
#pragma unroll
	for (int i = 0; i < 8; i++) {
		if (i < words) {
			__u16 from, to;
			__builtin_memcpy(&from, old + 2 * i, 2);
			__builtin_memcpy(&to, new + 2 * i, 2);
			sum += (__u16)~from;
			sum += to;
		}
	}
	return sum;
}

/* Sum of the 16-bit words of the pseudo header's addresses (`words` each from `at`), the
 * UDP length and the protocol, in memory order like the rest. */
static __always_inline __u32 fp_pseudo(const __u8 *saddr, const __u8 *daddr, int at, int words,
				       __u16 ulen_net)
{
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < 8; i++) {
		if (i < words) {
			__u16 a, b;
			__builtin_memcpy(&a, saddr + at + 2 * i, 2);
			__builtin_memcpy(&b, daddr + at + 2 * i, 2);
			sum += a;
			sum += b;
		}
	}
	return sum + ulen_net + bpf_htons(IPPROTO_UDP);
}

/* The pseudo header's sum for either family (constant offsets for each: the verifier takes
 * no arithmetic on a stack pointer but additions). */
static __always_inline __u32 fp_pseudo_any(const __u8 *saddr, const __u8 *daddr, int v6,
					   __u16 ulen_net)
{
	if (v6)
		return fp_pseudo(saddr, daddr, 0, 8, ulen_net);
	return fp_pseudo(saddr, daddr, 12, 2, ulen_net);
}

/* Sum of the `len` bytes at `off` in the frame as 16-bit words (an odd last byte padded
 * with zero), for datagrams of up to 1,500 bytes: 32-bit loads into a 64-bit sum, folded to
 * at most 17 bits. A global function: the verifier checks it once, not once per path of its
 * caller. */
__noinline int fp_sum_datagram(struct xdp_md *ctx, __u64 off, __u64 len)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	/* Bounds the verifier can follow: the caller passes an offset within the headers and
	 * a length of at most 1,500. */
	off &= 0xff;
	len &= 0x7ff;
	__u8 *p = data + off;
	__u8 *end = data + off + len;
	__u64 sum = 0;
	for (int i = 0; i < 375; i++) {
		if ((void *)(p + 4) > (void *)end || (void *)(p + 4) > data_end)
			break;
		sum += *(__u32 *)p;
		p += 4;
	}
	if ((void *)(p + 2) <= (void *)end && (void *)(p + 2) <= data_end) {
		sum += *(__u16 *)p;
		p += 2;
	}
	if ((void *)(p + 1) <= (void *)end && (void *)(p + 1) <= data_end)
		sum += *p;
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	return (int)sum;
}

/* The same at XDP, for frames that can leave from here: the route and the next hop's L2
 * address come from the kernel's FIB (which answers only on an interface that forwards),
 * and the egress device must take XDP frames. Anything else passes up, to `ngm_tc`, which
 * sees the frame unchanged and uncounted. The UDP checksum is updated incrementally (RFC
 * 1624). */
SEC("xdp")
int ngm_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct fp_pkt p = {};
	if (!fp_parse(data, data_end, &p))
		return XDP_PASS;
	__u64 now = bpf_ktime_get_ns();
	int rtcp = 0;
	struct fp_target *t = fp_entry(&p, now, &rtcp, 0);
	/* A local destination goes up the stack: TC's job. */
	if (!t || !t->ifindex)
		return XDP_PASS;

	struct bpf_fib_lookup fib = {};
	fib.l4_protocol = IPPROTO_UDP;
	fib.sport = t->sport;
	fib.dport = t->dport;
	fib.ifindex = ctx->ingress_ifindex;
	if (!p.v6) {
		fib.family = AF_INET;
		fib.tos = t->tos;
		fib.tot_len = bpf_ntohs(p.ip->tot_len);
		__builtin_memcpy(&fib.ipv4_src, t->saddr + 12, 4);
		__builtin_memcpy(&fib.ipv4_dst, t->daddr + 12, 4);
	} else {
		fib.family = AF_INET6;
		fib.tot_len = bpf_ntohs(p.ip6->payload_len) + sizeof(struct ipv6hdr);
		__builtin_memcpy(fib.ipv6_src, t->saddr, 16);
		__builtin_memcpy(fib.ipv6_dst, t->daddr, 16);
	}
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return XDP_PASS;
	__u32 out = fib.ifindex;
	if (!bpf_map_lookup_elem(&ngm_xmit, &out))
		return XDP_PASS;

	/* A datagram sent on this host through a veth carries only its pseudo header's sum in
	 * the checksum field (CHECKSUM_PARTIAL, finished by whoever transmits it on a wire),
	 * which an XDP frame loses: such a one gets its full checksum computed here. */
	struct udphdr *udp = p.udp;
	__u16 ulen = bpf_ntohs(udp->len);
	void *dgram_end = (void *)udp + ulen;
	if (ulen < sizeof(*udp) || dgram_end > data_end)
		return XDP_PASS;
	__u32 old_pseudo = fp_pseudo_any(p.k.saddr, p.k.daddr, p.v6, udp->len);
	int partial = udp->check && (__u16)~csum_fold(old_pseudo) == udp->check;
	if (partial && ulen > 1500)
		return XDP_PASS;

	fp_count(t, p.payload, ulen, rtcp, now);
	fp_path_count(1);
	fp_rewrite_ip(&p, t);
	if (partial) {
		udp->source = t->sport;
		udp->dest = t->dport;
		udp->check = 0;
		__u32 sum = fp_pseudo_any(t->saddr, t->daddr, p.v6, udp->len);
		sum += (__u32)fp_sum_datagram(ctx, (void *)udp - data, ulen);
		__u16 check = csum_fold(sum);
		udp->check = check ? check : 0xffff;
	} else if (p.v6 || udp->check) {
		/* IPv4's "no checksum" (zero) stays so. */
		__u32 sum = (__u16)~udp->check;
		if (p.v6) {
			sum = fp_csum_words(sum, p.k.saddr, t->saddr, 8);
			sum = fp_csum_words(sum, p.k.daddr, t->daddr, 8);
		} else {
			sum = fp_csum_words(sum, p.k.saddr + 12, t->saddr + 12, 2);
			sum = fp_csum_words(sum, p.k.daddr + 12, t->daddr + 12, 2);
		}
		sum = fp_csum_words(sum, (const __u8 *)&p.k.sport, (const __u8 *)&t->sport, 1);
		sum = fp_csum_words(sum, (const __u8 *)&p.k.dport, (const __u8 *)&t->dport, 1);
		__u16 check = csum_fold(sum);
		udp->check = check ? check : 0xffff;
	}
	udp->source = t->sport;
	udp->dest = t->dport;
	struct ethhdr *eth = data;
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	return bpf_redirect(out, 0);
}

/* Passes every frame: on the far end of a veth, it lets the veth take XDP frames. */
SEC("xdp")
int ngm_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
