//! Webhooks: the rules of delivering a client's events to an endpoint it registered.
//!
//! This module decides and never sends: it signs and verifies bodies, filters event kinds,
//! spaces retries and says when an endpoint is suspended, and tells public addresses from
//! private ones. The shell resolves names, posts bodies and stores the outcome.
//!
//! # Signature
//! Every delivery carries `X-Karya-Signature: t=<unix seconds>,v1=<hex>` where `<hex>` is
//! HMAC-SHA256 keyed with the endpoint's secret over the bytes `"<t>.<body>"`. A receiver
//! recomputes it with [`verify`] (which also refuses old timestamps, so a captured delivery
//! cannot be replayed much later) and dedupes on `X-Karya-Delivery: <webhook id>:<seq>`:
//! delivery is at least once, in chain order per endpoint.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::id::WebhookId;

/// Header naming the delivery: `<webhook id>:<seq>`, the same on every retry of one event.
pub const DELIVERY_HEADER: &str = "x-karya-delivery";
/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-karya-signature";
/// Header carrying the event kind, so a receiver can route before parsing the body.
pub const EVENT_HEADER: &str = "x-karya-event";

/// Delay before the first retry; each further failure doubles it.
pub const RETRY_DELAY_BASE: Duration = Duration::from_secs(10);
/// Longest delay between two attempts: a receiver that is down for a day is retried hourly,
/// not once a day.
pub const RETRY_DELAY_MAX: Duration = Duration::from_secs(3600);
/// Consecutive failed attempts after which an endpoint is suspended until someone resumes it:
/// with the schedule above that is about four hours of trying, long enough to ride out an
/// outage and short enough that a dead endpoint stops costing requests the same day.
pub const FAILURES_MAX: u32 = 12;
/// Most event-kind prefixes one endpoint may filter on.
pub const FILTERS_MAX: usize = 16;
/// Longest event-kind prefix: kinds are short `<entity>.<verb>` codes.
pub const FILTER_LEN_MAX: usize = 64;
/// How old a signature's timestamp may be before [`verify`] refuses it.
pub const SIGNATURE_TOLERANCE: Duration = Duration::from_secs(300);

/// An endpoint's signing secret. It never prints: `Debug` shows only that it exists.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub fn new(secret: String) -> WebhookSecret {
        WebhookSecret(secret)
    }

    /// The secret itself, for signing and for showing once at registration.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// Where an endpoint stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookState {
    /// Deliveries flow.
    Active,
    /// Too many consecutive failures; nothing is sent until the endpoint is resumed.
    Suspended,
    /// The client removed it; kept for the record of attempts.
    Removed,
}

impl WebhookState {
    pub fn code(self) -> &'static str {
        match self {
            WebhookState::Active => "active",
            WebhookState::Suspended => "suspended",
            WebhookState::Removed => "removed",
        }
    }

    pub fn parse(text: &str) -> Option<WebhookState> {
        [
            WebhookState::Active,
            WebhookState::Suspended,
            WebhookState::Removed,
        ]
        .into_iter()
        .find(|state| state.code() == text)
    }
}

/// Which event kinds an endpoint receives: kinds starting with one of the prefixes
/// (`work_item.`), or every kind when a prefix is `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter(Vec<String>);

/// A filter that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("events must name at least one event kind prefix, such as \"work_item.\"")]
    Empty,
    #[error("events may name at most {FILTERS_MAX} prefixes")]
    TooMany,
    #[error("event kind prefix {0:?} is not a prefix of an event kind: use lowercase letters, '_' and '.', at most {FILTER_LEN_MAX} characters, or \"*\"")]
    Malformed(String),
}

