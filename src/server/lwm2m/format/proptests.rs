//! Property tests across all formats: no decoder panics on arbitrary bytes,
//! encode → decode gives the records back, a truncated payload never
//! yields a half record, and a deterministic mutation fuzz over valid
//! payloads.
use super::*;
use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Types for the round trips; SenML has no form for NONE.
const TYPES: [DataType; 10] = DataType::ALL;
const SENML_TYPES: [DataType; 9] = [
    DataType::String,
    DataType::Integer,
    DataType::UnsignedInteger,
    DataType::Float,
    DataType::Boolean,
    DataType::Opaque,
    DataType::Time,
    DataType::Objlnk,
    DataType::Corelink,
];

/// A fixed type per (object, resource), so that the resolver the decoder
/// gets agrees with what the encoder was given.
fn type_of(types: &[DataType], oid: i64, rid: i64) -> DataType {
    types[((oid * 31 + rid).rem_euclid(types.len() as i64)) as usize]
}

fn text() -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..12).prop_map(|c| c.into_iter().collect())
}

/// Raw material from which a value of any type is cut.
#[derive(Debug, Clone)]
struct Seed {
    int: i64,
    float: f64,
    text: String,
    bytes: Vec<u8>,
    flag: bool,
    link: (u16, u16),
}

fn seed() -> impl Strategy<Value = Seed> {
    (
        any::<i64>(),
        prop_oneof![
            any::<f64>().prop_filter("finite", |f| f.is_finite()),
            (-1e6f64..1e6)
        ],
        text(),
        vec(any::<u8>(), 0..24),
        any::<bool>(),
        (any::<u16>(), any::<u16>()),
    )
        .prop_map(|(int, float, text, bytes, flag, link)| Seed {
            int,
            float,
            text,
            bytes,
            flag,
            link,
        })
}

fn value_of(ty: DataType, s: &Seed) -> Value {
    match ty {
        DataType::String => Value::String(s.text.clone()),
        DataType::Integer => Value::Integer(s.int),
        DataType::UnsignedInteger => Value::UnsignedInteger(s.int & i64::MAX),
        DataType::Float => Value::Float(s.float),
        DataType::Boolean => Value::Boolean(s.flag),
        DataType::Opaque => Value::Opaque(s.bytes.clone()),
        // Whole seconds: LwM2M times are seconds on the wire.
        DataType::Time => Value::Time((s.int % (i64::MAX / 1000)) / 1000 * 1000),
        DataType::Objlnk => Value::Objlnk {
            object_id: s.link.0,
            instance_id: s.link.1,
        },
        DataType::Corelink => Value::Corelink(s.text.clone()),
        DataType::None => Value::None,
    }
}

fn rp(ids: &[u16]) -> ResourcePath {
    LwPath::new(ids).unwrap().to_resource_path().unwrap()
}

fn decode_with(
    format: ContentFormat,
    payload: &[u8],
    request: LwPath,
    types: &'static [DataType],
) -> Result<Vec<Record>, FormatError> {
    let resolve = move |oid: i64, rid: i64| Some(type_of(types, oid, rid));
    let ctx = DecodeContext {
        request_path: request,
        now_ms: 1_700_000_000_000,
        resolve: &resolve,
    };
    decode(format, payload, &ctx)
}

fn sorted(mut records: Vec<Record>) -> Vec<Record> {
    records.sort_by_key(|r| LwPath::from_resource_path(&r.path));
    records
}

/// One object's worth of resources: instance → resource → single value or
/// a set of resource instances; ids kept small so that shapes repeat.
type Shape = BTreeMap<u16, BTreeMap<u16, Option<std::collections::BTreeSet<u16>>>>;

fn shape() -> impl Strategy<Value = Shape> {
    btree_map(
        prop_oneof![0u16..4, Just(LwPath::MAX_ID)],
        btree_map(
            prop_oneof![0u16..40, 250u16..300],
            proptest::option::of(btree_set(0u16..300, 0..4)),
            1..6,
        ),
        1..3,
    )
}

