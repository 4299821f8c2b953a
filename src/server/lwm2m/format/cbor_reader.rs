//! A small bounded CBOR (RFC 8949) reader and writer, enough for the LwM2M
//! formats. Hand-written rather than a dependency so that the limits are
//! ours: nesting stops at [`MAX_DEPTH`], and no length the input claims is
//! allocated before the bytes are known to be there.
use super::common::malformed;
use super::{FormatError, MAX_DEPTH};

/// One decoded CBOR data item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    Uint(u64),
    /// Major type 1: the value is `-1 - n`.
    Nint(u64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Item>),
    Map(Vec<(Item, Item)>),
    Tag(u64, Box<Item>),
    Bool(bool),
    Null,
    Undefined,
    Simple(u8),
    Float(f64),
}

impl Item {
    /// Integers of either sign, exactly.
    pub(crate) fn as_int(&self) -> Option<i128> {
        match *self {
            Item::Uint(u) => Some(i128::from(u)),
            Item::Nint(n) => Some(-1 - i128::from(n)),
            _ => None,
        }
    }

    /// A short name for error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Item::Uint(_) | Item::Nint(_) => "an integer",
            Item::Bytes(_) => "a byte string",
            Item::Text(_) => "a text string",
            Item::Array(_) => "an array",
            Item::Map(_) => "a map",
            Item::Tag(..) => "a tagged item",
            Item::Bool(_) => "a boolean",
            Item::Null => "null",
            Item::Undefined => "undefined",
            Item::Simple(_) => "a simple value",
            Item::Float(_) => "a float",
        }
    }
}

