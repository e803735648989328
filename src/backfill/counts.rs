//! The numbers a run keeps per kind: in its checkpoint, its progress and its summary alike.

use serde::Serialize;

/// What a run did with the objects of one kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Objects read from the Backend API's list.
    pub seen: u64,
    /// Written (in a dry run: how many would be).
    pub written: u64,
    /// The table already held this version or a newer one, or a tombstone.
    pub stale: u64,
    /// Not copied: the webhook path would refuse them too, or DynamoDB refused their write
    /// (logged with their id and the reason). The run goes on past them.
    pub skipped: u64,
    /// List pages read.
    pub pages: u64,
}

impl Counts {
    pub(crate) fn add(&mut self, other: &Counts) {
        self.seen += other.seen;
        self.written += other.written;
        self.stale += other.stale;
        self.skipped += other.skipped;
        self.pages += other.pages;
    }
}

/// What a reconcile of one kind found and did, over the whole run: kept in its checkpoint,
/// reported in its summary and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileCounts {
    /// Live items of the kind the sweep read.
    pub live: u64,
    /// Live items the listing did not return, older than the run.
    pub candidates: u64,
    /// Candidates Clerk still had: copied, not deleted.
    pub found: u64,
    /// Candidates Clerk says are gone (404; a membership absent from its user's list).
    pub confirmed_gone: u64,
    /// Candidates whose lookup failed: neither copied nor deleted.
    pub unconfirmed: u64,
    pub tombstoned: u64,
    /// Confirmed gone, but withheld: more than the bound allows.
    pub refused: u64,
}
