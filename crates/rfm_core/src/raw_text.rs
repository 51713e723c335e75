//! Text of a `SQL_ASCII` database, which declares no encoding: bytes that are valid UTF-8
//! are kept as they are, and every other byte `b` stands for the private-use character
//! U+10FF00 + `b` while the extension holds the text, so that any bytes round-trip exactly
//! and two keys that differ only in such bytes stay two keys.

use std::borrow::Cow;

/// Where the bytes of a SQL_ASCII database that are not UTF-8 are kept: U+10FF00 + byte.
pub const RAW_BYTE_BASE: u32 = 0x10_FF00;

/// SQL_ASCII bytes as UTF-8: valid UTF-8 as it is, any other byte as U+10FF00 + byte.
pub fn raw_to_utf8(bytes: &[u8]) -> Cow<'_, [u8]> {
    if std::str::from_utf8(bytes).is_ok() {
        return Cow::Borrowed(bytes);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for &b in chunk.invalid() {
            out.push(char::from_u32(RAW_BYTE_BASE + b as u32).expect("a private-use character"));
        }
    }
    Cow::Owned(out.into_bytes())
}

/// The inverse of [`raw_to_utf8`].
pub fn utf8_to_raw(s: &str) -> Cow<'_, [u8]> {
    if !s
        .chars()
        .any(|c| (RAW_BYTE_BASE..=RAW_BYTE_BASE + 0xFF).contains(&(c as u32)))
    {
        return Cow::Borrowed(s.as_bytes());
    }
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        let u = c as u32;
        if (RAW_BYTE_BASE..=RAW_BYTE_BASE + 0xFF).contains(&u) {
            out.push((u - RAW_BYTE_BASE) as u8);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn utf8_is_kept_and_other_bytes_stand_apart() {
        assert!(matches!(raw_to_utf8("Müller".as_bytes()), Cow::Borrowed(_)));
        let cafe_e9 = raw_to_utf8(b"caf\xe9").into_owned();
        let cafe_e8 = raw_to_utf8(b"caf\xe8").into_owned();
        assert_ne!(cafe_e9, cafe_e8);
        assert!(std::str::from_utf8(&cafe_e9).is_ok());
        assert_eq!(
            utf8_to_raw(std::str::from_utf8(&cafe_e9).unwrap()).as_ref(),
            b"caf\xe9"
        );
        // a UTF-8 lead byte cut short is a raw byte too
        assert_eq!(
            utf8_to_raw(std::str::from_utf8(&raw_to_utf8(b"a\xc3")).unwrap()).as_ref(),
            b"a\xc3"
        );
    }

    proptest! {
        #[test]
        fn any_bytes_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let utf8 = raw_to_utf8(&bytes).into_owned();
            let s = std::str::from_utf8(&utf8).expect("always UTF-8");
            let back = utf8_to_raw(s).into_owned();
            prop_assert_eq!(back, bytes);
        }

        #[test]
        fn distinct_bytes_stay_distinct(a in proptest::collection::vec(any::<u8>(), 0..16),
                                        b in proptest::collection::vec(any::<u8>(), 0..16)) {
            prop_assume!(a != b);
            prop_assert_ne!(raw_to_utf8(&a).into_owned(), raw_to_utf8(&b).into_owned());
        }
    }
}
