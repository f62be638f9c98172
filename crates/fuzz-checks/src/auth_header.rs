//! The `Authorization` header of a signed sync request, as the primary reads it
//! (`secrets::RequestStamp::parse`).
//!
//! Properties: parsing never panics; a header that parses is rebuilt exactly by signing
//! its stamp again with the same secret and target only when its signature is that one
//! (so the signature check cannot be fooled by how the header was written).

use sitesync_node::secrets::RequestStamp;

/// Checks the properties above on one input; panics when one fails.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // As sent, and behind the scheme and first key a real header starts with, so the
    // fuzzer spends its time past them.
    check_header(text);
    check_header(&format!("SiteSync site={text}"));
}

fn check_header(header: &str) {
    let Some((stamp, signature)) = RequestStamp::parse(header) else {
        return;
    };
    let genuine = stamp.header("secret", "GET", "/sync/v1/pull?cursor=0");
    let (again, good) = RequestStamp::parse(&genuine).expect("a made header parses");
    assert_eq!(again, stamp, "the stamp survives being written out");
    assert!(again.verify(good, "secret", "GET", "/sync/v1/pull?cursor=0"));
    assert_eq!(
        stamp.verify(signature, "secret", "GET", "/sync/v1/pull?cursor=0"),
        signature == good,
        "only the genuine signature verifies"
    );
}