/// Reads exactly one item; trailing bytes are an error.
pub(crate) fn decode_single(buf: &[u8]) -> Result<Item, FormatError> {
    let mut r = Reader { buf, pos: 0 };
    let item = r.item(0)?;
    if r.pos != buf.len() {
        return Err(malformed(
            format!("byte {}", r.pos),
            "trailing bytes after the CBOR item",
        ));
    }
    Ok(item)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// An item or the break code ending an indefinite-length item.
enum Next {
    Item(Item),
    Break,
}

impl Reader<'_> {
    fn truncated(&self) -> FormatError {
        FormatError::Truncated {
            at: format!("byte {}", self.pos),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], FormatError> {
        if self.buf.len() - self.pos < n {
            return Err(self.truncated());
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }

    fn uint_be(&mut self, n: usize) -> Result<u64, FormatError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// The argument of a head; `None` for indefinite length (31).
    fn argument(&mut self, ai: u8, at: usize) -> Result<Option<u64>, FormatError> {
        Ok(Some(match ai {
            0..=23 => u64::from(ai),
            24 => self.uint_be(1)?,
            25 => self.uint_be(2)?,
            26 => self.uint_be(4)?,
            27 => self.uint_be(8)?,
            31 => return Ok(None),
            _ => {
                return Err(malformed(
                    format!("byte {at}"),
                    "reserved additional information",
                ))
            }
        }))
    }

    fn item(&mut self, depth: usize) -> Result<Item, FormatError> {
        let at = self.pos;
        match self.next(depth)? {
            Next::Item(item) => Ok(item),
            Next::Break => Err(malformed(format!("byte {at}"), "unexpected break code")),
        }
    }

    fn length(&self, n: u64) -> Result<usize, FormatError> {
        // Any definite length beyond the remaining bytes cannot be satisfied:
        // each string byte and each array element takes at least one byte.
        match usize::try_from(n) {
            Ok(n) if n <= self.buf.len() - self.pos => Ok(n),
            _ => Err(self.truncated()),
        }
    }

    fn next(&mut self, depth: usize) -> Result<Next, FormatError> {
        let at = self.pos;
        let ib = self.byte()?;
        let (major, ai) = (ib >> 5, ib & 0x1f);
        if ib == 0xff {
            return Ok(Next::Break);
        }
        let arg = self.argument(ai, at)?;
        let nested = |depth: usize| {
            if depth + 1 > MAX_DEPTH {
                Err(FormatError::TooDeep {
                    at: format!("byte {at}"),
                    max: MAX_DEPTH,
                })
            } else {
                Ok(depth + 1)
            }
        };
        let item = match (major, arg) {
            (0, Some(v)) => Item::Uint(v),
            (1, Some(v)) => Item::Nint(v),
            (2, _) => Item::Bytes(self.string(2, arg, at)?),
            (3, _) => {
                let bytes = self.string(3, arg, at)?;
                Item::Text(
                    String::from_utf8(bytes)
                        .map_err(|_| malformed(format!("byte {at}"), "text string is not UTF-8"))?,
                )
            }
            (4, _) => {
                let depth = nested(depth)?;
                let mut items = Vec::new();
                match arg {
                    Some(n) => {
                        for _ in 0..self.length(n)? {
                            items.push(self.item(depth)?);
                        }
                    }
                    None => {
                        while let Next::Item(item) = self.next(depth)? {
                            items.push(item);
                        }
                    }
                }
                Item::Array(items)
            }
            (5, _) => {
                let depth = nested(depth)?;
                let mut pairs = Vec::new();
                match arg {
                    Some(n) => {
                        // Two items per pair, so at least two bytes each.
                        let n = self.length(n.saturating_mul(2))? / 2;
                        for _ in 0..n {
                            let k = self.item(depth)?;
                            let v = self.item(depth)?;
                            pairs.push((k, v));
                        }
                    }
                    None => {
                        while let Next::Item(k) = self.next(depth)? {
                            let v = self.item(depth)?;
                            pairs.push((k, v));
                        }
                    }
                }
                Item::Map(pairs)
            }
            (6, Some(tag)) => Item::Tag(tag, Box::new(self.item(nested(depth)?)?)),
            (7, _) => match ai {
                20 => Item::Bool(false),
                21 => Item::Bool(true),
                22 => Item::Null,
                23 => Item::Undefined,
                0..=19 => Item::Simple(ai),
                24 => match arg {
                    Some(v) if v >= 32 => Item::Simple(v as u8),
                    _ => return Err(malformed(format!("byte {at}"), "invalid simple value")),
                },
                25 => Item::Float(f16_to_f64(arg.unwrap_or(0) as u16)),
                26 => Item::Float(f64::from(f32::from_bits(arg.unwrap_or(0) as u32))),
                27 => Item::Float(f64::from_bits(arg.unwrap_or(0))),
                _ => return Err(malformed(format!("byte {at}"), "invalid simple value")),
            },
            _ => {
                return Err(malformed(
                    format!("byte {at}"),
                    "indefinite length not allowed for this major type",
                ))
            }
        };
        Ok(Next::Item(item))
    }

    /// A byte or text string; indefinite strings are definite chunks of the
    /// same major type (RFC 8949 §3.2.3).
    fn string(&mut self, major: u8, arg: Option<u64>, at: usize) -> Result<Vec<u8>, FormatError> {
        if let Some(n) = arg {
            let n = self.length(n)?;
            return Ok(self.take(n)?.to_vec());
        }
        let mut out = Vec::new();
        loop {
            let chunk_at = self.pos;
            let ib = self.byte()?;
            if ib == 0xff {
                return Ok(out);
            }
            if ib >> 5 != major {
                return Err(malformed(
                    format!("byte {chunk_at}"),
                    "chunk of an indefinite string has the wrong type",
                ));
            }
            let n = match self.argument(ib & 0x1f, chunk_at)? {
                Some(n) => self.length(n)?,
                None => {
                    return Err(malformed(format!("byte {at}"), "nested indefinite string"));
                }
            };
            let chunk = self.take(n)?;
            if major == 3 && std::str::from_utf8(chunk).is_err() {
                return Err(malformed(
                    format!("byte {chunk_at}"),
                    "text chunk is not UTF-8",
                ));
            }
            out.extend_from_slice(chunk);
        }
    }
}

fn f16_to_f64(h: u16) -> f64 {
    let exp = i32::from((h >> 10) & 0x1f);
    let mant = f64::from(h & 0x3ff);
    let magnitude = match exp {
        0 => mant * 2f64.powi(-24),
        31 if mant == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (mant + 1024.0) * 2f64.powi(exp - 25),
    };
    if h & 0x8000 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// Writes CBOR in preferred serialization: shortest heads, definite
/// lengths, floats as single precision when that is exact.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    fn head(&mut self, major: u8, v: u64) {
        let m = major << 5;
        if v < 24 {
            self.buf.push(m | v as u8);
        } else if v <= 0xff {
            self.buf.extend_from_slice(&[m | 24, v as u8]);
        } else if v <= 0xffff {
            self.buf.push(m | 25);
            self.buf.extend_from_slice(&(v as u16).to_be_bytes());
        } else if v <= 0xffff_ffff {
            self.buf.push(m | 26);
            self.buf.extend_from_slice(&(v as u32).to_be_bytes());
        } else {
            self.buf.push(m | 27);
            self.buf.extend_from_slice(&v.to_be_bytes());
        }
    }

    pub(crate) fn int(&mut self, v: i64) {
        if v >= 0 {
            self.head(0, v as u64);
        } else {
            // -1 - v, computed without overflow for i64::MIN.
            self.head(1, !(v as u64));
        }
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.head(2, b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    pub(crate) fn text(&mut self, s: &str) {
        self.head(3, s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }

    pub(crate) fn array(&mut self, n: usize) {
        self.head(4, n as u64);
    }

    pub(crate) fn map(&mut self, n: usize) {
        self.head(5, n as u64);
    }

    pub(crate) fn tag(&mut self, tag: u64) {
        self.head(6, tag);
    }

    pub(crate) fn bool(&mut self, b: bool) {
        self.buf.push(if b { 0xf5 } else { 0xf4 });
    }

    pub(crate) fn null(&mut self) {
        self.buf.push(0xf6);
    }

    pub(crate) fn float(&mut self, f: f64) {
        let single = f as f32;
        if f64::from(single).to_bits() == f.to_bits() || (f.is_nan() && single.is_nan()) {
            self.buf.push(0xfa);
            self.buf.extend_from_slice(&single.to_bits().to_be_bytes());
        } else {
            self.buf.push(0xfb);
            self.buf.extend_from_slice(&f.to_bits().to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn reads_rfc8949_appendix_a_examples() {
        let cases: Vec<(&str, Item)> = vec![
            ("00", Item::Uint(0)),
            ("1903e8", Item::Uint(1000)),
            ("1bffffffffffffffff", Item::Uint(u64::MAX)),
            ("3bffffffffffffffff", Item::Nint(u64::MAX)),
            ("20", Item::Nint(0)),
            ("f90000", Item::Float(0.0)),
            ("f93c00", Item::Float(1.0)),
            ("f97bff", Item::Float(65504.0)),
            ("f90001", Item::Float(5.960464477539063e-8)),
            ("f9c400", Item::Float(-4.0)),
            ("fa47c35000", Item::Float(100000.0)),
            ("fb3ff199999999999a", Item::Float(1.1)),
            ("f97c00", Item::Float(f64::INFINITY)),
            ("f4", Item::Bool(false)),
            ("f6", Item::Null),
            ("f7", Item::Undefined),
            ("f0", Item::Simple(16)),
            ("f8ff", Item::Simple(255)),
            (
                "c11a514b67b0",
                Item::Tag(1, Box::new(Item::Uint(1363896240))),
            ),
            ("4401020304", Item::Bytes(vec![1, 2, 3, 4])),
            ("62c3bc", Item::Text("ü".into())),
            ("5f42010243030405ff", Item::Bytes(vec![1, 2, 3, 4, 5])),
            ("7f657374726561646d696e67ff", Item::Text("streaming".into())),
            (
                "83018202039f0405ff",
                Item::Array(vec![
                    Item::Uint(1),
                    Item::Array(vec![Item::Uint(2), Item::Uint(3)]),
                    Item::Array(vec![Item::Uint(4), Item::Uint(5)]),
                ]),
            ),
            (
                "a201020304",
                Item::Map(vec![
                    (Item::Uint(1), Item::Uint(2)),
                    (Item::Uint(3), Item::Uint(4)),
                ]),
            ),
            (
                "bf6346756ef563416d7421ff",
                Item::Map(vec![
                    (Item::Text("Fun".into()), Item::Bool(true)),
                    (Item::Text("Amt".into()), Item::Nint(1)),
                ]),
            ),
        ];
        for (h, want) in cases {
            assert_eq!(decode_single(&hex(h)).unwrap(), want, "{h}");
        }
        assert!(matches!(decode_single(&hex("f97e00")).unwrap(), Item::Float(f) if f.is_nan()));
    }

    #[test]
    fn rejects_bad_input_without_allocating_claimed_lengths() {
        // A byte string claiming 2^64-1 bytes, an array claiming 2^32 items.
        assert!(matches!(
            decode_single(&hex("5bffffffffffffffff")),
            Err(FormatError::Truncated { .. })
        ));
        assert!(matches!(
            decode_single(&hex("9affffffff00")),
            Err(FormatError::Truncated { .. })
        ));
        assert!(matches!(
            decode_single(&hex("1c")),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            decode_single(&hex("ff")),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            decode_single(&hex("0000")),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            decode_single(&hex("62c328")),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            decode_single(&hex("5f4101ff")),
            Ok(Item::Bytes(_))
        ));
        assert!(matches!(
            decode_single(&hex("5f6101ff")),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            decode_single(&hex("f818")),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            decode_single(&hex("3f")),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            decode_single(&hex("9f01")),
            Err(FormatError::Truncated { .. })
        ));
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = [vec![0x81; MAX_DEPTH], vec![0x00]].concat();
        assert!(decode_single(&ok).is_ok());
        let deep = [vec![0x81; MAX_DEPTH + 1], vec![0x00]].concat();
        assert!(matches!(
            decode_single(&deep),
            Err(FormatError::TooDeep { .. })
        ));
        let tags = [vec![0xc1; 10_000], vec![0x00]].concat();
        assert!(matches!(
            decode_single(&tags),
            Err(FormatError::TooDeep { .. })
        ));
        let indefinite = vec![0x9f; 100_000];
        assert!(matches!(
            decode_single(&indefinite),
            Err(FormatError::TooDeep { .. })
        ));
    }

    #[test]
    fn writer_uses_preferred_serialization() {
        let mut w = Writer::default();
        w.int(0);
        w.int(23);
        w.int(24);
        w.int(-1);
        w.int(-1000);
        w.int(i64::MIN);
        w.float(1.5);
        w.float(1.1);
        w.text("a");
        w.bytes(&[1]);
        assert_eq!(
            w.buf,
            hex("0017181820" /* 0 23 24 -1 */) // -1000, i64::MIN
                .into_iter()
                .chain(hex("3903e73b7fffffffffffffff"))
                .chain(hex("fa3fc00000fb3ff199999999999a61614101"))
                .collect::<Vec<_>>()
        );
    }
}
