//! Text keys (RFC 7143 6.1): `key=value` pairs, each terminated by a NUL, in Login and Text data
//! segments. Parsing is bounded: key names of at most 63 bytes, values of at most 8192 bytes
//! (6.1: values up to 8192 bytes for some keys) and at most 256 pairs per exchange.

pub const MAX_KEY_LEN: usize = 63;
pub const MAX_VALUE_LEN: usize = 8192;
pub const MAX_PAIRS: usize = 256;
/// The most text accepted across a multi-PDU (C bit) exchange.
pub const MAX_TEXT_LEN: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("text key without '='")]
    MissingEquals,
    #[error("empty or over-long key name")]
    BadKey,
    #[error("key value over {MAX_VALUE_LEN} bytes")]
    ValueTooLong,
    #[error("more than {MAX_PAIRS} keys")]
    TooManyKeys,
    #[error("text is not UTF-8")]
    NotUtf8,
    #[error("text exchange over {MAX_TEXT_LEN} bytes")]
    TooLong,
    #[error("last key=value pair not followed by a NUL")]
    MissingNul,
}

/// Parse a data segment into ordered (key, value) pairs. Every pair, the last one too, must end
/// with a NUL (RFC 7143 6.1): text cut short is refused, not guessed at. Empty entries
/// (consecutive NULs) are skipped.
pub fn parse(data: &[u8]) -> Result<Vec<(String, String)>, TextError> {
    if data.len() > MAX_TEXT_LEN {
        return Err(TextError::TooLong);
    }
    if data.last().is_some_and(|&b| b != 0) {
        return Err(TextError::MissingNul);
    }
    let mut out = Vec::new();
    for entry in data.split(|&b| b == 0) {
        if entry.is_empty() {
            continue;
        }
        if out.len() == MAX_PAIRS {
            return Err(TextError::TooManyKeys);
        }
        let eq = entry.iter().position(|&b| b == b'=').ok_or(TextError::MissingEquals)?;
        let (k, v) = (&entry[..eq], &entry[eq + 1..]);
        if k.is_empty() || k.len() > MAX_KEY_LEN {
            return Err(TextError::BadKey);
        }
        if v.len() > MAX_VALUE_LEN {
            return Err(TextError::ValueTooLong);
        }
        let k = std::str::from_utf8(k).map_err(|_| TextError::NotUtf8)?;
        let v = std::str::from_utf8(v).map_err(|_| TextError::NotUtf8)?;
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Append `key=value\0`.
pub fn push(out: &mut Vec<u8>, key: &str, value: &str) {
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value.as_bytes());
    out.push(0);
}

/// Encode pairs in order.
pub fn encode(pairs: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        push(&mut out, k, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_in_order() {
        let p = parse(b"InitiatorName=iqn.x\0SessionType=Normal\0\0\0").unwrap();
        assert_eq!(p, vec![("InitiatorName".into(), "iqn.x".into()), ("SessionType".into(), "Normal".into())]);
        assert_eq!(parse(b"A=\0").unwrap(), vec![("A".into(), "".into())]);
        assert_eq!(parse(b"A=x=y\0").unwrap(), vec![("A".into(), "x=y".into())]);
    }

    #[test]
    fn rejects_malformed_text() {
        assert_eq!(parse(b"novalue\0"), Err(TextError::MissingEquals));
        assert_eq!(parse(b"A=b"), Err(TextError::MissingNul));
        assert_eq!(parse(b"A=b\0B=c"), Err(TextError::MissingNul));
        assert_eq!(parse(b""), Ok(Vec::new()));
        assert_eq!(parse(b"=x\0"), Err(TextError::BadKey));
        let long_key = format!("{}=1\0", "k".repeat(64));
        assert_eq!(parse(long_key.as_bytes()), Err(TextError::BadKey));
        let long_val = format!("k={}\0", "v".repeat(MAX_VALUE_LEN + 1));
        assert_eq!(parse(long_val.as_bytes()), Err(TextError::ValueTooLong));
        assert_eq!(parse(b"k=\xff\0"), Err(TextError::NotUtf8));
        let many: Vec<u8> = (0..=MAX_PAIRS).flat_map(|i| format!("k{i}=1\0").into_bytes()).collect();
        assert_eq!(parse(&many), Err(TextError::TooManyKeys));
        assert_eq!(parse(&vec![b'a'; MAX_TEXT_LEN + 1]), Err(TextError::TooLong));
        assert_eq!(parse(&vec![0u8; MAX_TEXT_LEN]), Ok(Vec::new()));
    }

    #[test]
    fn encodes() {
        let pairs = vec![("A".to_string(), "1".to_string()), ("B".to_string(), "x".to_string())];
        assert_eq!(encode(&pairs), b"A=1\0B=x\0");
        assert_eq!(parse(&encode(&pairs)).unwrap(), pairs);
    }
}