fn records_of(
    oid: u16,
    shape: &Shape,
    seeds: &[Seed],
    types: &[DataType],
    time: Option<i64>,
) -> Vec<Record> {
    let mut out = Vec::new();
    for (&iid, resources) in shape {
        for (&rid, instances) in resources {
            let ty = type_of(types, i64::from(oid), i64::from(rid));
            let mut push = |ids: &[u16]| {
                let s = &seeds[out.len() % seeds.len()];
                out.push(Record {
                    path: rp(ids),
                    value: value_of(ty, s),
                    time_ms: time,
                })
            };
            match instances {
                None => push(&[oid, iid, rid]),
                Some(set) => set.iter().for_each(|&ri| push(&[oid, iid, rid, ri])),
            }
        }
    }
    out
}

fn pairs(records: &[Record]) -> Vec<(ResourcePath, Value)> {
    records.iter().map(|r| (r.path, r.value.clone())).collect()
}

/// Every decoder on a payload with several request paths and resolvers.
fn decode_everything(payload: &[u8]) {
    let requests = ["/", "/3", "/3/0", "/3/0/1", "/3/0/6/1"].map(|p| LwPath::parse(p).unwrap());
    for format in ContentFormat::ALL {
        for request in requests {
            let typed = decode_with(format, payload, request, &TYPES);
            let none = |_: i64, _: i64| None;
            let ctx = DecodeContext {
                request_path: request,
                now_ms: 0,
                resolve: &none,
            };
            let untyped = decode(format, payload, &ctx);
            for records in [typed, untyped].into_iter().flatten() {
                assert!(records.len() <= MAX_RECORDS);
            }
        }
    }
}

/// Truncated payloads give an error or whole records of the full decode.
fn check_truncations(
    format: ContentFormat,
    payload: &[u8],
    request: LwPath,
    types: &'static [DataType],
) {
    let full = decode_with(format, payload, request, types).expect("valid payload");
    for cut in 0..payload.len() {
        if let Ok(records) = decode_with(format, &payload[..cut], request, types) {
            assert!(
                records.len() <= full.len(),
                "{format}: cut at {cut} gave more records"
            );
            for r in &records {
                assert!(
                    full.contains(r),
                    "{format}: cut at {cut} gave a half record {r:?}"
                );
            }
        }
    }
}

