//! Webhooks as rules, without I/O: signing (Standard Webhooks 1.0), the
//! retry schedule with its jitter, which addresses a delivery may go to,
//! what an endpoint URL must look like, and which event types an endpoint
//! asked for.
//!
//! The address rules are written out here rather than taken from a crate:
//! `std`'s `IpAddr::is_global` is still unstable, and the crates that
//! classify addresses either pull in a resolver of their own or do not
//! cover the ranges a server-side request must avoid (shared address
//! space, NAT64, IPv4-mapped IPv6). The list is short and table-tested.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::event::EventType;

/// The prefix of an endpoint's secret, as the specification writes it.
pub const SECRET_PREFIX: &str = "whsec_";

/// An endpoint's signing secret: `whsec_` then base64 of 32 random bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// A secret of these (random) bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes.to_vec())
    }

    /// Reads `whsec_…` (as stored and as shown to the client).
    pub fn parse(s: &str) -> Option<Self> {
        let key = STANDARD.decode(s.strip_prefix(SECRET_PREFIX)?).ok()?;
        (!key.is_empty()).then_some(Self(key))
    }

    /// The `whsec_…` spelling.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The signature of one message: `v1,` then base64 of HMAC-SHA256 over
    /// `id.timestamp.body`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        #[allow(clippy::expect_used)] // HMAC takes a key of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header: one signature per secret (the current
/// one first; during a rotation's grace period, the previous one too),
/// separated by spaces.
pub fn signature_header(secrets: &[&Secret], id: &str, timestamp: i64, body: &str) -> String {
    secrets.iter().map(|s| s.sign(id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// When the next attempt is due after a failed one, or `None` when the
/// schedule is spent (the delivery has failed). `step` is the number of
/// failed attempts so far (1 after the first); `jitter` a random number
/// in `[0, 1)`. Each wait is its schedule entry, stretched or shrunk by up
/// to a tenth, so that receivers coming back up are not met by every
/// retry at once.
pub fn next_wait(schedule: &[Duration], step: usize, jitter: f64) -> Option<Duration> {
    let base = *schedule.get(step.checked_sub(1)?)?;
    let factor = 0.9 + 0.2 * jitter.clamp(0.0, 1.0);
    Some(base.mul_f64(factor))
}

/// Why an address or a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    /// Not a URL.
    #[error("not a valid URL")]
    Malformed,
    /// Not https (http only where private addresses are allowed).
    #[error("must be https")]
    NotHttps,
    /// User name or password in the URL.
    #[error("must not carry a user name or password")]
    Credentials,
    /// A fragment means nothing to a server.
    #[error("must not have a fragment")]
    Fragment,
    /// No host.
    #[error("must name a host")]
    NoHost,
    /// Too long to store.
    #[error("must be at most {0} characters")]
    TooLong(usize),
    /// The host is, or resolves to, an address that is not public.
    #[error("{0} is not a public address")]
    Address(IpAddr),
}

/// The longest URL kept.
pub const MAX_URL_LEN: usize = 2048;

/// Checks the form of an endpoint URL (not where its name resolves).
/// `allow_private` also allows http (for development and tests).
pub fn check_url(raw: &str, allow_private: bool) -> Result<url::Url, UrlRefusal> {
    if raw.len() > MAX_URL_LEN {
        return Err(UrlRefusal::TooLong(MAX_URL_LEN));
    }
    let url = url::Url::parse(raw).map_err(|_| UrlRefusal::Malformed)?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(UrlRefusal::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefusal::Credentials);
    }
    if url.fragment().is_some() {
        return Err(UrlRefusal::Fragment);
    }
    match url.host() {
        None => return Err(UrlRefusal::NoHost),
        Some(url::Host::Ipv4(ip)) => check_address(IpAddr::V4(ip), allow_private)?,
        Some(url::Host::Ipv6(ip)) => check_address(IpAddr::V6(ip), allow_private)?,
        Some(url::Host::Domain(_)) => {}
    }
    Ok(url)
}

/// Whether a delivery may connect to `ip`: only public unicast addresses,
/// unless private ones are allowed.
pub fn check_address(ip: IpAddr, allow_private: bool) -> Result<(), UrlRefusal> {
    if allow_private || is_public(ip) { Ok(()) } else { Err(UrlRefusal::Address(ip)) }
}

/// Public unicast: not unspecified, loopback, private, shared (CGNAT),
/// link-local (which holds the cloud metadata address 169.254.169.254),
/// documentation, benchmarking, reserved, broadcast or multicast; for IPv6
/// also not unique-local (fd00:ec2::254 is a metadata address), NAT64, or
/// an IPv4 address in disguise that is not public.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 64:ff9b::/96 and /48
                || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard-only
                || (s[0] == 0x2002) // 6to4: wraps an IPv4 address
                || (s[0..6] == [0, 0, 0, 0, 0, 0])) // IPv4-compatible (deprecated)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network"
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || (a == 100 && (64..128).contains(&b)) // shared address space
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || ip.is_documentation()
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 224) // multicast, reserved, broadcast
}

