//! Write-Attributes (Core TS 1.1.1 §5.1.2, §5.4.4) and when an observation
//! is due a notification (§6.4, RFC 7641). Pure: time is passed in.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::model::lwm2m::{ResourcePath, Value};
use crate::server::lwm2m::format::LwPath;

use super::objects::OpError;

/// The notification attributes on one path. `None` is "not set here".
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Attributes {
    pub pmin: Option<u32>,
    pub pmax: Option<u32>,
    pub gt: Option<f64>,
    pub lt: Option<f64>,
    pub st: Option<f64>,
}

impl Attributes {
    pub fn is_empty(&self) -> bool {
        *self == Attributes::default()
    }

    /// Fields set here win over `parent`'s (§5.1.2: resource over
    /// instance over object over the Server object's defaults).
    pub fn over(&self, parent: &Attributes) -> Attributes {
        Attributes {
            pmin: self.pmin.or(parent.pmin),
            pmax: self.pmax.or(parent.pmax),
            gt: self.gt.or(parent.gt),
            lt: self.lt.or(parent.lt),
            st: self.st.or(parent.st),
        }
    }

    /// The attributes as link-format parameters, for Discover.
    pub fn link_params(&self) -> String {
        let mut s = String::new();
        if let Some(v) = self.pmin {
            let _ = write!(s, ";pmin={v}");
        }
        if let Some(v) = self.pmax {
            let _ = write!(s, ";pmax={v}");
        }
        if let Some(v) = self.gt {
            let _ = write!(s, ";gt={v}");
        }
        if let Some(v) = self.lt {
            let _ = write!(s, ";lt={v}");
        }
        if let Some(v) = self.st {
            let _ = write!(s, ";st={v}");
        }
        s
    }

    /// Applies a Write-Attributes query (`pmin=10`, `gt=20.5`, a bare
    /// `pmax` removes it). `numeric_resource` says whether the path is a
    /// numeric resource, the only place gt/lt/st may be set. `epmin` and
    /// `epmax` are accepted and ignored. Invalid input is 4.00 and leaves
    /// the attributes unchanged.
    pub fn apply_query<'a>(
        &self,
        params: impl IntoIterator<Item = &'a [u8]>,
        numeric_resource: bool,
    ) -> Result<Attributes, OpError> {
        let mut a = *self;
        let mut any = false;
        for raw in params {
            any = true;
            let s = std::str::from_utf8(raw).map_err(|_| OpError::BadRequest)?;
            let (name, value) = match s.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (s, None),
            };
            let period = |v: Option<&str>| -> Result<Option<u32>, OpError> {
                v.map(|v| v.parse::<u32>().map_err(|_| OpError::BadRequest))
                    .transpose()
            };
            let number = |v: Option<&str>| -> Result<Option<f64>, OpError> {
                if !numeric_resource {
                    return Err(OpError::BadRequest);
                }
                v.map(|v| match v.parse::<f64>() {
                    Ok(f) if f.is_finite() => Ok(f),
                    _ => Err(OpError::BadRequest),
                })
                .transpose()
            };
            match name {
                "pmin" => a.pmin = period(value)?,
                "pmax" => a.pmax = period(value)?,
                "gt" => a.gt = number(value)?,
                "lt" => a.lt = number(value)?,
                "st" => {
                    a.st = number(value)?;
                    if a.st.is_some_and(|st| st < 0.0) {
                        return Err(OpError::BadRequest);
                    }
                }
                "epmin" | "epmax" => {
                    period(value)?;
                }
                _ => return Err(OpError::BadRequest),
            }
        }
        if !any {
            return Err(OpError::BadRequest);
        }
        // §5.1.2: lt < gt, and lt + 2*st < gt when all three are set.
        if let (Some(lt), Some(gt)) = (a.lt, a.gt) {
            if lt >= gt || a.st.is_some_and(|st| lt + 2.0 * st >= gt) {
                return Err(OpError::BadRequest);
            }
        }
        Ok(a)
    }
}

/// Attributes set by the server, per path.
#[derive(Debug, Clone, Default)]
pub struct AttributeStore {
    entries: Vec<(LwPath, Attributes)>,
}

