//! The one table: each kind's HTTP status, code and exit code.

use sitesync_service::{ALL_KINDS, ErrorKind};
use std::collections::HashSet;

#[test]
fn every_kind_has_the_documented_status_code_and_exit_code() {
    let table = [
        (ErrorKind::InvalidInput, 400, "invalid_input", 2),
        (ErrorKind::NotFound, 404, "not_found", 3),
        (ErrorKind::Taken, 409, "taken", 4),
        (ErrorKind::Forbidden, 403, "forbidden", 5),
        (ErrorKind::Unauthorised, 401, "unauthorised", 6),
        (ErrorKind::TooManyAttempts, 429, "too_many_attempts", 7),
        (ErrorKind::DiskFull, 507, "disk_full", 8),
        (ErrorKind::ReadOnly, 503, "read_only", 9),
        (ErrorKind::Corrupt, 500, "internal", 10),
        (ErrorKind::Unreachable, 502, "primary_unreachable", 11),
        (ErrorKind::Unavailable, 503, "unavailable", 12),
        (ErrorKind::Internal, 500, "internal", 1),
    ];
    assert_eq!(table.len(), ALL_KINDS.len());
    for (kind, status, code, exit) in table {
        assert_eq!(kind.http(), (status, code), "{kind:?}");
        assert_eq!(kind.exit_code(), exit, "{kind:?}");
    }
}

#[test]
fn exit_codes_tell_every_kind_apart_and_none_is_success() {
    let codes: HashSet<u8> = ALL_KINDS.iter().map(|k| k.exit_code()).collect();
    assert_eq!(codes.len(), ALL_KINDS.len());
    assert!(!codes.contains(&0));
}

#[test]
fn only_faults_of_this_site_are_kept_from_the_caller() {
    let hidden: Vec<_> = ALL_KINDS.iter().filter(|k| !k.tells_caller()).collect();
    assert_eq!(
        hidden,
        [
            &ErrorKind::Corrupt,
            &ErrorKind::Unavailable,
            &ErrorKind::Internal
        ]
    );
}
