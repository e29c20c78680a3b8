//! The per-client hash chain that makes the event log tamper-evident.
//!
//! Every client's events form one chain: event `n` stores the hash of event `n - 1`, and its own
//! hash covers that link together with every field of the event. Changing a byte of a stored
//! event, deleting one or swapping two breaks the chain at a place [`ChainVerifier`] names.
//! The chain head (the last sequence number and hash) is kept apart from the events, so that
//! cutting events off the end is caught as well.
//!
//! The hash input is a fixed, length-prefixed layout (see [`link`]), so two different events can
//! never produce the same bytes.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::id::ClientId;

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainHash([u8; 32]);

impl ChainHash {
    /// The link before a client's first event.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(64);
        for byte in self.0 {
            text.push(DIGITS[(byte >> 4) as usize] as char);
            text.push(DIGITS[(byte & 0xf) as usize] as char);
        }
        text
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed hash: expected 64 lower-case hex digits")]
pub struct ParseHashError;

impl FromStr for ChainHash {
    type Err = ParseHashError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        fn nibble(c: u8) -> Result<u8, ParseHashError> {
            match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                _ => Err(ParseHashError),
            }
        }
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return Err(ParseHashError);
        }
        let mut out = [0u8; 32];
        for (idx, pair) in bytes.chunks_exact(2).enumerate() {
            out[idx] = nibble(pair[0])? << 4 | nibble(pair[1])?;
        }
        Ok(ChainHash(out))
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", &self.to_hex()[..12])
    }
}

/// The fields of one event that its hash covers.
#[derive(Debug, Clone, Copy)]
pub struct EventFields<'a> {
    pub client_id: ClientId,
    /// Position in the client's chain, from 1.
    pub seq: u64,
    /// When it happened, in microseconds since the Unix epoch (the precision the store keeps).
    pub at_us: i64,
    pub kind: &'a str,
    pub entity_type: &'a str,
    pub entity_id: &'a str,
    /// The event's payload exactly as stored (JSON text).
    pub payload: &'a str,
}

/// The hash of an event, given the hash of the one before it.
pub fn link(prev: &ChainHash, event: &EventFields<'_>) -> ChainHash {
    let mut hasher = Sha256::new();
    hasher.update(b"karya-event-v1\0");
    hasher.update(prev.0);
    hasher.update(event.client_id.as_uuid().as_bytes());
    hasher.update(event.seq.to_be_bytes());
    hasher.update(event.at_us.to_be_bytes());
    for field in [
        event.kind,
        event.entity_type,
        event.entity_id,
        event.payload,
    ] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    ChainHash(hasher.finalize().into())
}

/// One stored event as read back for verification: its fields and the two hashes stored with it.
#[derive(Debug, Clone, Copy)]
pub struct StoredLink<'a> {
    pub fields: EventFields<'a>,
    pub prev_hash: &'a str,
    pub hash: &'a str,
}

/// Where and how a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chain of client {client_id} broken at event {seq}: {reason}")]
pub struct ChainBreak {
    pub client_id: ClientId,
    pub seq: u64,
    pub reason: BreakReason,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakReason {
    #[error(
        "expected event {expected} here, found event {found} (an event is missing or out of order)"
    )]
    SequenceGap { expected: u64, found: u64 },
    #[error("its link to the previous event does not match that event's hash")]
    PrevHashMismatch,
    #[error("its stored hash does not match its contents (the event was altered)")]
    HashMismatch,
    #[error("the chain head records {head_seq} events but the log ends at {last_seq} (events were cut off or the head altered)")]
    HeadMismatch { head_seq: u64, last_seq: u64 },
}

/// Walks one client's events in sequence order and reports the first break.
#[derive(Debug)]
pub struct ChainVerifier {
    client_id: ClientId,
    next_seq: u64,
    prev: ChainHash,
}

impl ChainVerifier {
    pub fn new(client_id: ClientId) -> ChainVerifier {
        ChainVerifier {
            client_id,
            next_seq: 1,
            prev: ChainHash::GENESIS,
        }
    }

    /// Checks the next event of the chain.
    pub fn check(&mut self, event: &StoredLink<'_>) -> Result<(), ChainBreak> {
        let seq = event.fields.seq;
        let fail = |reason| {
            Err(ChainBreak {
                client_id: self.client_id,
                seq,
                reason,
            })
        };
        if event.fields.client_id != self.client_id {
            // The reader hands over one client's events; another client's event here is a
            // reader bug, not a tampered log.
            panic!(
                "event of client {} in the chain of {}",
                event.fields.client_id, self.client_id
            );
        }
        if seq != self.next_seq {
            return fail(BreakReason::SequenceGap {
                expected: self.next_seq,
                found: seq,
            });
        }
        if event.prev_hash.parse::<ChainHash>().ok() != Some(self.prev) {
            return fail(BreakReason::PrevHashMismatch);
        }
        let hash = link(&self.prev, &event.fields);
        if event.hash.parse::<ChainHash>().ok() != Some(hash) {
            return fail(BreakReason::HashMismatch);
        }
        self.prev = hash;
        self.next_seq += 1;
        Ok(())
    }

