//! Exact decimal amounts. PostgreSQL `numeric` values are decoded straight from their
//! on-disk bytes (base-10000 digits) into an integer number of units at their display
//! scale, and totals are kept as integers, so they equal `SUM(amount)` to the last digit.

use crate::error::{ErrorKind, Result, RfmError};

/// A decoded numeric: `units / 10^scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    pub units: i128,
    pub scale: u32,
}

/// What a numeric's bytes hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    Value(Decimal),
    NaN,
    PosInf,
    NegInf,
}

const NUMERIC_SIGN_MASK: u16 = 0xC000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_SHORT: u16 = 0x8000;
const NUMERIC_SPECIAL: u16 = 0xC000;
const NUMERIC_EXT_SIGN_MASK: u16 = 0xF000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;
const SHORT_SIGN: u16 = 0x2000;
const SHORT_DSCALE_MASK: u16 = 0x1F80;
const SHORT_DSCALE_SHIFT: u16 = 7;
const SHORT_WEIGHT_SIGN: u16 = 0x0040;
const SHORT_WEIGHT_MASK: u16 = 0x003F;
const DSCALE_MASK: u16 = 0x3FFF;

/// Decodes the data bytes of a numeric varlena (after its length header). `None` when the
/// value does not fit in 128-bit units or the bytes are malformed.
pub fn decode(data: &[u8]) -> Option<Decoded> {
    let header = digit(data, 0)?;
    let (negative, scale, weight, first_digit) = if header & NUMERIC_SIGN_MASK == NUMERIC_SPECIAL {
        return match header & NUMERIC_EXT_SIGN_MASK {
            NUMERIC_NAN => Some(Decoded::NaN),
            NUMERIC_PINF => Some(Decoded::PosInf),
            NUMERIC_NINF => Some(Decoded::NegInf),
            _ => None,
        };
    } else if header & NUMERIC_SIGN_MASK == NUMERIC_SHORT {
        let weight = if header & SHORT_WEIGHT_SIGN != 0 {
            (!SHORT_WEIGHT_MASK | (header & SHORT_WEIGHT_MASK)) as i16 as i32
        } else {
            (header & SHORT_WEIGHT_MASK) as i32
        };
        (
            header & SHORT_SIGN != 0,
            ((header & SHORT_DSCALE_MASK) >> SHORT_DSCALE_SHIFT) as u32,
            weight,
            1,
        )
    } else {
        let weight = digit(data, 1)? as i16 as i32;
        (
            header & NUMERIC_SIGN_MASK == NUMERIC_NEG,
            (header & DSCALE_MASK) as u32,
            weight,
            2,
        )
    };
    if !data.len().is_multiple_of(2) {
        return None;
    }
    let ndigits = data.len() / 2 - first_digit;
    let (units, scale) = if ndigits <= 4 {
        // the common case (up to 16 significant digits): 64-bit arithmetic, no i128 division
        match small_units(data, first_digit, ndigits, weight, scale) {
            Some(u) => (u, scale),
            None => wide_units(data, first_digit, ndigits, weight, scale)?,
        }
    } else {
        wide_units(data, first_digit, ndigits, weight, scale)?
    };
    Some(Decoded::Value(Decimal {
        units: if negative { -units } else { units },
        scale,
    }))
}

/// The base-10000 digit `i` of a numeric's data.
fn digit(data: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_ne_bytes([
        *data.get(2 * i)?,
        *data.get(2 * i + 1)?,
    ]))
}

/// The units at `scale` of the digits `data[first..first + ndigits]` with `weight`, in
/// 128-bit arithmetic, with the scale they are at: `scale`, or, when the value does not fit
/// at its display scale (a numeric(30,18) amount, a quotient of scale 20), the scale of its
/// last nonzero digit group (the display scale's other digits are zeros). `None` when even
/// that does not fit, or digits lie beyond the scale.
fn wide_units(
    data: &[u8],
    first: usize,
    ndigits: usize,
    weight: i32,
    scale: u32,
) -> Option<(i128, u32)> {
    let mut acc: i128 = 0;
    for i in 0..ndigits {
        acc = acc
            .checked_mul(10_000)?
            .checked_add(digit(data, first + i)? as i128)?;
    }
    if ndigits == 0 {
        return Some((0, scale));
    }
    // acc holds value * 10000^(ndigits - 1 - weight) = value * 10^exp
    let exp = 4 * (ndigits as i64 - 1 - weight as i64);
    if exp <= scale as i64 {
        let at_scale =
            pow10(u32::try_from(scale as i64 - exp).ok()?).and_then(|p| acc.checked_mul(p));
        match at_scale {
            Some(u) => Some((u, scale)),
            // the digits the display scale adds are zeros: the value at the scale of its
            // digits (an integer when exp < 0)
            None if exp >= 0 => Some((acc, exp as u32)),
            None => Some((acc.checked_mul(pow10(u32::try_from(-exp).ok()?)?)?, 0)),
        }
    } else {
        // digits beyond the display scale are zeros (trailing zeros of the last group)
        let div = pow10(u32::try_from(exp - scale as i64).ok()?)?;
        (acc % div == 0).then(|| (acc / div, scale))
    }
}