impl EventFilter {
    pub fn parse(prefixes: &[String]) -> Result<EventFilter, FilterError> {
        if prefixes.is_empty() {
            return Err(FilterError::Empty);
        }
        if prefixes.len() > FILTERS_MAX {
            return Err(FilterError::TooMany);
        }
        for prefix in prefixes {
            let well_formed = prefix == "*"
                || (!prefix.is_empty()
                    && prefix.len() <= FILTER_LEN_MAX
                    && prefix
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.'));
            if !well_formed {
                return Err(FilterError::Malformed(
                    prefix.chars().take(FILTER_LEN_MAX).collect(),
                ));
            }
        }
        let mut prefixes = prefixes.to_vec();
        prefixes.sort();
        prefixes.dedup();
        Ok(EventFilter(prefixes))
    }

    pub fn prefixes(&self) -> &[String] {
        &self.0
    }

    pub fn matches(&self, kind: &str) -> bool {
        self.0
            .iter()
            .any(|prefix| prefix == "*" || kind.starts_with(prefix.as_str()))
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try the same event again after this delay.
    Retry(Duration),
    /// Stop: the endpoint has failed [`FAILURES_MAX`] times in a row.
    Suspend,
}

/// Decides the next step once an endpoint has failed `failures` times in a row (this one
/// included). `random` is any random number; it spreads retries of many endpoints apart.
pub fn after_failure(failures: u32, random: u64) -> AfterFailure {
    if failures >= FAILURES_MAX {
        return AfterFailure::Suspend;
    }
    AfterFailure::Retry(retry_delay(failures, random))
}

/// The delay after the `failures`-th consecutive failure (1 for the first): exponential from
/// [`RETRY_DELAY_BASE`], capped at [`RETRY_DELAY_MAX`], with "equal jitter": a random point in
/// the upper half of the step. Below the cap each delay is at least the previous step's full
/// length, so the schedule never shrinks however the dice fall; at the cap, retries of many
/// endpoints still spread over half an hour instead of arriving together.
pub fn retry_delay(failures: u32, random: u64) -> Duration {
    let exponent = failures.saturating_sub(1).min(30);
    let step_ms = (RETRY_DELAY_BASE.as_millis() as u64)
        .saturating_mul(1u64 << exponent)
        .min(RETRY_DELAY_MAX.as_millis() as u64);
    let half_ms = step_ms / 2;
    Duration::from_millis(step_ms - half_ms + random % (half_ms + 1))
}

/// The delivery id a receiver dedupes on: one event of one endpoint, whatever the attempt.
pub fn delivery_id(webhook_id: WebhookId, seq: u64) -> String {
    format!("{webhook_id}:{seq}")
}

/// HMAC-SHA256 of `message` under `key`, as lowercase hex.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("hmac takes keys of any length");
    mac.update(message);
    hex(&mac.finalize().into_bytes())
}

/// The `X-Karya-Signature` value for `body` sent at `timestamp_s` (unix seconds).
pub fn signature_header(secret: &WebhookSecret, timestamp_s: i64, body: &[u8]) -> String {
    let mut message = format!("{timestamp_s}.").into_bytes();
    message.extend_from_slice(body);
    format!(
        "t={timestamp_s},v1={}",
        hmac_sha256_hex(secret.expose().as_bytes(), &message)
    )
}

/// Why a receiver refuses a delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("signature header is not of the form t=<seconds>,v1=<hex>")]
    Malformed,
    #[error("signature timestamp is too far from now")]
    Stale,
    #[error("signature does not match the body")]
    Mismatch,
}