/// The event types an endpoint asked for, as stored: their spellings
/// separated by commas; empty for every type.
pub fn encode_types(types: &[EventType]) -> String {
    let mut all: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
    all.sort_unstable();
    all.dedup();
    all.join(",")
}

/// The stored event types read back (unknown spellings are dropped).
pub fn decode_types(stored: &str) -> Vec<EventType> {
    stored.split(',').filter_map(EventType::parse).collect()
}

/// Whether an endpoint that asked for `types` (empty: all) wants `kind`.
pub fn wants(types: &[EventType], kind: EventType) -> bool {
    types.is_empty() || types.contains(&kind)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_specifications_test_vector() {
        // From the Standard Webhooks specification and its reference
        // libraries.
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, r#"{"test": 2432232314}"#),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(secret.expose(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    }

    #[test]
    fn a_rotation_sends_both_signatures_new_first() {
        let new = Secret::from_bytes([1; 32]);
        let old = Secret::from_bytes([2; 32]);
        let header = signature_header(&[&new, &old], "id", 5, "{}");
        assert_eq!(header, format!("{} {}", new.sign("id", 5, "{}"), old.sign("id", 5, "{}")));
        assert_ne!(new.sign("id", 5, "{}"), old.sign("id", 5, "{}"));
        assert_ne!(new.sign("id", 5, "{}"), new.sign("id", 6, "{}"));
    }

    #[test]
    fn secrets_read_back_and_nothing_else_does() {
        let s = Secret::from_bytes([7; 32]);
        assert_eq!(Secret::parse(&s.expose()), Some(s));
        for bad in ["", "whsec_", "whsec_!!", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
            assert_eq!(Secret::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_schedule_is_followed_with_jitter_then_spent() {
        let schedule = [Duration::from_secs(5), Duration::from_secs(300)];
        #[track_caller]
        fn check(schedule: &[Duration], step: usize, jitter: f64, expected: Option<u64>) {
            let got = next_wait(schedule, step, jitter).map(|d| d.as_millis() as u64);
            assert_eq!(got, expected, "step {step}, jitter {jitter}");
        }
        check(&schedule, 0, 0.5, None);
        check(&schedule, 1, 0.5, Some(5000));
        check(&schedule, 1, 0.0, Some(4500));
        check(&schedule, 1, 0.999_999_9, Some(5499));
        check(&schedule, 2, 0.5, Some(300_000));
        check(&schedule, 3, 0.5, None);
        check(&[], 1, 0.5, None);
    }

    #[track_caller]
    fn check_ip(ip: &str, public: bool) {
        let ip: IpAddr = ip.parse().unwrap();
        assert_eq!(is_public(ip), public, "{ip}");
        assert_eq!(check_address(ip, true), Ok(()), "{ip} when allowed");
    }

    #[test]
    fn only_public_unicast_addresses_are_public() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.0.9",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.1",
            "198.18.0.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "100::1",
        ] {
            check_ip(ip, false);
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.0.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            check_ip(ip, true);
        }
    }

    #[track_caller]
    fn check_form(raw: &str, allow_private: bool, expected: Result<(), UrlRefusal>) {
        assert_eq!(check_url(raw, allow_private).map(|_| ()), expected, "{raw}");
    }

    #[test]
    fn endpoint_urls_are_https_to_a_public_host() {
        let ip = |s: &str| UrlRefusal::Address(s.parse().unwrap());
        check_form("https://hooks.example.org/escalations", false, Ok(()));
        check_form("https://1.1.1.1/x", false, Ok(()));
        check_form("http://hooks.example.org/", false, Err(UrlRefusal::NotHttps));
        check_form("http://127.0.0.1/", false, Err(UrlRefusal::NotHttps));
        check_form("https://127.0.0.1/", false, Err(ip("127.0.0.1")));
        check_form("https://169.254.169.254/latest", false, Err(ip("169.254.169.254")));
        check_form("https://[::1]:8443/", false, Err(ip("::1")));
        check_form("https://10.1.2.3/", false, Err(ip("10.1.2.3")));
        check_form("ftp://hooks.example.org/", false, Err(UrlRefusal::NotHttps));
        check_form("https://u:p@hooks.example.org/", false, Err(UrlRefusal::Credentials));
        check_form("https://hooks.example.org/#x", false, Err(UrlRefusal::Fragment));
        check_form("not a url", false, Err(UrlRefusal::Malformed));
        check_form(
            &format!("https://h.example/{}", "a".repeat(2048)),
            false,
            Err(UrlRefusal::TooLong(2048)),
        );
        check_form("http://127.0.0.1:9000/hook", true, Ok(()));
        check_form("ftp://127.0.0.1/", true, Err(UrlRefusal::NotHttps));
    }

    #[test]
    fn endpoints_get_the_types_they_asked_for() {
        let stored =
            encode_types(&[EventType::CaseResolved, EventType::CaseRaised, EventType::CaseRaised]);
        assert_eq!(stored, "CASE_RAISED,CASE_RESOLVED");
        let types = decode_types(&stored);
        assert!(wants(&types, EventType::CaseRaised));
        assert!(!wants(&types, EventType::RecordAdded));
        assert!(wants(&decode_types(&encode_types(&[])), EventType::RecordAdded));
    }
}