proptest! {
    #[test]
    fn no_decoder_panics_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..64)) {
        decode_everything(&bytes);
    }

    #[test]
    fn no_decoder_panics_on_structured_noise(
        bytes in vec(prop_oneof![
            Just(0x80u8), Just(0x9f), Just(0xa1), Just(0xbf), Just(0xff), Just(0xc1), Just(0x00),
            Just(0x21), Just(0x61), Just(0xc8), Just(0x08), Just(b'['), Just(b'{'), Just(b'"'),
            Just(b':'), Just(b'n'), Just(b'/'), any::<u8>()
        ], 0..64)
    ) {
        decode_everything(&bytes);
    }

    #[test]
    fn single_value_formats_round_trip(
        ids in (0u16..100, 0u16..3, 0u16..300, proptest::option::of(0u16..5)),
        s in seed(),
    ) {
        let (oid, iid, rid, ri) = ids;
        let path = match ri {
            Some(ri) => LwPath::new(&[oid, iid, rid, ri]).unwrap(),
            None => LwPath::new(&[oid, iid, rid]).unwrap(),
        };
        let ty = type_of(&TYPES, i64::from(oid), i64::from(rid));
        let record = Record { path: path.to_resource_path().unwrap(), value: value_of(ty, &s), time_ms: None };
        for format in [ContentFormat::Text, ContentFormat::Cbor, ContentFormat::Opaque] {
            let encoded = encode(format, &pairs(std::slice::from_ref(&record)), &path);
            if format == ContentFormat::Opaque && ty != DataType::Opaque {
                prop_assert!(encoded.is_err());
                continue;
            }
            let encoded = encoded.unwrap();
            let decoded = decode_with(format, &encoded, path, &TYPES).unwrap();
            prop_assert_eq!(&decoded, &vec![record.clone()], "{}", format);
            if format == ContentFormat::Cbor {
                check_truncations(format, &encoded, path, &TYPES);
            }
        }
    }

    #[test]
    fn tlv_round_trips(oid in 0u16..100, shape in shape(), seeds in vec(seed(), 1..8), per_instance in any::<bool>()) {
        let records = records_of(oid, &shape, &seeds, &TYPES, None);
        let (base, records) = if per_instance {
            let iid = *shape.keys().next().unwrap();
            let base = LwPath::new(&[oid, iid]).unwrap();
            let below: Vec<Record> = records.into_iter().filter(|r| LwPath::from_resource_path(&r.path).unwrap().starts_with(&base)).collect();
            (base, below)
        } else {
            (LwPath::new(&[oid]).unwrap(), records)
        };
        let encoded = encode(ContentFormat::Tlv, &pairs(&records), &base).unwrap();
        let decoded = decode_with(ContentFormat::Tlv, &encoded, base, &TYPES).unwrap();
        prop_assert_eq!(decoded, sorted(records));
        check_truncations(ContentFormat::Tlv, &encoded, base, &TYPES);
    }

    #[test]
    fn lwm2m_cbor_round_trips(objects in btree_map(0u16..2000, shape(), 1..3), seeds in vec(seed(), 1..8)) {
        let records: Vec<Record> = objects.iter().flat_map(|(&oid, shape)| records_of(oid, shape, &seeds, &TYPES, None)).collect();
        let encoded = encode(ContentFormat::LwM2mCbor, &pairs(&records), &LwPath::ROOT).unwrap();
        let decoded = decode_with(ContentFormat::LwM2mCbor, &encoded, LwPath::ROOT, &TYPES).unwrap();
        prop_assert_eq!(decoded, sorted(records));
        check_truncations(ContentFormat::LwM2mCbor, &encoded, LwPath::ROOT, &TYPES);
    }

    #[test]
    fn senml_round_trips_with_times(
        oid in 0u16..100,
        shape in shape(),
        seeds in vec(seed(), 1..8),
        time in proptest::option::of((1i64 << 28) * 1000..4_000_000_000_000),
        base_level in 0usize..3,
    ) {
        let records = records_of(oid, &shape, &seeds, &SENML_TYPES, time);
        prop_assume!(!records.is_empty());
        let first = LwPath::from_resource_path(&records[0].path).unwrap();
        let base = LwPath::new(&first.ids()[..base_level]).unwrap();
        let records: Vec<Record> = records.into_iter().filter(|r| LwPath::from_resource_path(&r.path).unwrap().starts_with(&base)).collect();
        for format in [ContentFormat::SenmlJson, ContentFormat::SenmlCbor] {
            let encoded = encode_records(format, &records, &base).unwrap();
            let decoded = decode_with(format, &encoded, LwPath::ROOT, &SENML_TYPES).unwrap();
            prop_assert_eq!(&decoded, &records, "{}", format);
            check_truncations(format, &encoded, LwPath::ROOT, &SENML_TYPES);
        }
    }

    #[test]
    fn senml_single_resource_base_round_trips(ids in (0u16..100, 0u16..3, 0u16..300), s in seed(), ris in btree_set(0u16..9, 0..3)) {
        let (oid, iid, rid) = ids;
        let base = LwPath::new(&[oid, iid, rid]).unwrap();
        let ty = type_of(&SENML_TYPES, i64::from(oid), i64::from(rid));
        let mut records = vec![Record { path: base.to_resource_path().unwrap(), value: value_of(ty, &s), time_ms: None }];
        for ri in ris {
            records.push(Record { path: rp(&[oid, iid, rid, ri]), value: value_of(ty, &s), time_ms: None });
        }
        for format in [ContentFormat::SenmlJson, ContentFormat::SenmlCbor] {
            let encoded = encode_records(format, &records, &base).unwrap();
            let decoded = decode_with(format, &encoded, LwPath::ROOT, &SENML_TYPES).unwrap();
            prop_assert_eq!(&decoded, &records, "{}", format);
        }
    }

    #[test]
    fn composite_path_lists_read_back_as_names(paths in vec((0u16..5, 0u16..3, 0u16..20, 0usize..5), 0..6)) {
        let paths: Vec<LwPath> = paths.into_iter().map(|(o, i, r, n)| LwPath::new(&[o, i, r, 0][..n.min(4)]).unwrap()).collect();
        let json = encode_paths(ContentFormat::SenmlJson, &paths).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let names: Vec<String> = doc.as_array().unwrap().iter().map(|r| r["n"].as_str().unwrap().to_owned()).collect();
        prop_assert_eq!(names, paths.iter().map(|p| p.to_string()).collect::<Vec<_>>());
        // Path-only records carry no values: decoding yields nothing.
        for format in [ContentFormat::SenmlJson, ContentFormat::SenmlCbor] {
            let bytes = encode_paths(format, &paths).unwrap();
            prop_assert_eq!(decode_with(format, &bytes, LwPath::ROOT, &SENML_TYPES).unwrap(), vec![]);
        }
    }
}