/// Decimal places kept whatever the trailing zeros: amounts with more are held with the
/// zeros past this many decimals removed ([`trim_scale`]).
pub const KEEP_SCALE: u32 = 6;

/// `d` without the trailing zeros past [`KEEP_SCALE`] decimals: the same number, at a scale
/// that the totals of a large analysis can hold (a numeric(30,18) amount of 12.3 is 12.3
/// at scale 6, not 12.3 * 10^18 units). The result depends on `d` alone, so every plan —
/// serial or parallel, rows in any order — holds the same amounts.
pub fn trim_scale(d: Decimal) -> Decimal {
    let Decimal {
        mut units,
        mut scale,
    } = d;
    while scale > KEEP_SCALE && units % 10 == 0 {
        units /= 10;
        scale -= 1;
    }
    Decimal { units, scale }
}

/// [`decode`] for at most four base-10000 digits: `None` sends the caller to the general path.
fn small_units(data: &[u8], first: usize, ndigits: usize, weight: i32, scale: u32) -> Option<i128> {
    let mut acc: u64 = 0;
    for i in 0..ndigits {
        acc = acc * 10_000 + digit(data, first + i)? as u64;
    }
    if ndigits == 0 {
        return Some(0);
    }
    let exp = 4 * (ndigits as i64 - 1 - weight as i64);
    let shift = scale as i64 - exp;
    let units = match shift {
        0 => acc,
        1..=3 => acc * [1, 10, 100, 1000][shift as usize],
        -3..=-1 => {
            // digits beyond the display scale are zeros (trailing zeros of the last group)
            let div = [1, 10, 100, 1000][(-shift) as usize];
            if !acc.is_multiple_of(div) {
                return None;
            }
            acc / div
        }
        _ => return None,
    };
    Some(units as i128)
}

/// Encodes `units / 10^scale` as the data bytes of a numeric varlena (after its length
/// header), exactly as PostgreSQL's own `make_result` writes it: base-10000 digits without
/// leading or trailing zero groups, the short header when scale and weight allow it, zero
/// with weight 0. `None` when the scale is beyond numeric's display-scale limit.
pub fn encode(units: i128, scale: u32) -> Option<Vec<u8>> {
    if scale > DSCALE_MASK as u32 {
        return None;
    }
    // digit groups end on the decimal point: pad the units to a multiple of 4 decimals
    let pad = (4 - scale % 4) % 4;
    let frac_groups = ((scale + pad) / 4) as i64;
    let mut n: u128 = units.unsigned_abs();
    let mut groups: Vec<u16> = Vec::with_capacity(12);
    // the pad lowest digits are zeros: the first group is the remainder times 10^pad
    let pad_mul = [1u128, 10, 100, 1000][pad as usize];
    let first = (n % (10_000 / pad_mul)) * pad_mul;
    n /= 10_000 / pad_mul;
    groups.push(first as u16);
    while n > 0 {
        groups.push((n % 10_000) as u16);
        n /= 10_000;
    }
    groups.reverse(); // most significant first
                      // weight of the first group before stripping
    let mut weight = groups.len() as i64 - 1 - frac_groups;
    let lead = groups.iter().take_while(|&&g| g == 0).count();
    weight -= lead as i64;
    let mut digits = &groups[lead..];
    while let Some((&0, rest)) = digits.split_last() {
        digits = rest;
    }
    let negative = units < 0 && !digits.is_empty();
    if digits.is_empty() {
        weight = 0;
    }
    let mut out = Vec::with_capacity(4 + 2 * digits.len());
    if scale <= (SHORT_DSCALE_MASK >> SHORT_DSCALE_SHIFT) as u32 && (-64..=63).contains(&weight) {
        let mut header = NUMERIC_SHORT | ((scale as u16) << SHORT_DSCALE_SHIFT);
        if negative {
            header |= SHORT_SIGN;
        }
        if weight < 0 {
            header |= SHORT_WEIGHT_SIGN;
        }
        header |= (weight as i16 as u16) & SHORT_WEIGHT_MASK;
        out.extend_from_slice(&header.to_ne_bytes());
    } else {
        let weight = i16::try_from(weight).ok()?;
        let header = if negative { NUMERIC_NEG } else { 0 } | (scale as u16 & DSCALE_MASK);
        out.extend_from_slice(&header.to_ne_bytes());
        out.extend_from_slice(&weight.to_ne_bytes());
    }
    for d in digits {
        out.extend_from_slice(&d.to_ne_bytes());
    }
    Some(out)
}

