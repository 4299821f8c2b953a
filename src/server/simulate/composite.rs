//! The path list of a Read-Composite / Observe-Composite FETCH (Core TS
//! 1.1.1 §6.3.2, §6.4.3): SenML records with names and no values. The
//! copied decoders skip records without a value, so the names are read
//! here.

use crate::server::lwm2m::format::{ContentFormat, LwPath};

use super::objects::OpError;

/// The paths a FETCH body names (`bn` + `n` per record).
pub fn paths(format: ContentFormat, body: &[u8]) -> Result<Vec<LwPath>, OpError> {
    let names = match format {
        ContentFormat::SenmlJson => json_names(body)?,
        ContentFormat::SenmlCbor => cbor_names(body)?,
        _ => return Err(OpError::UnsupportedFormat),
    };
    if names.is_empty() {
        return Err(OpError::BadRequest);
    }
    names
        .iter()
        .map(|n| LwPath::parse(n).ok_or(OpError::BadRequest))
        .collect()
}

fn json_names(body: &[u8]) -> Result<Vec<String>, OpError> {
    let records: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_slice(body).map_err(|_| OpError::BadRequest)?;
    let mut base = String::new();
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let text = |k: &str| match r.get(k) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(OpError::BadRequest),
        };
        if let Some(bn) = text("bn")? {
            base = bn;
        }
        out.push(format!("{base}{}", text("n")?.unwrap_or_default()));
    }
    Ok(out)
}

/// A minimal reader for definite-length CBOR: enough to walk an array of
/// maps and skip the values it does not need.
struct Cbor<'a> {
    b: &'a [u8],
    i: usize,
    depth: usize,
}

impl Cbor<'_> {
    fn byte(&mut self) -> Result<u8, OpError> {
        let v = *self.b.get(self.i).ok_or(OpError::BadRequest)?;
        self.i += 1;
        Ok(v)
    }

    /// (major type, argument); indefinite lengths are refused.
    fn head(&mut self) -> Result<(u8, u64), OpError> {
        let b = self.byte()?;
        let (major, info) = (b >> 5, b & 0x1f);
        let n = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let len = 1usize << (info - 24);
                let mut v = 0u64;
                for _ in 0..len {
                    v = (v << 8) | u64::from(self.byte()?);
                }
                v
            }
            _ => return Err(OpError::BadRequest),
        };
        Ok((major, n))
    }

    fn bytes(&mut self, n: u64) -> Result<&[u8], OpError> {
        let n = usize::try_from(n).map_err(|_| OpError::BadRequest)?;
        let end = self.i.checked_add(n).ok_or(OpError::BadRequest)?;
        let s = self.b.get(self.i..end).ok_or(OpError::BadRequest)?;
        self.i = end;
        Ok(s)
    }

    fn skip(&mut self) -> Result<(), OpError> {
        self.depth += 1;
        if self.depth > 8 {
            return Err(OpError::BadRequest);
        }
        let (major, n) = self.head()?;
        match major {
            0 | 1 | 7 => {}
            2 | 3 => {
                self.bytes(n)?;
            }
            4 | 5 => {
                let items = if major == 5 { n.saturating_mul(2) } else { n };
                for _ in 0..items {
                    self.skip()?;
                }
            }
            _ => self.skip()?,
        }
        self.depth -= 1;
        Ok(())
    }

    fn text(&mut self) -> Result<String, OpError> {
        match self.head()? {
            (3, n) => String::from_utf8(self.bytes(n)?.to_vec()).map_err(|_| OpError::BadRequest),
            _ => Err(OpError::BadRequest),
        }
    }
}

fn cbor_names(body: &[u8]) -> Result<Vec<String>, OpError> {
    const BN: i64 = -2;
    const N: i64 = 0;
    let mut r = Cbor {
        b: body,
        i: 0,
        depth: 0,
    };
    let (major, count) = r.head()?;
    if major != 4 {
        return Err(OpError::BadRequest);
    }
    let mut base = String::new();
    let mut out = Vec::new();
    for _ in 0..count {
        let (major, pairs) = r.head()?;
        if major != 5 {
            return Err(OpError::BadRequest);
        }
        let mut name = None;
        for _ in 0..pairs {
            let key = match r.head()? {
                (0, n) => i64::try_from(n).unwrap_or(i64::MAX),
                (1, n) => -1 - i64::try_from(n).unwrap_or(i64::MAX - 1),
                (3, n) => {
                    r.bytes(n)?;
                    i64::MAX
                }
                _ => return Err(OpError::BadRequest),
            };
            match key {
                BN => base = r.text()?,
                N => name = Some(r.text()?),
                _ => r.skip()?,
            }
        }
        out.push(format!("{base}{}", name.unwrap_or_default()));
    }
    if r.i != body.len() {
        return Err(OpError::BadRequest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::lwm2m::format::encode_paths;

    #[test]
    fn reads_the_paths_the_server_encoder_writes() {
        let want = vec![
            LwPath::parse("/3/0/9").unwrap(),
            LwPath::parse("/3303/0").unwrap(),
            LwPath::parse("/5").unwrap(),
        ];
        for f in [ContentFormat::SenmlCbor, ContentFormat::SenmlJson] {
            let body = encode_paths(f, &want).unwrap();
            assert_eq!(paths(f, &body).unwrap(), want, "{f}");
        }
    }

    #[test]
    fn base_names_and_bad_input() {
        let body = br#"[{"bn":"/3303/0/","n":"5700"},{"n":"5701"}]"#;
        let got = paths(ContentFormat::SenmlJson, body).unwrap();
        assert_eq!(got[1], LwPath::parse("/3303/0/5701").unwrap());
        assert_eq!(
            paths(ContentFormat::SenmlJson, b"[]"),
            Err(OpError::BadRequest)
        );
        assert_eq!(
            paths(ContentFormat::SenmlCbor, &[0x81]),
            Err(OpError::BadRequest)
        );
        assert_eq!(
            paths(ContentFormat::Tlv, b""),
            Err(OpError::UnsupportedFormat)
        );
        // [{0: "/3/0/9", 2: 1.5}] with a value to skip.
        let mut b = vec![0x81, 0xa2, 0x00, 0x66];
        b.extend_from_slice(b"/3/0/9");
        b.extend_from_slice(&[0x02, 0xf9, 0x3e, 0x00]);
        assert_eq!(
            paths(ContentFormat::SenmlCbor, &b).unwrap(),
            vec![LwPath::parse("/3/0/9").unwrap()]
        );
    }
}
