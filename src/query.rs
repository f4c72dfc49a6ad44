//! URL query strings and path segments built by pages and server code alike (both targets): one percent-encoding.

/// Percent-encodes a query value or a path segment: everything but RFC 3986's unreserved characters, so a value
/// can never end its parameter (`&`, `=`, `#`) or its segment (`/`, `?`).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `a=1&b=2` of the pairs that have a non-empty value, percent-encoded.
pub fn query_string(pairs: &[(&str, Option<&str>)]) -> String {
    pairs
        .iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| format!("{k}={}", encode(v))))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cannot_break_out_of_their_parameter_or_segment() {
        assert_eq!(
            encode("a b&c=d/e?f#g+h%i~j.k_l-m"),
            "a%20b%26c%3Dd%2Fe%3Ff%23g%2Bh%25i~j.k_l-m"
        );
        assert_eq!(encode("é"), "%C3%A9");
        assert_eq!(
            query_string(&[("a", Some("1")), ("b", None), ("c", Some("")), ("d", Some("x y"))]),
            "a=1&d=x%20y"
        );
    }
}