impl AttributeStore {
    pub fn get(&self, path: &LwPath) -> Attributes {
        self.entries
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, a)| *a)
            .unwrap_or_default()
    }

    pub fn set(&mut self, path: LwPath, attrs: Attributes) {
        self.entries.retain(|(p, _)| *p != path);
        if !attrs.is_empty() {
            self.entries.push((path, attrs));
        }
    }

    /// Drops the attributes on `path` and below (the instance was deleted).
    pub fn remove_below(&mut self, path: &LwPath) {
        self.entries.retain(|(p, _)| !p.starts_with(path));
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The attributes in force on `path`: each level's own over its
    /// parent's, over `defaults` (Server object 1/x/2 and 1/x/3).
    pub fn effective(&self, path: &LwPath, defaults: &Attributes) -> Attributes {
        let mut a = *defaults;
        for len in 1..=path.len() {
            if let Some(p) = LwPath::new(&path.ids()[..len]) {
                a = self.get(&p).over(&a);
            }
        }
        a
    }
}

/// What an observation last reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reported {
    pub at: Instant,
    /// Fingerprint of the values (see [`fingerprint`]).
    pub hash: u64,
    /// The value, for a single numeric resource (gt/lt/st apply to it).
    pub number: Option<f64>,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Notify now.
    Now,
    /// Nothing now; look again at this time.
    At(Instant),
    /// Nothing until a value changes.
    Idle,
}

/// Whether an observation is due (§6.4.1, §5.1.2): a change that meets
/// the gt/lt/st conditions (any change when none is set) once pmin has
/// passed since the last notification, or pmax passed regardless. pmax is
/// ignored when zero or below pmin.
pub fn decide(
    attrs: &Attributes,
    last: &Reported,
    hash: u64,
    number: Option<f64>,
    now: Instant,
) -> Due {
    let secs = |s: u32| Duration::from_secs(u64::from(s));
    let pmin_at = last.at + secs(attrs.pmin.unwrap_or(0));
    let pmax_at = attrs
        .pmax
        .filter(|&p| p > 0 && p >= attrs.pmin.unwrap_or(0))
        .map(|p| last.at + secs(p));
    let mut next: Option<Instant> = pmax_at;
    if hash != last.hash && meets_conditions(attrs, last.number, number) {
        if now >= pmin_at {
            return Due::Now;
        }
        next = Some(next.map_or(pmin_at, |t| t.min(pmin_at)));
    }
    match next {
        Some(t) if now >= t => Due::Now,
        Some(t) => Due::At(t),
        None => Due::Idle,
    }
}

/// gt/lt: the value crossed the threshold (either way) since the last
/// report; st: it moved by at least st. Without any, every change counts.
fn meets_conditions(a: &Attributes, last: Option<f64>, now: Option<f64>) -> bool {
    if a.gt.is_none() && a.lt.is_none() && a.st.is_none() {
        return true;
    }
    let (Some(last), Some(now)) = (last, now) else {
        return true;
    };
    let crossed = |t: f64| (last > t) != (now > t);
    a.gt.is_some_and(crossed)
        || a.lt.is_some_and(|t| (last < t) != (now < t))
        || a.st.is_some_and(|st| (now - last).abs() >= st)
}

