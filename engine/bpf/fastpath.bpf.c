// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ngmedia's kernel fast path: forwards the UDP datagrams of established plain RTP streams
 * (and SRTP passed through unchanged) in the kernel, without waking the engine. Attached at
 * TC ingress, which every interface has (veth, loopback, virtual and physical NICs).
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
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* What a packet must carry to be matched: the party's address and the engine's socket. All
 * in network byte order. */
struct fp_key {
	__u32 saddr;
	__u32 daddr;
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
	__u32 saddr; /* the sink socket's address */
	__u32 daddr; /* the sink's party */
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

/* RFC 1624 incremental update: replace `from` by `to` (both 32-bit, network order) in a
 * checksum. */
static __always_inline __u16 csum_replace4(__u16 check, __u32 from, __u32 to)
{
	__u32 sum = (__u16)~check;
	sum += (__u16)~(from & 0xffff) + (__u16)~(from >> 16);
	sum += (to & 0xffff) + (to >> 16);
	return csum_fold(sum);
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

enum fp_action { FP_PASS, FP_LOCAL, FP_REDIRECT };

/* Match, count and rewrite one frame in place (`data`..`data_end`). `xdp`: the checksum is
 * complete (not CHECKSUM_PARTIAL), so the UDP checksum is updated here too; in TC the
 * caller does it with the skb-aware helper. Returns what to do with the frame and, for a
 * redirect, the interface. */
static __always_inline enum fp_action fp_handle(void *data, void *data_end, int xdp, __u32 *ifindex,
						struct fp_key *k, struct fp_target **out)
{
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return FP_PASS;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->ihl != 5 || ip->version != 4 ||
	    ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
		return FP_PASS;
	struct udphdr *udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return FP_PASS;
	__u8 *payload = (void *)(udp + 1);
	/* RTP/RTCP version 2 and a full RTP header; STUN, DTLS and the rest go up. */
	if ((void *)(payload + 12) > data_end || (payload[0] & 0xc0) != 0x80)
		return FP_PASS;

	k->saddr = ip->saddr;
	k->daddr = ip->daddr;
	k->sport = udp->source;
	k->dport = udp->dest;
	struct fp_target *t = bpf_map_lookup_elem(&ngm_fwd, k);
	if (!t)
		return FP_PASS;
	__u32 zero = 0;
	struct fp_control *ctl = bpf_map_lookup_elem(&ngm_ctl, &zero);
	if (!ctl)
		return FP_PASS;
	__u64 now = bpf_ktime_get_ns();
	__u8 pt = payload[1];
	int rtcp = pt >= 192 && pt <= 223;
	if (now > ctl->alive_until_ns || (rtcp && (t->flags & FP_RTP_ONLY))) {
		__sync_fetch_and_add(&ctl->passed, 1);
		return FP_PASS;
	}

	__u16 ulen = bpf_ntohs(udp->len);
	__sync_fetch_and_add(&t->c.packets, 1);
	__sync_fetch_and_add(&t->c.bytes, ulen >= 8 ? ulen - 8 : 0);
	t->c.last_ns = now;
	if (!rtcp) {
		__u16 seq = ((__u16)payload[2] << 8) | payload[3];
		__u32 ssrc = ((__u32)payload[8] << 24) | ((__u32)payload[9] << 16) |
			     ((__u32)payload[10] << 8) | payload[11];
		__u32 ts = ((__u32)payload[4] << 24) | ((__u32)payload[5] << 16) |
			   ((__u32)payload[6] << 8) | payload[7];
		__u32 ext = t->c.ext_seq;
		if (t->c.seq_packets == 0 || t->c.ssrc != ssrc) {
			/* First packet of a source: restart from its sequence number. */
			t->c.ssrc = ssrc;
			t->c.ext_seq = seq;
			t->c.last_ts = ts;
			t->c.seq_packets = 1;
		} else {
			/* RFC 3550 A.1: in order (possibly after a gap) when ahead by less than
			 * MAX_DROPOUT; anything else is late or a jump user space sorts out. */
			__u16 delta = seq - (__u16)ext;
			if (delta != 0 && delta < 3000) {
				t->c.ext_seq = ext + delta;
				t->c.last_ts = ts;
			}
			t->c.seq_packets += 1;
		}
	}

	/* Rewrite as the sink socket would have sent it. */
	__u32 old_saddr = ip->saddr, old_daddr = ip->daddr;
	__u32 old_ports = ((__u32)udp->dest << 16) | udp->source;
	__u32 new_ports = ((__u32)t->dport << 16) | t->sport;
	ip->saddr = t->saddr;
	ip->daddr = t->daddr;
	ip->ttl = 64;
	ip->tos = t->tos;
	ip->check = 0;
	ip->check = ip_checksum(ip);
	udp->source = t->sport;
	udp->dest = t->dport;
	if (xdp && udp->check) {
		__u16 c = udp->check;
		c = csum_replace4(c, old_saddr, t->saddr);
		c = csum_replace4(c, old_daddr, t->daddr);
		c = csum_replace4(c, old_ports, new_ports);
		udp->check = c ? c : 0xffff;
	}
	*out = t;
	*ifindex = t->ifindex;
	return t->ifindex ? FP_REDIRECT : FP_LOCAL;
}

SEC("classifier")
int ngm_tc(struct __sk_buff *skb)
{
	/* Segmented (GSO/GRO) datagrams are left to the stack. */
	if (skb->gso_segs > 1)
		return TC_ACT_OK;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct fp_key k;
	struct fp_target *t = 0;
	__u32 ifindex = 0;
	/* Keep the original tuple for the checksum update below. */
	struct iphdr *ip0 = data + sizeof(struct ethhdr);
	if ((void *)(ip0 + 1) > data_end)
		return TC_ACT_OK;
	enum fp_action a = fp_handle(data, data_end, 0, &ifindex, &k, &t);
	if (a == FP_PASS || !t)
		return TC_ACT_OK;
	/* UDP checksum: addresses are in the pseudo header (updated also for
	 * CHECKSUM_PARTIAL), ports in the datagram; the helper handles both and keeps a zero
	 * (no checksum) checksum zero unless mangled. */
	__u32 off = sizeof(struct ethhdr) + sizeof(struct iphdr) + offsetof(struct udphdr, check);
	bpf_l4_csum_replace(skb, off, k.saddr, t->saddr, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4);
	bpf_l4_csum_replace(skb, off, k.daddr, t->daddr, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4);
	bpf_l4_csum_replace(skb, off, k.sport, t->sport, BPF_F_MARK_MANGLED_0 | 2);
	bpf_l4_csum_replace(skb, off, k.dport, t->dport, BPF_F_MARK_MANGLED_0 | 2);
	if (a == FP_LOCAL)
		return TC_ACT_OK;
	return bpf_redirect_neigh(ifindex, 0, 0, 0);
}

char _license[] SEC("license") = "GPL";
