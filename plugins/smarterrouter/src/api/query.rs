//! The one query-string parser: `a=1&b=x%3Ay` into decoded pairs, `+` as a space.

/// Decoded `(key, value)` pairs, in order; a key without `=` has an empty value.
pub fn params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// The first value of `key`, if any.
pub fn get(params: &[(String, String)], key: &str) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

/// The whole number `field` gives, from `min` to `max` (`unit` names what it counts, for the
/// error), or `default` when the parameter is absent.
pub fn whole_number(
    params: &[(String, String)],
    field: &'static str,
    (min, default, max): (u64, u64, u64),
    unit: &str,
) -> Result<u64, crate::error::RequestError> {
    match get(params, field) {
        None => Ok(default),
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| crate::error::RequestError::InvalidField {
                field,
                why: format!("{raw:?} is not a whole number of {unit} from {min} to {max}"),
            }),
    }
}

/// `%3A` to `:` and `+` to a space; a malformed escape is kept as written.
pub fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_model_names() {
        assert_eq!(percent_decode("llama3.2%3A1b"), "llama3.2:1b");
        assert_eq!(percent_decode("a+b%2"), "a b%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn pairs_are_decoded_in_order() {
        let p = params("prompt=Write+a%20poem&force&model=x%3A1");
        assert_eq!(get(&p, "prompt").as_deref(), Some("Write a poem"));
        assert_eq!(get(&p, "force").as_deref(), Some(""));
        assert_eq!(get(&p, "model").as_deref(), Some("x:1"));
        assert_eq!(get(&p, "none"), None);
    }
}