/// A fingerprint of read values, to tell whether anything changed since
/// the last notification. Current Time (3/0/13) is left out: it changes
/// every second and would make every Device-object observation fire.
///
/// FNV-1a over each value's path, type and bytes as they are held, with no
/// text made on the way: every device computes it on each tick and each
/// acknowledgement, and formatting paths and floats was a tenth of the
/// simulator's CPU at the benchmark's rates.
pub fn fingerprint(values: &[(ResourcePath, Value)]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (p, v) in values {
        if p.object_id == 3 && p.resource_id == 13 {
            continue;
        }
        eat(&p.object_id.to_le_bytes());
        eat(&p.instance_id.to_le_bytes());
        eat(&p.resource_id.to_le_bytes());
        eat(&p.resource_instance_id.unwrap_or(-1).to_le_bytes());
        eat(v.data_type().as_str().as_bytes());
        // Variable-length values carry their length, so that two records
        // cannot run into each other.
        let mut sized = |bytes: &[u8]| {
            eat(&(bytes.len() as u64).to_le_bytes());
            eat(bytes);
        };
        match v {
            Value::Integer(i) | Value::UnsignedInteger(i) | Value::Time(i) => {
                sized(&i.to_le_bytes())
            }
            Value::Float(f) => sized(&f.to_bits().to_le_bytes()),
            Value::Boolean(b) => sized(&[u8::from(*b)]),
            Value::String(s) | Value::Corelink(s) => sized(s.as_bytes()),
            Value::Opaque(b) => sized(b),
            Value::Objlnk {
                object_id,
                instance_id,
            } => {
                sized(&object_id.to_le_bytes());
                sized(&instance_id.to_le_bytes());
            }
            Value::None => sized(&[]),
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<&[u8]> {
        s.split('&').map(str::as_bytes).collect()
    }

    #[test]
    fn write_attributes_set_remove_and_validate() {
        let a = Attributes::default()
            .apply_query(q("pmin=10&pmax=60&gt=30&lt=10&st=2"), true)
            .unwrap();
        assert_eq!(
            a,
            Attributes {
                pmin: Some(10),
                pmax: Some(60),
                gt: Some(30.0),
                lt: Some(10.0),
                st: Some(2.0)
            }
        );
        assert_eq!(a.link_params(), ";pmin=10;pmax=60;gt=30;lt=10;st=2");
        let b = a.apply_query(q("pmax&gt&lt&st"), true).unwrap();
        assert_eq!(b.pmax, None);
        assert_eq!(b.pmin, Some(10));
        for bad in [
            "pmin=-1",
            "pmin=x",
            "foo=1",
            "gt=1&lt=2",
            "lt=1&gt=5&st=2",
            "st=-1",
            "gt=nan",
        ] {
            assert_eq!(
                Attributes::default().apply_query(q(bad), true),
                Err(OpError::BadRequest),
                "{bad}"
            );
        }
        // gt/lt/st only on a numeric resource.
        assert_eq!(
            Attributes::default().apply_query(q("gt=1"), false),
            Err(OpError::BadRequest)
        );
        assert!(Attributes::default()
            .apply_query(q("pmin=1&epmin=2"), false)
            .is_ok());
        assert_eq!(
            Attributes::default().apply_query(Vec::<&[u8]>::new(), false),
            Err(OpError::BadRequest)
        );
    }

    #[test]
    fn attributes_inherit_from_object_to_resource_over_defaults() {
        let mut store = AttributeStore::default();
        let obj = LwPath::parse("/3303").unwrap();
        let res = LwPath::parse("/3303/0/5700").unwrap();
        store.set(
            obj,
            Attributes {
                pmin: Some(5),
                pmax: Some(50),
                ..Default::default()
            },
        );
        store.set(
            res,
            Attributes {
                pmax: Some(20),
                ..Default::default()
            },
        );
        let defaults = Attributes {
            pmin: Some(1),
            pmax: Some(99),
            ..Default::default()
        };
        let e = store.effective(&res, &defaults);
        assert_eq!((e.pmin, e.pmax), (Some(5), Some(20)));
        let e = store.effective(&LwPath::parse("/3304/0/5700").unwrap(), &defaults);
        assert_eq!((e.pmin, e.pmax), (Some(1), Some(99)));
        store.remove_below(&LwPath::parse("/3303/0").unwrap());
        assert_eq!(store.get(&res), Attributes::default());
        assert_eq!(store.get(&obj).pmin, Some(5));
    }

    #[test]
    fn pmin_holds_back_changes_and_pmax_forces_a_report() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let attrs = Attributes {
            pmin: Some(10),
            pmax: Some(60),
            ..Default::default()
        };
        let last = Reported {
            at: t0,
            hash: 1,
            number: Some(20.0),
        };
        // Unchanged: next look at pmax.
        assert_eq!(decide(&attrs, &last, 1, Some(20.0), s(3)), Due::At(s(60)));
        // Changed before pmin: wait for pmin.
        assert_eq!(decide(&attrs, &last, 2, Some(21.0), s(3)), Due::At(s(10)));
        assert_eq!(decide(&attrs, &last, 2, Some(21.0), s(10)), Due::Now);
        // Unchanged at pmax: report anyway.
        assert_eq!(decide(&attrs, &last, 1, Some(20.0), s(60)), Due::Now);
        // No attributes: any change at once, otherwise idle.
        let none = Attributes::default();
        assert_eq!(decide(&none, &last, 2, None, s(0)), Due::Now);
        assert_eq!(decide(&none, &last, 1, None, s(1000)), Due::Idle);
        // pmax below pmin is ignored.
        let odd = Attributes {
            pmin: Some(30),
            pmax: Some(5),
            ..Default::default()
        };
        assert_eq!(decide(&odd, &last, 1, None, s(6)), Due::Idle);
    }

    #[test]
    fn gt_lt_st_filter_changes() {
        let t0 = Instant::now();
        let last = Reported {
            at: t0,
            hash: 1,
            number: Some(20.0),
        };
        let gt = Attributes {
            gt: Some(25.0),
            ..Default::default()
        };
        assert_eq!(decide(&gt, &last, 2, Some(24.0), t0), Due::Idle);
        assert_eq!(decide(&gt, &last, 2, Some(25.5), t0), Due::Now);
        let lt = Attributes {
            lt: Some(18.0),
            ..Default::default()
        };
        assert_eq!(decide(&lt, &last, 2, Some(19.0), t0), Due::Idle);
        assert_eq!(decide(&lt, &last, 2, Some(17.0), t0), Due::Now);
        let st = Attributes {
            st: Some(1.0),
            ..Default::default()
        };
        assert_eq!(decide(&st, &last, 2, Some(20.5), t0), Due::Idle);
        assert_eq!(decide(&st, &last, 2, Some(18.9), t0), Due::Now);
    }

    #[test]
    fn fingerprint_ignores_current_time_only() {
        let rp = |o, r| ResourcePath {
            object_id: o,
            instance_id: 0,
            resource_id: r,
            resource_instance_id: None,
        };
        let a = [(rp(3, 9), Value::Integer(80)), (rp(3, 13), Value::Time(1))];
        let b = [(rp(3, 9), Value::Integer(80)), (rp(3, 13), Value::Time(2))];
        let c = [(rp(3, 9), Value::Integer(79)), (rp(3, 13), Value::Time(2))];
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&b), fingerprint(&c));
    }

    #[test]
    fn fingerprint_tells_values_types_and_paths_apart() {
        let rp = |r, ri| ResourcePath {
            object_id: 3303,
            instance_id: 0,
            resource_id: r,
            resource_instance_id: ri,
        };
        let f = |v: Value| fingerprint(&[(rp(5700, None), v)]);
        assert_ne!(f(Value::Float(21.5)), f(Value::Float(21.25)));
        assert_ne!(f(Value::Float(0.0)), f(Value::Float(-0.0)));
        assert_ne!(f(Value::Integer(1)), f(Value::Time(1)));
        assert_ne!(f(Value::Integer(1)), f(Value::Boolean(true)));
        assert_ne!(
            f(Value::String("ab".into())),
            f(Value::Opaque(b"ab".to_vec()))
        );
        assert_eq!(f(Value::Float(21.5)), f(Value::Float(21.5)));
        // The same value at another path, or split differently over two
        // records, is another fingerprint.
        assert_ne!(
            fingerprint(&[(rp(5700, None), Value::Integer(7))]),
            fingerprint(&[(rp(5701, None), Value::Integer(7))])
        );
        assert_ne!(
            fingerprint(&[(rp(5700, Some(0)), Value::Integer(7))]),
            fingerprint(&[(rp(5700, None), Value::Integer(7))])
        );
        let two = |a: &str, b: &str| {
            fingerprint(&[
                (rp(5750, None), Value::String(a.into())),
                (rp(5750, None), Value::String(b.into())),
            ])
        };
        assert_ne!(two("ab", "c"), two("a", "bc"));
    }
}
