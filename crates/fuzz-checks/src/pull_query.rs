//! The pull's query string (`GET /sync/v1/pull?cursor=..&limit=..&wait_ms=..&stores=..`),
//! parsed by serde_urlencoded as axum's `Query` extractor does.
//!
//! Properties: parsing never panics; a parsed query serialises to a query string that
//! parses to the same query (no parameter is lost or changed in meaning).

use sitesync_protocol::PullQuery;

/// Checks the properties above on one input; panics when one fails.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(query) = serde_urlencoded::from_str::<PullQuery>(text) else {
        return;
    };
    let again = serde_urlencoded::to_string(&query).expect("a parsed query serialises");
    let back: PullQuery = serde_urlencoded::from_str(&again)
        .unwrap_or_else(|e| panic!("{again:?} does not parse back: {e}"));
    assert_eq!(
        serde_json::to_value(&query).ok(),
        serde_json::to_value(&back).ok(),
        "the query changed in a round trip through {again:?}"
    );
}
