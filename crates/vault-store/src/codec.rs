//! A tiny length-prefixed binary encoding used for associated data, MAC inputs, sealed
//! metadata, stored configuration and backups. Integers are big-endian; byte strings and
//! texts carry a 32-bit length prefix.

use crate::{Result, VaultError};

/// Builds an encoding.
#[derive(Debug, Default, Clone)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }

    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn opt_i64(&mut self, v: Option<i64>) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(v) => self.u8(1).i64(v),
        }
    }

    pub(crate) fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        // Lengths above u32::MAX cannot occur: inputs are bounded far below 4 GiB.
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.u32(len);
        self.buf.extend_from_slice(v);
        self
    }

    pub(crate) fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    pub(crate) fn opt_bytes(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(v) => self.u8(1).bytes(v),
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads an encoding made by [`Writer`], with typed errors naming what was being read.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, pos: 0, what }
    }

    fn err(&self, detail: impl Into<String>) -> VaultError {
        VaultError::corrupt(self.what, format!("{} at byte {}", detail.into(), self.pos))
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.err(format!("truncated: {n} more bytes needed")))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    pub(crate) fn opt_bytes(&mut self) -> Result<Option<&'a [u8]>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.bytes()?)),
            t => Err(self.err(format!("bad option tag {t}"))),
        }
    }

    pub(crate) fn str(&mut self) -> Result<&'a str> {
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| self.err("text is not UTF-8"))
    }

    /// A count of following items, refused when it could not fit in the remaining bytes
    /// (each item takes at least `min_item` bytes), so a hostile count cannot allocate.
    pub(crate) fn count(&mut self, min_item: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_item.max(1)) > self.remaining() {
            return Err(self.err(format!("count {n} exceeds the remaining bytes")));
        }
        Ok(n)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn finish(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(self.err(format!("{} trailing bytes", self.remaining())));
        }
        Ok(())
    }
}

const B32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// RFC 4648 base32, lowercase, without padding.
pub(crate) fn base32(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(B32[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(B32[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn base32_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32(input.as_bytes()), want);
        }
    }

    #[test]
    fn reader_reports_truncation_and_trailing_bytes() {
        let mut w = Writer::new();
        w.u32(7).str("héllo");
        let v = w.into_vec();
        let mut r = Reader::new(&v[..v.len() - 1], "test");
        assert_eq!(r.u32().unwrap(), 7);
        assert!(matches!(r.str(), Err(VaultError::Corrupt { .. })));
        let mut r = Reader::new(&v, "test");
        r.u32().unwrap();
        assert!(r.finish().is_err());
        assert_eq!(r.str().unwrap(), "héllo");
        r.finish().unwrap();
    }

    #[test]
    fn hostile_counts_are_refused() {
        let mut w = Writer::new();
        w.u32(u32::MAX);
        let v = w.into_vec();
        assert!(Reader::new(&v, "test").count(1).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(a in any::<u64>(), b in any::<i64>(), c in proptest::option::of(any::<i64>()),
                      d in proptest::collection::vec(any::<u8>(), 0..64), e in ".{0,20}") {
            let mut w = Writer::new();
            w.u64(a).i64(b).opt_i64(c).bytes(&d).str(&e).opt_bytes(Some(&d)).opt_bytes(None);
            let v = w.into_vec();
            let mut r = Reader::new(&v, "test");
            prop_assert_eq!(r.u64().unwrap(), a);
            prop_assert_eq!(r.i64().unwrap(), b);
            prop_assert_eq!(r.u8().unwrap(), u8::from(c.is_some()));
            if let Some(c) = c { prop_assert_eq!(r.i64().unwrap(), c); }
            prop_assert_eq!(r.bytes().unwrap(), &d[..]);
            prop_assert_eq!(r.str().unwrap(), &e[..]);
            prop_assert_eq!(r.opt_bytes().unwrap(), Some(&d[..]));
            prop_assert_eq!(r.opt_bytes().unwrap(), None);
            r.finish().unwrap();
        }
    }
}
