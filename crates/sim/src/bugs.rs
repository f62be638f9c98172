//! Known bugs the simulator can inject into its own driver code (never into the engine),
//! to prove that its invariants catch them. Each is off unless a test switches it on.

/// Which bugs to inject.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs {
    /// One satellite (the first) keeps its own version of a field when a pulled one
    /// wins: the merge's tie-break reversed there.
    pub reversed_merge: bool,
    /// Local writes are acknowledged before they are committed; a crash in between
    /// loses an acknowledged write.
    pub ack_before_commit: bool,
    /// Following an assignment forgets to purge the stores taken away.
    pub purge_forgets: bool,
    /// The primary applies a duplicated push again, as if it skipped the check of the
    /// outbox sequence.
    pub duplicate_applied_twice: bool,
    /// A satellite told that the primary went back carries on as if it had given back
    /// what it holds, without doing so.
    pub no_give_back: bool,
}

impl Bugs {
    /// No bug: the real engine.
    pub const NONE: Bugs = Bugs {
        reversed_merge: false,
        ack_before_commit: false,
        purge_forgets: false,
        duplicate_applied_twice: false,
        no_give_back: false,
    };
}
