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
        let n = usize::try_from(self.u64()?).ok()?;
        (n.checked_mul(width)? <= self.buf.len()).then_some(n)
    }

    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.len(1)?;
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
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
}
