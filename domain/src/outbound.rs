//! Where outbound webhooks may go. A channel's `outbound_url` is chosen by an organization's
//! admin, and the server POSTs to it: pointed at the operator's own network (loopback, a
//! private range, a cloud metadata address) it would make the server a way in. So the
//! public internet is allowed, the ranges below are not, and the operator can allow more
//! (`SWITCHBOARD_OUTBOUND_ALLOW`, for a provider bridge on the same network).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;

/// The address ranges outbound webhooks may reach besides the public internet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    allowed: Vec<IpNet>,
}

impl OutboundPolicy {
    /// Only the public internet.
    pub fn public_only() -> OutboundPolicy {
        OutboundPolicy::default()
    }

    /// The public internet and `allowed`.
    pub fn allowing(allowed: Vec<IpNet>) -> OutboundPolicy {
        OutboundPolicy { allowed }
    }

    /// Whether a webhook may connect to `address`.
    pub fn permits(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        !is_internal(address) || self.allowed.iter().any(|net| net.contains(&address))
    }

    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }
}

/// `SWITCHBOARD_OUTBOUND_ALLOW`: ranges (`10.1.0.0/16`) or single addresses (`127.0.0.1`,
/// `::1`), separated by commas or spaces; empty allows nothing more.
impl FromStr for OutboundPolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<OutboundPolicy, String> {
        let allowed = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<IpNet>()
                    .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| match net {
                        IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
                            // ::ffff:10.0.0.0/104 is 10.0.0.0/8: keep one form.
                            Some(v4) if v6.prefix_len() >= 96 => {
                                IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).unwrap_or(net)
                            }
                            _ => net,
                        },
                        net => net,
                    })
                    .map_err(|_| format!("{part:?} is not an address or a range like 10.0.0.0/8"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(OutboundPolicy { allowed })
    }
}

impl fmt::Display for OutboundPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.allowed.iter().map(IpNet::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) is that IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Not the public internet: loopback, private, shared (carrier NAT), link-local (and with it
/// the 169.254.169.254 metadata service), unspecified, broadcast, multicast, documentation,
/// benchmarking and reserved ranges; for IPv6 also unique-local (fd00:ec2::254, another
/// metadata address, is one), site-local, and NAT64 or 6to4 forms of an internal IPv4 address.
fn is_internal(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240
}

fn is_internal_v6(v6: Ipv6Addr) -> bool {
    let segments = v6.segments();
    let embedded_v4 = |high: u16, low: u16| {
        Ipv4Addr::new((high >> 8) as u8, high as u8, (low >> 8) as u8, low as u8)
    };
    v6.is_loopback()
        || v6.is_unspecified()
        || v6.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] & 0xffc0) == 0xfec0
        || (segments[0] == 0x2001 && segments[1] == 0x0db8)
        // IPv4-compatible (::a.b.c.d, deprecated)
        || (segments[..6].iter().all(|s| *s == 0) && is_internal_v4(embedded_v4(segments[6], segments[7])))
        // NAT64 (64:ff9b::/96)
        || (segments[0] == 0x64
            && segments[1] == 0xff9b
            && segments[2..6].iter().all(|s| *s == 0)
            && is_internal_v4(embedded_v4(segments[6], segments[7])))
        // 6to4 (2002::/16) of an internal IPv4 address
        || (segments[0] == 0x2002 && is_internal_v4(embedded_v4(segments[1], segments[2])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_public_internet_is_permitted() {
        let policy = OutboundPolicy::public_only();
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "100.128.0.1",
            "172.32.0.1",
            "::ffff:8.8.8.8",
        ] {
            assert!(policy.permits(ip(public)), "{public} refused");
        }
    }

    #[test]
    fn internal_and_metadata_addresses_are_refused() {
        let policy = OutboundPolicy::public_only();
        for internal in [
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "240.0.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "64:ff9b::10.0.0.1",
            "2002:7f00:1::1",
        ] {
            assert!(!policy.permits(ip(internal)), "{internal} permitted");
        }
    }

    #[test]
    fn the_operator_can_allow_ranges_and_addresses() {
        let policy: OutboundPolicy = "10.1.0.0/16, 127.0.0.1 ::1".parse().unwrap();
        assert!(policy.permits(ip("10.1.2.3")));
        assert!(!policy.permits(ip("10.2.0.1")));
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(policy.permits(ip("::ffff:127.0.0.1")));
        assert!(!policy.permits(ip("127.0.0.2")));
        assert!(policy.permits(ip("::1")));
        assert!(!policy.permits(ip("169.254.169.254")));
        let mapped: OutboundPolicy = "::ffff:10.0.0.0/104".parse().unwrap();
        assert!(mapped.permits(ip("10.9.9.9")));
        assert_eq!(
            "".parse::<OutboundPolicy>().unwrap(),
            OutboundPolicy::public_only()
        );
        assert!("10.0.0.0/33".parse::<OutboundPolicy>().is_err());
        assert!("intranet".parse::<OutboundPolicy>().is_err());
    }
}
