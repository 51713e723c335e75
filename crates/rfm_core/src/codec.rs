//! A small little-endian byte format for serialized aggregate states: one version byte,
//! then fixed-width fields and length-prefixed arrays. Reading is total: malformed input
//! gives `None`, never a panic.

/// Builds a serialized state.
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new(version: u8, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity + 1);
        buf.push(version);
        Writer { buf }
    }

    /// A writer that appends to `buf` (which keeps what it holds), with room for
    /// `capacity` more bytes.
    pub fn append_to(mut buf: Vec<u8>, version: u8, capacity: usize) -> Self {
        buf.reserve(capacity + 1);
        buf.push(version);
        Writer { buf }
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn bytes(&mut self, v: &[u8]) {
        self.u64(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    /// An unsigned integer in 1 to 10 bytes, 7 bits a byte, low bits first (LEB128).
    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    /// A signed integer as a [`Writer::varint`] of its zigzag form (small magnitudes are short).
    pub fn zigzag(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }

    /// Bytes behind a varint length.
    pub fn short_bytes(&mut self, v: &[u8]) {
        self.varint(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    /// Bytes written so far (the version byte included).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// A length-prefixed array of floats.
    pub fn f64s(&mut self, v: &[f64]) {
        self.u64(v.len() as u64);
        self.buf.reserve(8 * v.len());
        for x in v {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    /// The bytes followed by the CRC-32C of all of them (version byte included), for values
    /// that users hold and can alter; read them with [`Reader::checked`].
    pub fn finish_checked(self) -> Vec<u8> {
        sealed(self.buf)
    }
}

/// `body` followed by its CRC-32C (what [`Writer::finish_checked`] writes).
pub fn sealed(mut body: Vec<u8>) -> Vec<u8> {
    let crc = crc32c::crc32c(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

/// The bytes of a value written by [`Writer::finish_checked`] without their checksum, when
/// the checksum matches.
pub fn verified(buf: &[u8]) -> Option<&[u8]> {
    let split = buf.len().checked_sub(4)?;
    let (body, crc) = buf.split_at(split);
    (crc32c::crc32c(body).to_le_bytes() == crc).then_some(body)
}

/// Reads a serialized state written by [`Writer`].
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// `None` when the buffer is empty or carries another version.
    pub fn new(buf: &'a [u8], version: u8) -> Option<Self> {
        match buf.split_first() {
            Some((&v, rest)) if v == version => Some(Reader { buf: rest }),
            _ => None,
        }
    }

    /// [`Reader::new`] of a value written by [`Writer::finish_checked`]: `None` when its
    /// checksum does not match (any byte changed) or it carries another version.
    pub fn checked(buf: &'a [u8], version: u8) -> Option<Self> {
        Reader::new(verified(buf)?, version)
    }

    /// A reader of bytes that carry no version byte (a part of a value already checked).
    pub fn raw(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        if self.buf.len() < N {
            return None;
        }
        let (head, rest) = self.buf.split_at(N);
        self.buf = rest;
        head.try_into().ok()
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }

    pub fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }

    pub fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_le_bytes)
    }

    pub fn f64(&mut self) -> Option<f64> {
        self.take().map(f64::from_le_bytes)
    }

    fn len(&mut self, width: usize) -> Option<usize> {
        let n = self.u64()?;
        self.fits(n, width)
    }

    /// `n` as a count of items that take at least `min_bytes` each, when the bytes not read
    /// yet can hold that many; else `None`. Every count read from untrusted bytes goes
    /// through this before anything is allocated or looped over for it.
    pub fn fits(&self, n: u64, min_bytes: usize) -> Option<usize> {
        let n = usize::try_from(n).ok()?;
        (n.checked_mul(min_bytes.max(1))? <= self.buf.len()).then_some(n)
    }

    /// A `u32` count of items of at least `min_bytes` each (see [`Reader::fits`]).
    pub fn count_u32(&mut self, min_bytes: usize) -> Option<usize> {
        let n = self.u32()?;
        self.fits(n.into(), min_bytes)
    }

    /// A `u64` count of items of at least `min_bytes` each (see [`Reader::fits`]).
    pub fn count_u64(&mut self, min_bytes: usize) -> Option<usize> {
        let n = self.u64()?;
        self.fits(n, min_bytes)
    }

    /// A varint count of items of at least `min_bytes` each (see [`Reader::fits`]).
    pub fn count_varint(&mut self, min_bytes: usize) -> Option<usize> {
        let n = self.varint()?;
        self.fits(n, min_bytes)
    }

    /// The next `n` bytes as they are.
    pub fn take_bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.len(1)?;
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    pub fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.buf.split_first()?;
            self.buf = rest;
            if shift == 63 && b > 1 {
                return None; // more than 64 bits
            }
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    pub fn zigzag(&mut self) -> Option<i64> {
        let v = self.varint()?;
        Some((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    pub fn short_bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        if n > self.buf.len() {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    /// Bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub fn f64s(&mut self) -> Option<Vec<f64>> {
        let n = self.len(8)?;
        let (head, rest) = self.buf.split_at(8 * n);
        self.buf = rest;
        Some(
            head.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
        )
    }

    /// `Some(())` when every byte was read.
    pub fn end(&self) -> Option<()> {
        self.buf.is_empty().then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut w = Writer::new(7, 0);
        w.u32(5);
        w.f64s(&[1.5, -2.0]);
        w.i64(-9);
        w.bytes(b"abc");
        let buf = w.finish();
        let mut r = Reader::new(&buf, 7).unwrap();
        assert_eq!(r.u32(), Some(5));
        assert_eq!(r.f64s(), Some(vec![1.5, -2.0]));
        assert_eq!(r.i64(), Some(-9));
        assert_eq!(r.bytes(), Some(&b"abc"[..]));
        assert_eq!(r.end(), Some(()));
    }

    #[test]
    fn varints_round_trip_at_every_width() {
        let unsigned = [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ];
        let signed = [
            0,
            1,
            -1,
            63,
            -64,
            64,
            -65,
            i64::MAX,
            i64::MIN,
            1_234_567,
            -7_654_321,
        ];
        let mut w = Writer::new(1, 0);
        for v in unsigned {
            w.varint(v);
        }
        for v in signed {
            w.zigzag(v);
        }
        w.short_bytes(b"key@example.com");
        let buf = w.finish();
        let mut r = Reader::new(&buf, 1).unwrap();
        for v in unsigned {
            assert_eq!(r.varint(), Some(v));
        }
        for v in signed {
            assert_eq!(r.zigzag(), Some(v));
        }
        assert_eq!(r.short_bytes(), Some(&b"key@example.com"[..]));
        assert_eq!(r.end(), Some(()));
        // small values are short
        let mut w = Writer::new(1, 0);
        w.varint(127);
        w.zigzag(-64);
        assert_eq!(w.len(), 3);
    }

    #[test]
    fn malformed_varints_are_rejected() {
        // unterminated
        assert_eq!(Reader::new(&[1, 0x80, 0x80], 1).unwrap().varint(), None);
        // eleven bytes, or a tenth byte above 1: more than 64 bits
        let mut long = vec![1];
        long.extend([0xFF; 9]);
        long.push(0x02);
        assert_eq!(Reader::new(&long, 1).unwrap().varint(), None);
        // a length beyond the end
        assert_eq!(Reader::new(&[1, 5, b'a'], 1).unwrap().short_bytes(), None);
    }

    #[test]
    fn malformed_input_is_rejected_without_panic() {
        assert!(Reader::new(&[], 1).is_none());
        assert!(Reader::new(&[2], 1).is_none());
        let mut w = Writer::new(1, 0);
        w.u64(u64::MAX); // absurd array length
        let buf = w.finish();
        assert_eq!(Reader::new(&buf, 1).unwrap().f64s(), None);
        let mut r = Reader::new(&[1, 0, 0], 1).unwrap();
        assert_eq!(r.u32(), None);
    }

    #[test]
    fn counts_are_bounded_by_the_bytes_left() {
        let mut w = Writer::new(1, 0);
        w.u32(3);
        w.u64(1 << 40);
        w.varint(u64::MAX);
        w.u32(2);
        w.f64(0.0);
        let buf = w.finish();
        let mut r = Reader::new(&buf, 1).unwrap();
        // 3 items of 11 bytes do not fit in the 30 bytes left; 3 of 1 byte do
        assert_eq!(r.fits(3, 1), Some(3));
        assert_eq!(r.count_u32(11), None);
        assert_eq!(r.count_u64(1), None);
        assert_eq!(r.count_varint(1), None);
        assert_eq!(r.count_u32(8), None); // 2 floats in 8 bytes
        assert_eq!(r.fits(1, 8), Some(1));
        assert_eq!(r.fits(u64::MAX, 8), None);
    }
}
