//! The simulator as a test: seeded runs of the real QA rules, asserting what adaptive sampling
//! must achieve. A failure prints its seed; `karya bench qa --seed N` replays it.

mod qa;
