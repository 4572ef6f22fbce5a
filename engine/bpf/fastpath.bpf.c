// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ngmedia's kernel fast path: forwards the UDP datagrams of established plain RTP streams
 * (and SRTP passed through unchanged), over IPv4 and IPv6, in the kernel, without waking the
 * engine. Attached at TC ingress, which every interface has (veth, loopback, virtual and
 * physical NICs).
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

/* Match, count and rewrite one frame in place: UDP over IPv4 (no options, not fragmented)
 * or over IPv6 (UDP the first next header: extension headers, fragments among them, go up)
 * carrying at least an RTP header. The UDP checksum's pseudo header and ports are updated
 * here with the skb-aware helper, which also handles CHECKSUM_PARTIAL; IPv6 has no header
 * checksum, IPv4's is recomputed. */
SEC("classifier")
int ngm_tc(struct __sk_buff *skb)
{
	/* Segmented (GSO/GRO) datagrams are left to the stack. */
	if (skb->gso_segs > 1)
		return TC_ACT_OK;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;

	/* The family is kept as a plain flag: the verifier follows a known scalar down one
	 * branch, where it would try a NULL packet pointer on both. */
	struct fp_key k;
	struct iphdr *ip = 0;
	struct ipv6hdr *ip6 = 0;
	struct udphdr *udp;
	int v6;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end || ip->ihl != 5 || ip->version != 4 ||
		    ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
			return TC_ACT_OK;
		fp_map4(k.saddr, ip->saddr);
		fp_map4(k.daddr, ip->daddr);
		udp = (void *)(ip + 1);
		v6 = 0;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end || ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP)
			return TC_ACT_OK;
		__builtin_memcpy(k.saddr, &ip6->saddr, 16);
		__builtin_memcpy(k.daddr, &ip6->daddr, 16);
		udp = (void *)(ip6 + 1);
		v6 = 1;
	} else {
		return TC_ACT_OK;
	}
	if ((void *)(udp + 1) > data_end)
		return TC_ACT_OK;
	__u8 *payload = (void *)(udp + 1);
	/* RTP/RTCP version 2 and a full RTP header; STUN, DTLS and the rest go up. */
	if ((void *)(payload + 12) > data_end || (payload[0] & 0xc0) != 0x80)
		return TC_ACT_OK;
	k.sport = udp->source;
	k.dport = udp->dest;

	struct fp_target *t = bpf_map_lookup_elem(&ngm_fwd, &k);
	if (!t)
		return TC_ACT_OK;
	__u32 zero = 0;
	struct fp_control *ctl = bpf_map_lookup_elem(&ngm_ctl, &zero);
	if (!ctl)
		return TC_ACT_OK;
	__u64 now = bpf_ktime_get_ns();
	__u8 pt = payload[1];
	int rtcp = pt >= 192 && pt <= 223;
	/* A target of the other family cannot be reached by rewriting: user space installs none,
	 * and this keeps it so. */
	if (now > ctl->alive_until_ns || (rtcp && (t->flags & FP_RTP_ONLY)) ||
	    fp_is_mapped(t->daddr) == v6) {
		__sync_fetch_and_add(&ctl->passed, 1);
		return TC_ACT_OK;
	}
	fp_count(t, payload, bpf_ntohs(udp->len), rtcp, now);

	/* Rewrite as the sink socket would have sent it. */
	__u32 l3len;
	if (!v6) {
		__builtin_memcpy(&ip->saddr, t->saddr + 12, 4);
		__builtin_memcpy(&ip->daddr, t->daddr + 12, 4);
		ip->ttl = 64;
		ip->tos = t->tos;
		ip->check = 0;
		ip->check = ip_checksum(ip);
		l3len = sizeof(struct iphdr);
	} else {
		__builtin_memcpy(&ip6->saddr, t->saddr, 16);
		__builtin_memcpy(&ip6->daddr, t->daddr, 16);
		ip6->hop_limit = 64;
		/* The traffic class straddles the first two bytes. */
		ip6->priority = t->tos >> 4;
		ip6->flow_lbl[0] = (ip6->flow_lbl[0] & 0x0f) | (__u8)(t->tos << 4);
		l3len = sizeof(struct ipv6hdr);
	}
	udp->source = t->sport;
	udp->dest = t->dport;

	/* The UDP checksum: addresses are in the pseudo header, ports in the datagram; the
	 * helper keeps a zero (no checksum, IPv4 only) checksum zero unless mangled. */
	__u32 ifindex = t->ifindex;
	__u32 off = sizeof(struct ethhdr) + l3len + offsetof(struct udphdr, check);
	__u16 new_sport = t->sport, new_dport = t->dport;
	fp_csum_addr(skb, off, k.saddr, t->saddr);
	fp_csum_addr(skb, off, k.daddr, t->daddr);
	bpf_l4_csum_replace(skb, off, k.sport, new_sport, BPF_F_MARK_MANGLED_0 | 2);
	bpf_l4_csum_replace(skb, off, k.dport, new_dport, BPF_F_MARK_MANGLED_0 | 2);
	if (!ifindex)
		return TC_ACT_OK;
	return bpf_redirect_neigh(ifindex, 0, 0, 0);
}

char _license[] SEC("license") = "GPL";