/// xorshift64*: a cheap deterministic generator for the mutation fuzz.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if at < out.len() => out[at] ^= 1 << rng.below(8),
            1 if at < out.len() => out[at] = rng.next() as u8,
            2 => out.insert(at, rng.next() as u8),
            3 if at < out.len() => {
                out.remove(at);
            }
            4 => out.truncate(at),
            5 if at < out.len() => {
                let end = (at + 1 + rng.below(8)).min(out.len());
                let chunk = out[at..end].to_vec();
                let to = rng.below(out.len() + 1);
                out.splice(to..to, chunk);
            }
            _ => {
                // Interesting bytes: CBOR/TLV length escapes, JSON syntax.
                const HOT: [u8; 12] = [
                    0xff, 0x1b, 0x5b, 0x7f, 0x9f, 0xbf, 0x18, 0xd8, 0xf8, b'"', b'[', b'\\',
                ];
                if at < out.len() {
                    out[at] = HOT[rng.below(HOT.len())];
                }
            }
        }
    }
    out
}

#[test]
fn mutation_fuzz_of_valid_payloads() {
    let values = vec![
        (rp(&[3, 0, 0]), Value::String("Open Mobile Alliance".into())),
        (rp(&[3, 0, 6, 0]), Value::Integer(1)),
        (rp(&[3, 0, 6, 1]), Value::Integer(5)),
        (rp(&[3, 0, 9]), Value::Integer(100)),
        (rp(&[3, 0, 13]), Value::Time(1_367_491_215_000)),
        (rp(&[3, 0, 16]), Value::Opaque(vec![0, 1, 2, 0xff])),
        (rp(&[3, 0, 17]), Value::Float(21.5)),
        (rp(&[3, 0, 18]), Value::Boolean(true)),
        (
            rp(&[3, 0, 19]),
            Value::Objlnk {
                object_id: 3,
                instance_id: 0,
            },
        ),
    ];
    let instance = LwPath::new(&[3, 0]).unwrap();
    let mut corpus: Vec<(ContentFormat, LwPath, Vec<u8>)> = Vec::new();
    for format in [
        ContentFormat::Tlv,
        ContentFormat::SenmlJson,
        ContentFormat::SenmlCbor,
        ContentFormat::LwM2mCbor,
    ] {
        corpus.push((
            format,
            instance,
            encode(format, &values, &instance).unwrap(),
        ));
    }
    for (path, value) in &values[3..7] {
        let base = LwPath::from_resource_path(path).unwrap();
        for format in [ContentFormat::Text, ContentFormat::Cbor] {
            corpus.push((
                format,
                base,
                encode(format, &[(*path, value.clone())], &base).unwrap(),
            ));
        }
    }
    let json = br#"{"bn":"/3/0/","bt":1367491215,"e":[{"n":"0","sv":"Open Mobile Alliance"},{"n":"9","v":100,"t":-5},{"n":"18","bv":true},{"n":"19","ov":"3:0"}]}"#;
    corpus.push((ContentFormat::LwM2mJson, instance, json.to_vec()));

    // The declared types are those of the values above.
    let resolve = |oid: i64, rid: i64| {
        values
            .iter()
            .find(|(p, _)| p.object_id == oid && p.resource_id == rid)
            .map(|(_, v)| v.data_type())
    };
    let run = |format: ContentFormat, request: LwPath, payload: &[u8]| {
        let ctx = DecodeContext {
            request_path: request,
            now_ms: 1_700_000_000_000,
            resolve: &resolve,
        };
        decode(format, payload, &ctx)
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let rounds = 100_000 / corpus.len();
    let mut decoded_ok = 0usize;
    for (format, request, payload) in &corpus {
        let valid = run(*format, *request, payload);
        assert!(valid.is_ok(), "{format}: {valid:?}");
        for _ in 0..rounds {
            let mutated = mutate(&mut rng, payload);
            if let Ok(records) = run(*format, *request, &mutated) {
                decoded_ok += 1;
                assert!(records.len() <= MAX_RECORDS);
            }
        }
    }
    // Some mutations stay valid; most must be refused, not all.
    assert!(decoded_ok > 0 && decoded_ok < rounds * corpus.len());
}