    /// Ends the walk against the stored chain head; returns the number of events verified.
    pub fn finish(self, head_seq: u64, head_hash: &str) -> Result<u64, ChainBreak> {
        let last_seq = self.next_seq - 1;
        if head_seq != last_seq || head_hash.parse::<ChainHash>().ok() != Some(self.prev) {
            return Err(ChainBreak {
                client_id: self.client_id,
                seq: last_seq + 1,
                reason: BreakReason::HeadMismatch { head_seq, last_seq },
            });
        }
        Ok(last_seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "0192f0e4-5b1c-7d3e-9a41-2f6c8e1d0a7b";

    struct Owned {
        fields: (u64, i64, String, String),
        prev_hash: String,
        hash: String,
    }

    fn chain(n: u64) -> (ClientId, Vec<Owned>) {
        let client_id: ClientId = CLIENT.parse().unwrap();
        let mut prev = ChainHash::GENESIS;
        let mut out = Vec::new();
        for seq in 1..=n {
            let payload = format!("{{\"n\":{seq}}}");
            let fields = EventFields {
                client_id,
                seq,
                at_us: 1_700_000_000_000_000 + seq as i64,
                kind: "work_item.created",
                entity_type: "work_item",
                entity_id: "x",
                payload: &payload,
            };
            let hash = link(&prev, &fields);
            out.push(Owned {
                fields: (
                    seq,
                    fields.at_us,
                    "work_item.created".into(),
                    payload.clone(),
                ),
                prev_hash: prev.to_hex(),
                hash: hash.to_hex(),
            });
            prev = hash;
        }
        (client_id, out)
    }

    fn verify(client_id: ClientId, events: &[Owned], head: (u64, &str)) -> Result<u64, ChainBreak> {
        let mut verifier = ChainVerifier::new(client_id);
        for event in events {
            verifier.check(&StoredLink {
                fields: EventFields {
                    client_id,
                    seq: event.fields.0,
                    at_us: event.fields.1,
                    kind: &event.fields.2,
                    entity_type: "work_item",
                    entity_id: "x",
                    payload: &event.fields.3,
                },
                prev_hash: &event.prev_hash,
                hash: &event.hash,
            })?;
        }
        verifier.finish(head.0, head.1)
    }

    #[test]
    fn intact_chain_verifies() {
        let (client, events) = chain(5);
        let head = events.last().unwrap().hash.clone();
        assert_eq!(verify(client, &events, (5, &head)), Ok(5));
        assert_eq!(
            verify(client, &[], (0, &ChainHash::GENESIS.to_hex())),
            Ok(0)
        );
    }

    #[test]
    fn tampering_is_named() {
        let (client, events) = chain(5);
        let head = events.last().unwrap().hash.clone();

        let mut altered = chain(5).1;
        altered[2].fields.3 = "{\"n\":9}".into();
        let err = verify(client, &altered, (5, &head)).unwrap_err();
        assert_eq!((err.seq, err.reason), (3, BreakReason::HashMismatch));

        let mut deleted = chain(5).1;
        deleted.remove(1);
        let err = verify(client, &deleted, (5, &head)).unwrap_err();
        assert_eq!(
            (err.seq, err.reason),
            (
                3,
                BreakReason::SequenceGap {
                    expected: 2,
                    found: 3
                }
            )
        );

        let mut truncated = chain(5).1;
        truncated.pop();
        let err = verify(client, &truncated, (5, &head)).unwrap_err();
        assert_eq!(
            err.reason,
            BreakReason::HeadMismatch {
                head_seq: 5,
                last_seq: 4
            }
        );

        // Swapping two events' contents while keeping the sequence numbers in place.
        let mut swapped = chain(5).1;
        let (a, b) = (swapped[1].fields.clone(), swapped[2].fields.clone());
        swapped[1].fields = (2, b.1, b.2, b.3);
        swapped[2].fields = (3, a.1, a.2, a.3);
        let err = verify(client, &swapped, (5, &head)).unwrap_err();
        assert_eq!((err.seq, err.reason), (2, BreakReason::HashMismatch));
        assert_eq!(events.len(), 5);
    }

    #[test]
    fn hash_hex_round_trips() {
        let hash = link(
            &ChainHash::GENESIS,
            &EventFields {
                client_id: CLIENT.parse().unwrap(),
                seq: 1,
                at_us: 0,
                kind: "k",
                entity_type: "t",
                entity_id: "i",
                payload: "{}",
            },
        );
        assert_eq!(hash.to_hex().parse::<ChainHash>(), Ok(hash));
        assert!("zz".parse::<ChainHash>().is_err());
    }
}
