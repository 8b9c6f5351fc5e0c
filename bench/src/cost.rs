//! The capacity table: read and write capacity units per item of every write
//! and read path, beside its floor — the least capacity any design needs for
//! that path's guarantees — and the ratio of the two in what the units cost.
//!
//! Units are counted by `allotment_dev::capacity` (DynamoDB Local's
//! `ReturnConsumedCapacity` where it is faithful, AWS's sizing rules where it
//! is not). The ratio weighs a read unit at a fifth of a write unit, as AWS
//! prices them (on-demand: $0.125 vs $0.625 per million request units;
//! provisioned: the same 1 : 5 per hour), so a path with a floor of no reads
//! is not infinitely far from it for one eventually consistent read.

use allotment_dev::capacity::Units;

use crate::Run;

/// A read unit's price in write units.
pub const READ_WEIGHT: f64 = 0.2;

pub fn cost(u: Units) -> f64 {
    u.write + READ_WEIGHT * u.read
}

pub struct CostLine {
    pub path: String,
    /// What one item is: "pack", "payment", "request", …
    pub per: &'static str,
    pub run: Run,
    /// Per item.
    pub floor: Units,
    pub floor_why: &'static str,
}

impl CostLine {
    /// Units per item, as measured.
    pub fn measured(&self) -> Units {
        let n = self.run.items.max(1) as f64;
        Units { read: self.run.capacity.used.read / n, write: self.run.capacity.used.write / n }
    }

    pub fn ratio(&self) -> f64 {
        cost(self.measured()) / cost(self.floor)
    }
}

/// The eventually consistent Query of `n` items of the run's average size
/// read, per item: half a unit per 4 KB, the least any listing of them reads.
pub fn listing_floor(run: &Run, n: usize) -> f64 {
    let bytes = run.capacity.average_read() * n as f64;
    0.5 * (bytes / 4096.0).ceil().max(1.0) / n.max(1) as f64
}

pub fn units(read: f64, write: f64) -> Units {
    Units { read, write }
}