/// Checks a delivery as a receiver would: the header's timestamp is within
/// [`SIGNATURE_TOLERANCE`] of `now_s` and one of its `v1` signatures matches the body
/// (compared in constant time). Several `v1` values are accepted so a secret can be rotated.
pub fn verify(
    secret: &WebhookSecret,
    header: &str,
    body: &[u8],
    now_s: i64,
) -> Result<(), VerifyError> {
    let mut timestamp_s: Option<i64> = None;
    let mut signatures: Vec<&str> = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => {
                timestamp_s = Some(value.parse().map_err(|_| VerifyError::Malformed)?)
            }
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    let Some(timestamp_s) = timestamp_s else {
        return Err(VerifyError::Malformed);
    };
    if signatures.is_empty() {
        return Err(VerifyError::Malformed);
    }
    if timestamp_s.abs_diff(now_s) > SIGNATURE_TOLERANCE.as_secs() {
        return Err(VerifyError::Stale);
    }
    let mut message = format!("{timestamp_s}.").into_bytes();
    message.extend_from_slice(body);
    for signature in signatures {
        let Some(expected) = unhex(signature) else {
            continue;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
            .expect("hmac takes keys of any length");
        mac.update(&message);
        if mac.verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::Mismatch)
}

/// Whether deliveries may go to this address: false for loopback, private, link-local,
/// shared (carrier-grade NAT), documentation, multicast, broadcast, unspecified and reserved
/// ranges, so that a registered URL cannot reach into the firm's own network.
pub fn is_public_address(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(address: Ipv4Addr) -> bool {
    let [a, b, c, _] = address.octets();
    let reserved = a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space
        || (a == 192 && b == 0 && c == 0) // protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240; // reserved and broadcast
    !(address.is_private()
        || address.is_loopback()
        || address.is_link_local()
        || address.is_multicast()
        || address.is_documentation()
        || address.is_unspecified()
        || reserved)
}

fn is_public_v6(address: Ipv6Addr) -> bool {
    let first = address.segments()[0];
    let unique_local = first & 0xfe00 == 0xfc00;
    let link_local = first & 0xffc0 == 0xfe80;
    let documentation = first == 0x2001 && address.segments()[1] == 0x0db8;
    let nat64 = first == 0x0064 && address.segments()[1] == 0xff9b;
    !(address.is_loopback()
        || address.is_unspecified()
        || address.is_multicast()
        || unique_local
        || link_local
        || documentation
        || nat64)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    text
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|idx| u8::from_str_radix(text.get(idx..idx + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signature_matches_a_known_vector_and_verifies() {
        // Computed independently: printf '%s' '1790000000.<body>' | openssl dgst -sha256 -hmac <secret>
        let secret = WebhookSecret::new("whsec_0123456789abcdef".into());
        let body = br#"{"kind":"work_item.created","seq":7}"#;
        let header = signature_header(&secret, 1_790_000_000, body);
        assert_eq!(
            header,
            "t=1790000000,v1=3a17162be43c25500297b643ad0193e5620a51967b58771ce10505ee326b36cd"
        );
        assert_eq!(verify(&secret, &header, body, 1_790_000_100), Ok(()));
    }

    #[test]
    fn verification_refuses_what_it_should() {
        let secret = WebhookSecret::new("whsec_a".into());
        let other = WebhookSecret::new("whsec_b".into());
        let body = b"{}";
        let header = signature_header(&secret, 1_000, body);
        let check = |secret: &WebhookSecret, header: &str, body: &[u8], now_s: i64| {
            verify(secret, header, body, now_s)
        };
        assert_eq!(check(&secret, &header, body, 1_000), Ok(()));
        assert_eq!(
            check(&other, &header, body, 1_000),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            check(&secret, &header, b"{ }", 1_000),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            check(&secret, &header, body, 1_000 + 301),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            check(&secret, "v1=00", body, 1_000),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            check(&secret, "t=1000", body, 1_000),
            Err(VerifyError::Malformed)
        );
        // A rotated secret: the old signature beside the new one still verifies.
        let rotated = format!("{header},v1={}", &header[header.len() - 64..]);
        assert_eq!(check(&secret, &rotated, body, 1_000), Ok(()));
        assert_eq!(format!("{secret:?}"), "WebhookSecret(***)");
    }

    #[test]
    fn backoff_schedule_grows_caps_and_suspends() {
        // (failures, random) -> delay in seconds; random 0 is the low end of the jitter.
        let check = |failures: u32, random: u64, expect_ms: u64| {
            assert_eq!(
                retry_delay(failures, random),
                Duration::from_millis(expect_ms),
                "failures {failures}, random {random}"
            );
        };
        check(1, 0, 5_000);
        check(1, 5_000, 10_000);
        check(1, 5_001, 5_000);
        check(2, 0, 10_000);
        check(3, 0, 20_000);
        check(9, 0, 1_280_000);
        check(10, 0, 1_800_000);
        check(11, 1_800_000, 3_600_000);
        check(40, 0, 1_800_000);
        check(u32::MAX, 0, 1_800_000);

        // Below the cap, whatever the jitter, a delay is never shorter than the longest
        // previous one; at the cap, delays stay in its upper half. The longest delay of a step
        // is drawn with random = half the step.
        let longest =
            |failures: u32| retry_delay(failures, retry_delay(failures, 0).as_millis() as u64);
        for failures in 2..=FAILURES_MAX {
            assert_eq!(longest(failures - 1), retry_delay(failures - 1, 0) * 2);
            assert!(longest(failures) <= RETRY_DELAY_MAX);
            if longest(failures) < RETRY_DELAY_MAX {
                assert!(
                    retry_delay(failures, 0) >= longest(failures - 1),
                    "failures {failures}"
                );
            } else {
                assert!(retry_delay(failures, 0) >= RETRY_DELAY_MAX / 2);
            }
        }
        assert!(matches!(after_failure(1, 7), AfterFailure::Retry(_)));
        assert!(matches!(
            after_failure(FAILURES_MAX - 1, 7),
            AfterFailure::Retry(_)
        ));
        assert_eq!(after_failure(FAILURES_MAX, 7), AfterFailure::Suspend);
    }

    #[test]
    fn filters_parse_and_match() {
        let filter = |prefixes: &[&str]| {
            EventFilter::parse(&prefixes.iter().map(|p| p.to_string()).collect::<Vec<_>>())
        };
        let work = filter(&["work_item.", "task.claimed"]).unwrap();
        assert!(work.matches("work_item.created"));
        assert!(work.matches("task.claimed"));
        assert!(!work.matches("task.created"));
        assert!(!work.matches("webhook.registered"));
        assert!(filter(&["*"]).unwrap().matches("anything.at_all"));
        assert_eq!(filter(&[]), Err(FilterError::Empty));
        assert!(matches!(
            filter(&["Work_Item."]),
            Err(FilterError::Malformed(_))
        ));
        assert!(matches!(filter(&[""]), Err(FilterError::Malformed(_))));
        assert_eq!(
            filter(&["task.", "task."]).unwrap().prefixes(),
            &["task.".to_string()]
        );
        let many: Vec<String> = (0..=FILTERS_MAX).map(|_| "task.".to_string()).collect();
        assert_eq!(EventFilter::parse(&many), Err(FilterError::TooMany));
    }

    #[test]
    fn only_public_addresses_are_public() {
        let check = |text: &str, public: bool| {
            let address: IpAddr = text.parse().unwrap();
            assert_eq!(is_public_address(address), public, "{text}");
        };
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.10",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "fc00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "64:ff9b::a00:1",
        ] {
            check(private, false);
        }
        for public in ["8.8.8.8", "172.32.0.1", "93.184.216.34", "2606:4700::1111"] {
            check(public, true);
        }
    }
}