/// `10^n` when it fits.
pub fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// Brings `units` at `from` scale to the larger `to` scale.
pub fn rescale(units: i128, from: u32, to: u32) -> Option<i128> {
    units.checked_mul(pow10(to.checked_sub(from)?)?)
}

/// Formats `units / 10^scale` as a decimal string (`-12.30`).
pub fn format(units: i128, scale: u32) -> String {
    let digits = units.unsigned_abs().to_string();
    let sign = if units < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let scale = scale as usize;
    let padded = if digits.len() <= scale {
        format!("{}{}", "0".repeat(scale + 1 - digits.len()), digits)
    } else {
        digits
    };
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

/// The error for amounts whose exact totals would not fit in 128 bits.
pub fn too_large() -> RfmError {
    RfmError::new(
        ErrorKind::OutOfRange,
        "amount is too large or has too many decimal places for exact totals",
    )
    .with_hint("Round the amounts, for example round(amount, 2), or pass them as double precision.")
}

/// Rejects non-finite numerics, naming the value.
pub fn check(decoded: Decoded) -> Result<Decimal> {
    match decoded {
        Decoded::Value(d) => Ok(d),
        Decoded::NaN => Err(RfmError::invalid("amount must be a number, got NaN")),
        Decoded::PosInf => Err(RfmError::out_of_range(
            "amount must be finite, got Infinity",
        )),
        Decoded::NegInf => Err(RfmError::out_of_range(
            "amount must be finite, got -Infinity",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_of_a_large_display_scale_keep_their_value() {
        // 12.3::numeric(30,18): header with dscale 18, weight 0, digits 12 and 3000
        let mut data = Vec::new();
        data.extend_from_slice(&(NUMERIC_SHORT | (18 << SHORT_DSCALE_SHIFT)).to_ne_bytes());
        data.extend_from_slice(&12u16.to_ne_bytes());
        data.extend_from_slice(&3000u16.to_ne_bytes());
        let Some(Decoded::Value(d)) = decode(&data) else {
            panic!("decoded")
        };
        assert_eq!(format(d.units, d.scale), "12.300000000000000000");
        let t = trim_scale(d);
        assert_eq!((t.units, t.scale), (12_300_000, 6));
        // scale 20 (a quotient), too many digits for 128 bits at its display scale? no:
        // 9.99 at scale 20 fits; 10^20 at scale 20 does not, and decodes at the digits' scale
        let d = Decimal {
            units: 999 * 10i128.pow(18),
            scale: 20,
        };
        assert_eq!(
            trim_scale(d),
            Decimal {
                units: 9_990_000,
                scale: 6
            }
        );
        // significant digits past the sixth decimal are kept
        let d = Decimal {
            units: 123_456_789,
            scale: 9,
        };
        assert_eq!(trim_scale(d), d);
        // scales up to six are left as they are, trailing zeros and all
        let d = Decimal {
            units: 15_000,
            scale: 2,
        };
        assert_eq!(trim_scale(d), d);
    }

    fn words(w: &[u16]) -> Vec<u8> {
        w.iter().flat_map(|x| x.to_ne_bytes()).collect()
    }

    fn short(neg: bool, dscale: u16, weight: i16, digits: &[u16]) -> Vec<u8> {
        let mut h = NUMERIC_SHORT | (dscale << SHORT_DSCALE_SHIFT);
        if neg {
            h |= SHORT_SIGN;
        }
        h |= (weight as u16) & (SHORT_WEIGHT_SIGN | SHORT_WEIGHT_MASK);
        let mut w = vec![h];
        w.extend_from_slice(digits);
        words(&w)
    }

    #[test]
    fn short_format_values() {
        // 1234.50 = digits [1234, 5000], weight 0, dscale 2
        assert_eq!(
            decode(&short(false, 2, 0, &[1234, 5000])),
            Some(Decoded::Value(Decimal {
                units: 123450,
                scale: 2
            }))
        );
        // -0.05 = digits [500], weight -1, dscale 2
        assert_eq!(
            decode(&short(true, 2, -1, &[500])),
            Some(Decoded::Value(Decimal {
                units: -5,
                scale: 2
            }))
        );
        // 10000 = digits [1], weight 1, dscale 0
        assert_eq!(
            decode(&short(false, 0, 1, &[1])),
            Some(Decoded::Value(Decimal {
                units: 10000,
                scale: 0
            }))
        );
        // 0.00 has no digits
        assert_eq!(
            decode(&short(false, 2, 0, &[])),
            Some(Decoded::Value(Decimal { units: 0, scale: 2 }))
        );
    }

    #[test]
    fn long_format_and_specials() {
        // 12.5 in the long format: sign/dscale word, weight word, digits
        assert_eq!(
            decode(&words(&[1, 0, 12, 5000])),
            Some(Decoded::Value(Decimal {
                units: 125,
                scale: 1
            }))
        );
        assert_eq!(
            decode(&words(&[NUMERIC_NEG | 1, 0, 12, 5000])),
            Some(Decoded::Value(Decimal {
                units: -125,
                scale: 1
            }))
        );
        assert_eq!(decode(&words(&[NUMERIC_NAN])), Some(Decoded::NaN));
        assert_eq!(decode(&words(&[NUMERIC_PINF])), Some(Decoded::PosInf));
        assert_eq!(decode(&words(&[NUMERIC_NINF])), Some(Decoded::NegInf));
        assert!(check(Decoded::NaN).is_err());
        assert_eq!(decode(&[1]), None);
    }

    proptest::proptest! {
        #[test]
        fn the_64_bit_path_agrees_with_the_128_bit_path(
            digits in proptest::collection::vec(0u16..10_000, 0..=4),
            weight in -4i32..6,
            scale in 0u32..20,
        ) {
            let data = words(&digits);
            let small = small_units(&data, 0, digits.len(), weight, scale);
            let wide = wide_units(&data, 0, digits.len(), weight, scale);
            if small.is_some() {
                proptest::prop_assert_eq!(small.map(|u| (u, scale)), wide);
            }
        }
    }

    #[test]
    fn formatting() {
        assert_eq!(format(123450, 2), "1234.50");
        assert_eq!(format(-5, 2), "-0.05");
        assert_eq!(format(7, 0), "7");
        assert_eq!(format(0, 3), "0.000");
        assert_eq!(rescale(15, 1, 3), Some(1500));
    }
}

#[cfg(test)]
mod encode_tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(units: i128, scale: u32) {
        let bytes = encode(units, scale).unwrap();
        assert_eq!(
            decode(&bytes),
            Some(Decoded::Value(Decimal { units, scale })),
            "{units} at scale {scale}: {bytes:?}"
        );
    }

    #[test]
    fn edges_round_trip() {
        for scale in 0..=20 {
            for units in [
                0,
                1,
                -1,
                9999,
                10_000,
                -10_001,
                123_456_789,
                i64::MAX as i128,
                -(i64::MAX as i128),
            ] {
                round_trip(units, scale);
            }
        }
        round_trip(i128::MAX / 1000, 3);
        round_trip(-(10i128.pow(37)), 0);
        round_trip(5, 70); // long header: dscale above 63
    }

    #[test]
    fn zero_is_canonical() {
        // make_result: zero has no digits, weight 0, positive sign, whatever the scale
        assert_eq!(
            encode(0, 2).unwrap(),
            (NUMERIC_SHORT | (2 << SHORT_DSCALE_SHIFT)).to_ne_bytes()
        );
        assert_eq!(encode(-0, 0).unwrap(), NUMERIC_SHORT.to_ne_bytes());
    }

    #[test]
    fn digits_are_stripped() {
        // 12.30 at scale 2: one group 12 (weight 0) and one group 3000 (weight -1)
        let b = encode(1230, 2).unwrap();
        assert_eq!(b.len(), 6);
        // 100000000 = 1 0000 0000: one digit, weight 2
        let b = encode(100_000_000, 0).unwrap();
        assert_eq!(b.len(), 4);
        assert_eq!(u16::from_ne_bytes([b[0], b[1]]) & SHORT_WEIGHT_MASK, 2);
    }

    proptest! {
        #[test]
        fn any_value_round_trips(units in any::<i64>(), wide in any::<i128>(), scale in 0u32..40) {
            round_trip(units as i128, scale);
            round_trip(wide / 1_000_000, scale);
        }
    }
}
